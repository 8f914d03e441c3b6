"""NetworkPolicy without root: parsing and refusal, selector evaluation, compilation to address
sets, and the conjunctive flows (which must also serialize as OpenFlow)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from emulator.cluster import controllers
from emulator.cluster.dataplane import network_view
from emulator.cluster.policies import compile_policies, isolating
from emulator.cluster.store import ClusterState, ContainerStatus
from emulator.controller import ofp
from emulator.errors import SpecError
from emulator.pipeline.build import flows_for_node
from emulator.pipeline.features.policy import port_masks
from emulator.spec.cluster import load_cluster
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_openflow_messages import FakeDatapath

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def objects(text: str) -> list:
    return parse_documents(load_text(text, "np.yaml")).objects


def np(ns: str, spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n{spec}"


@pytest.fixture
def state() -> ClusterState:
    st = ClusterState(load_cluster(TOPOLOGIES / "netpol.yaml"), rng=random.Random(1))
    controllers.apply(st, list(st.config.manifests))
    for rec in st.pods():
        rec.status.phase = "Running"
        rec.status.containers = {c.name: ContainerStatus(c.name, "running", ready=True) for c in rec.obj.spec.containers}
    return st


def ip(state: ClusterState, ns: str, name: str) -> str:
    return state.get("Pod", ns, name).status.ip


def test_port_ranges_become_masks() -> None:
    assert port_masks(80, 80) == [(80, 0xFFFF)]
    assert port_masks(80, 81) == [(80, 0xFFFE)]
    assert port_masks(1, 7) == [(1, 0xFFFF), (2, 0xFFFE), (4, 0xFFFC)]
    covered = {v + i for v, m in port_masks(1000, 2047) for i in range((~m & 0xFFFF) + 1)}
    assert covered == set(range(1000, 2048))


def test_policy_types_default_as_kubernetes() -> None:
    (pol,) = objects(np("x", "  podSelector: {}\n  egress: [{}]\n"))
    assert pol.policy_types == ("Ingress", "Egress")
    (pol,) = objects(np("x", "  podSelector: {}\n"))
    assert pol.policy_types == ("Ingress",)


@pytest.mark.parametrize("spec,message", [
    ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/40}}]}]\n", "must be a valid CIDR"),
    ("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]\n",
     "must be a strict subset of `cidr`"),
    ("  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80}]}]\n", "greater than or equal to `port`"),
    ("  podSelector: {}\n  ingress: [{ports: [{protocol: ICMP}]}]\n", "Unsupported value: 'ICMP'"),
    ("  podSelector: {}\n  policyTypes: [Sideways]\n", "Unsupported value: 'Sideways'"),
])
def test_invalid_policies_are_refused(spec: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        objects(np("x", spec))
    assert message in str(info.value) and "np.yaml:" in str(info.value)


def test_compilation_to_address_sets(state: ClusterState) -> None:
    controllers.apply(state, objects(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
                                              "    - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]\n"
                                              "      ports: [{port: serve-81-tcp}]\n")))
    view = compile_policies(state)
    assert view.isolated_ingress == (ip(state, "x", "a"),) and view.isolated_egress == ()
    (rule,) = view.rules
    assert [a[0] for a in rule.applied] == [ip(state, "x", "a")]
    assert rule.peers == (f"{ip(state, 'y', 'b')}/32",)
    assert rule.ports == (("TCP", 81, None),)  # the named port resolved on x/a


def test_ip_block_except_is_a_set_difference(state: ClusterState) -> None:
    controllers.apply(state, objects(np("x", "  podSelector: {}\n  ingress: [{from: [{ipBlock: "
                                              "{cidr: 10.0.0.0/8, except: [10.244.0.0/16, 10.5.0.0/16]}}]}]\n")))
    (rule,) = compile_policies(state).rules
    import ipaddress
    nets = [ipaddress.ip_network(c) for c in rule.peers]
    assert sum(n.num_addresses for n in nets) == 2 ** 24 - 2 * 2 ** 16
    assert not any(n.overlaps(ipaddress.ip_network("10.244.0.0/16")) for n in nets)


def test_flows_use_conjunctions_and_serialize(state: ClusterState) -> None:
    controllers.apply(state, objects(np("x", "  podSelector: {}\n  ingress:\n"
                                              "    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n"
                                              "      ports: [{port: 80, endPort: 81, protocol: UDP}]\n")))
    view = network_view(state)
    dp = FakeDatapath()
    for node in view.nodes:
        flows = flows_for_node(view, node.name)
        text = "\n".join(f.to_ofctl() for f in flows)
        local_x = [p for p in view.pods if p.node == node.name and p.namespace == "x"]
        if local_x:
            assert "conjunction(" in text and "conj_id=" in text and "udp,tp_dst=0x50/0xfffe" in text
        for flow in flows:
            msg = ofp.flow_mod(dp, flow)
            msg.set_xid(1)
            msg.serialize()


def test_an_egress_named_port_without_to_allows_that_port_on_every_pod(state: ClusterState) -> None:
    """Upstream: `egress: [{ports: [{port: NAME}]}]` allows NAME to every destination; the name
    resolves on each destination pod (a non-pod destination has no named ports)."""
    controllers.apply(state, objects(np("x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
                                              "  egress: [{ports: [{port: serve-81-tcp}]}]\n")))
    rules = compile_policies(state).rules
    serving = {rec.status.ip for rec in state.pods()
               if any(p.name == "serve-81-tcp" for c in rec.obj.spec.containers for p in c.ports)}
    assert len(serving) > 3
    assert {r.peers[0].removesuffix("/32") for r in rules} == serving
    assert all(r.ports == (("TCP", 81, None),) and r.direction == "Egress" for r in rules)


def test_the_policies_isolating_a_pod_are_named_for_a_trace(state: ClusterState) -> None:
    controllers.apply(state, objects(np("x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n")))
    assert isolating(state, ip(state, "x", "a"), "Ingress") == ["x/p"]
    assert isolating(state, ip(state, "x", "a"), "Egress") == []  # an Ingress policy isolates no egress
    assert isolating(state, ip(state, "x", "b"), "Ingress") == []  # not selected
    assert isolating(state, "10.9.9.9", "Ingress") == []
