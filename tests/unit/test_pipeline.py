"""Flow generation without a switch: golden flows, register layout, cookies, the sync diff."""
from __future__ import annotations

import itertools
from pathlib import Path

from emulator.cli.plan import simulate
from emulator.cluster.dataplane import network_view
from emulator.controller.sync import diff
from emulator.pipeline import cookie, fields
from emulator.pipeline.build import describe_cookie, flows_for_node
from emulator.pipeline.flow import Flow
from emulator.pipeline.tables import PIPELINE, TABLE_IDS

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def test_golden_flows_for_the_three_node_topology(golden) -> None:
    view = network_view(simulate(str(TOPOLOGIES / "three-node.yaml"), seed=0))
    text = ""
    for node in view.nodes:
        text += f"# {node.name}\n" + "\n".join(f.to_ofctl() for f in flows_for_node(view, node.name)) + "\n"
    golden("flows/three-node.txt", text)


def test_register_fields_do_not_overlap() -> None:
    for a, b in itertools.combinations(fields.ALL_FIELDS, 2):
        assert a.reg != b.reg or a.end < b.start or b.end < a.start, (a, b)
    marks = [fields.FROM_TUNNEL, fields.FROM_GATEWAY, fields.FROM_POD]
    assert len({m.value for m in marks}) == len(marks)


def test_every_table_has_a_miss_and_ids_follow_order() -> None:
    assert [TABLE_IDS[t.name] for t in PIPELINE] == list(range(len(PIPELINE)))
    view = network_view(simulate(str(TOPOLOGIES / "default.yaml")))
    flows = flows_for_node(view, "worker-1")
    for table in PIPELINE:
        if table.miss == "none" or table.name == "Output":
            continue  # SessionAffinity holds only learned flows; a miss there must do nothing
        assert any(f.table == table.name and f.priority == 0 for f in flows), table.name


def test_pod_flows_carry_the_pod_cookie_and_only_local_pods_get_ports() -> None:
    state = simulate(str(TOPOLOGIES / "default.yaml"))
    view = network_view(state)
    flows = flows_for_node(view, "worker-1")
    local = [p for p in view.pods if p.node == "worker-1"]
    remote = [p for p in view.pods if p.node != "worker-1"]
    for pod in local:
        own = [f for f in flows if f.cookie == cookie.make(cookie.Category.POD, pod.id)]
        assert {f.table for f in own} >= {"Classifier", "SpoofGuard", "L3Forwarding", "L2ForwardingCalc"}
        assert describe_cookie(view, own[0].cookie) == f"pod {pod.namespace}/{pod.name}"
    for pod in remote:
        assert not any(f.cookie == cookie.make(cookie.Category.POD, pod.id) for f in flows)
    tunnel = [f for f in flows if f.cookie >> 56 == cookie.Category.OVERLAY]
    assert {describe_cookie(view, f.cookie) for f in tunnel} == {"overlay to control-plane", "overlay to worker-2"}


def test_no_flow_uses_normal_or_flood() -> None:
    view = network_view(simulate(str(TOPOLOGIES / "three-node.yaml")))
    for node in view.nodes:
        for f in flows_for_node(view, node.name):
            assert "NORMAL" not in f.to_ofctl() and "FLOOD" not in f.to_ofctl()


def test_sync_diff_adds_replaces_and_deletes_strictly() -> None:
    a = Flow("Classifier", 10, (("in_port", 1),), (), "SpoofGuard", 1)
    b = Flow("Classifier", 10, (("in_port", 2),), (), "SpoofGuard", 2)
    b2 = Flow("Classifier", 10, (("in_port", 2),), (), "L3Forwarding", 2)
    c = Flow("Classifier", 10, (("in_port", 3),), (), "SpoofGuard", 3)
    adds, deletes = diff({a.key: a, b.key: b}, [b2, c])
    assert adds == [b2, c] and deletes == [a]
    assert diff({c.key: c}, [c]) == ([], [])


def test_pipeline_doc_samples_come_from_the_golden_flows() -> None:
    root = Path(__file__).resolve().parents[2]
    golden = set((root / "tests" / "golden" / "flows" / "three-node.txt").read_text().splitlines())
    samples = [line for line in (root / "docs" / "pipeline.md").read_text().splitlines() if line.startswith("cookie=")]
    assert samples and all(line in golden for line in samples), "regenerate docs/pipeline.md samples"
    for table in PIPELINE:
        assert f"## {table.name}" in (root / "docs" / "pipeline.md").read_text()
