"""PodDisruptionBudget without root: the API server's validation, the disruption controller's
arithmetic (counts and percentages, rounded up) and the Eviction API's refusal."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from emulator.cluster import controllers, disruption, nodes
from emulator.cluster.store import ClusterState, ContainerStatus
from emulator.errors import SpecError
from emulator.model.disruption import PodDisruptionBudget, budget
from emulator.spec.cluster import load_cluster
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def pdb(spec: str) -> str:
    return f"apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: web}}\nspec: {spec}\n"


def objects(text: str) -> list:
    return parse_documents(load_text(text, "pdb.yaml")).objects


@pytest.mark.parametrize("spec, message", [
    ("{minAvailable: 1, maxUnavailable: 1, selector: {matchLabels: {app: web}}}", "cannot be both set"),
    ("{minAvailable: 101%, selector: {}}", "percentage between 0% and 100%"),
    ("{maxUnavailable: -1, selector: {}}", "greater than or equal to 0"),
    ("{minAvailable: one, selector: {}}", "must be an integer or a percentage"),
])
def test_the_api_servers_refusals(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        objects(pdb(spec))


def test_counts_and_percentages_round_up_as_the_disruption_controller() -> None:
    def allowed(min_available=None, max_unavailable=None, expected=3, healthy=3) -> int:
        return budget(PodDisruptionBudget(None, None, min_available, max_unavailable), expected, healthy) \
            .disruptions_allowed
    assert allowed(min_available=2) == 1 and allowed(min_available=3) == 0
    assert allowed(min_available="50%") == 1  # 1.5 rounds up to 2 desired
    assert allowed(max_unavailable=1) == 1 and allowed(max_unavailable="34%") == 2  # 1.02 rounds up to 2
    assert allowed(max_unavailable=1, healthy=2) == 0  # one is down already


def test_eviction_is_refused_while_the_budget_has_no_disruption_left() -> None:
    """Three ready web pods, minAvailable 2: the first eviction goes, the second is refused
    (the first pod no longer counts), as the Eviction API answers 429."""
    st = ClusterState(load_cluster(TOPOLOGIES / "services.yaml"), rng=random.Random(5))
    controllers.apply(st, list(st.config.manifests) + objects(pdb("{minAvailable: 2, selector: {matchLabels: {app: web}}}")))
    for rec in st.pods():
        rec.status.phase = "Running"
        rec.status.containers = {c.name: ContainerStatus(c.name, "running", ready=True) for c in rec.obj.spec.containers}
    web = [r for r in st.pods() if r.obj.meta.labels.get("app") == "web"]
    assert disruption.status(st, st.get("PodDisruptionBudget", "default", "web").obj).disruptions_allowed == 1
    assert disruption.refusal(st, web[0]) == ""
    nodes.evict(st, web[0])
    assert disruption.refusal(st, web[1]) == disruption.VIOLATION
    web[2].status.containers = {}  # not ready: may go only if the budget is met without it (it is not)
    assert disruption.refusal(st, web[2]) == disruption.VIOLATION
