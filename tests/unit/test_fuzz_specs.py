"""Random mutations of the example specs and of the bad-input corpus (hypothesis, bounded):
whatever comes in, the result is a cluster or a located error, never a traceback, within a few
seconds and a bounded amount of memory."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from emulator.cluster import controllers
from emulator.cluster.admission import check_objects
from emulator.cluster.store import ClusterState
from emulator.errors import SpecError
from emulator.spec.cluster import parse_cluster
from emulator.spec.loader import load_text

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"
SEEDS = sorted(TOPOLOGIES.glob("*.yaml")) + [p for p in sorted((ROOT / "tests" / "fixtures" / "hostile").glob("*.yaml"))
                                              if p.stat().st_size < 20_000][:60]
TEXTS = [p.read_bytes().decode("utf-8", "replace") for p in SEEDS]
TOKENS = ["&a ", "*a", "<<: *a", "{", "}", "[", "]", ": ", "- ", "\n", "  ", "'", '"', "\\", "#", "!!binary ",
          "9" * 40, "-1", "0.0.0.0/0", "count: 250", "replicas: 10000", "\t", "\x00", "\u202e", "%", "---\n",
          "kind: Pod", "name: x\n", "null", "~", "1e400", "..", "/etc/shadow", "$(A)", "*.", "\ufeff"]
PEAK_LIMIT = 64 << 20


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.integers(0, 3))
        if kind == 0:
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif kind == 1:
            end = draw(st.integers(at, min(len(text), at + 40)))
            text = text[:at] + text[end:]
        elif kind == 2:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                text = "".join(lines[:i + 1] + [lines[i]] * draw(st.integers(1, 30)) + lines[i + 1:])
        else:
            text = text[:at] + draw(st.text(min_size=1, max_size=8)) + text[at:]
    return text


def admit(text: str) -> None:
    docs = load_text(text, "fuzz.yaml")
    if len(docs) != 1:
        return
    config = parse_cluster(docs[0], TOPOLOGIES)
    problems = check_objects(config, list(config.manifests))
    if problems:
        raise SpecError(problems)
    controllers.apply(ClusterState(config), list(config.manifests))


@settings(max_examples=300, deadline=10_000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_a_mutated_spec_is_a_cluster_or_a_located_error(text: str) -> None:
    tracemalloc.start()
    try:
        admit(text)
    except SpecError as exc:
        first = str(exc).splitlines()[0]
        assert first.startswith("fuzz.yaml:") or ":" in first.split(" ")[0], first
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{peak >> 20} MiB"
