"""``k8semu trace`` without a switch: the tracer replayed on what real switches answered
(tests/golden/trace/*.json, recorded from a live default cluster: each section's
``ofproto/trace-packet-out`` output, the groups and the VXLAN FDB), and the parsers on their own."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.model.netview import NetworkView
from emulator.trace import nfttrace, start
from emulator.trace.ofptrace import bucket_target, format_flow, parse_ct, parse_flow, parse_groups, parse_stage
from emulator.trace.path import follow

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "trace"


class Replay:
    """A switch that answers each section as the real one did (a question it was not asked
    fails the test: the tracer asked something else than when the answers were recorded)."""

    def __init__(self, rec: dict) -> None:
        self.answers = {(n, f, a): out for n, f, a, out in rec["traces"]}
        self.rec = rec
        self.asked: list[tuple[str, str, str]] = []

    def trace(self, node: str, flow: str, actions: str) -> str:
        self.asked.append((node, flow, actions))
        assert (node, flow, actions) in self.answers, f"not recorded: {node} {flow} {actions}"
        return self.answers[(node, flow, actions)]

    def groups(self, node: str) -> dict[int, list[str]]:
        return {int(k): v for k, v in self.rec["groups"][node].items()}

    def fdb(self, node: str) -> dict[str, str]:
        return self.rec["fdb"][node]


def replay(name: str):
    rec = json.loads((GOLDEN / f"{name}.json").read_text())  # a missing recording fails here
    view = NetworkView.from_json(json.dumps(rec["view"]))
    switch = Replay(rec)
    result = follow(switch, view, rec["packet"]["node"], rec["packet"]["fields"])
    return rec, result, switch


def test_a_cross_node_cluster_ip_connection_is_dnatted_tunnelled_and_delivered() -> None:
    rec, result, switch = replay("clusterip-cross-node")
    assert (result.verdict, result.where, result.endpoint) == tuple(rec["expect"].values())
    assert result.verdict == "delivered" and result.where.startswith("pod default/web-")
    kinds = [h.kind for h in result.hops]
    assert kinds.index("group") < kinds.index("tunnel") < kinds.index("deliver")
    group = next(h for h in result.hops if h.kind == "group")
    assert len(group.actions) == 3 and result.endpoint == group.actions[0]  # every endpoint named, the first traced
    dnat = next(h for h in result.hops if h.kind == "conntrack" and "DNAT" in h.text)
    assert f"DNAT to {result.endpoint}" in dnat.text
    tunnel = next(h for h in result.hops if h.kind == "tunnel")
    assert "172.18.0.4 -> 172.18.0.3" in tunnel.text and f"inner 10.244.2.2 -> {result.endpoint.split(':')[0]}" in tunnel.text
    nodes = [h.node for h in result.hops if h.kind == "table"]
    assert nodes[0] == "worker-2" and nodes[-1] == "worker-1"
    lb = next(h for h in result.hops if h.table == "ServiceLB" and h.owner)
    assert lb.owner == "service default/web:80"
    # the second switch is entered from its tunnel port with the inner packet, registers cleared
    node, flow, actions = next(q for q in switch.asked if q[0] == "worker-1")
    fields = parse_flow(flow)
    assert fields["in_port"] == "1" and actions == "resubmit(,0)" and not any(k.startswith("reg") for k in fields)


def test_a_policy_drop_names_the_table_and_owner() -> None:
    rec, result, _ = replay("policy-drop")
    assert result.verdict == "dropped" and rec["expect"]["verdict"] == "dropped"
    drop = result.hops[-1]
    assert drop.kind == "drop" and drop.table == "IngressRule" and drop.owner.startswith("networkpolicy")
    assert drop.node == "worker-1"  # enforced where the endpoint lives, after the tunnel


def test_a_service_without_endpoints_is_rejected_by_the_controller() -> None:
    rec, result, _ = replay("no-endpoints")
    assert result.verdict == "rejected" and result.hops[-1].kind == "reject"
    assert result.hops[-1].table == "ServiceLB" and result.hops[-1].owner == "service default/empty:81-81"
    assert not any(h.kind == "tunnel" for h in result.hops)


def test_parse_stage_reads_the_first_section_only() -> None:
    text = (GOLDEN / "clusterip-cross-node.json").read_text()
    first = json.loads(text)["traces"][0][3]
    stage = parse_stage(first)
    assert [s.table for s in stage.steps] == [0, 1, 3]
    assert stage.steps[0].cookie >> 56 == 2  # a pod's flow (cookie category POD)
    assert "recirc" in stage.datapath_actions
    with pytest.raises(ValueError):
        parse_stage("ovs-appctl: ovs-vswitchd: server returned an error")


def test_ct_actions_groups_and_flows_parse() -> None:
    ct = parse_ct("ct(commit,table=10,zone=4100,exec(set_field:0x1->ct_mark,nat(dst=10.244.1.3:80)))")
    assert (ct.table, ct.zone, ct.commit, ct.nat_dst, ct.mark) == (10, 4100, True, ("10.244.1.3", 80), 1)
    assert parse_ct("ct(table=4,zone=4098,nat)").nat_dst is None
    assert parse_ct("ct(commit,zone=4098)") is None  # no recirculation
    dump = (" group_id=9,type=select,bucket=weight:100,actions=load:0xaf40103->NXM_NX_REG3[],"
            "load:0x50->NXM_NX_REG4[0..15],resubmit(,9),bucket=weight:100,actions=load:0xaf40104->NXM_NX_REG3[],"
            "load:0x50->NXM_NX_REG4[0..15],resubmit(,9)")
    groups = parse_groups(dump)
    assert [bucket_target(b) for b in groups[9]] == [("10.244.1.3", 80), ("10.244.1.4", 80)]
    flow = "tcp,reg0=0x3,in_port=102,nw_src=10.244.2.2"
    assert format_flow(parse_flow(flow)) == flow


def test_a_pod_sends_to_its_gateway_unless_the_destination_is_a_pod_of_its_node() -> None:
    rec = json.loads((GOLDEN / "clusterip-cross-node.json").read_text())
    view = NetworkView.from_json(json.dumps(rec["view"]))
    client = next(p for p in view.pods if p.name == "client")
    neighbour = next(p for p in view.pods if p.node == client.node and p is not client and p.namespace == "default")
    gw = view.node(client.node).gateway_mac
    assert start.from_pod(view, client, neighbour.ip, "tcp", 80).fields["dl_dst"] == neighbour.mac
    assert start.from_pod(view, client, "10.96.0.10", "udp", 53).fields["dl_dst"] == gw
    icmp = start.from_pod(view, client, neighbour.ip, "icmp", None).fields
    assert "icmp" in icmp and "tp_dst" not in icmp


# -- the kernel data planes: nftables' own tracer ----------------------------------------------
def monitor(node: str) -> list:
    """A real ``nft monitor`` output (cni: flannel, kube-proxy iptables mode, a client on worker-2
    opening 10.97.198.166:8080 from port 45678; recorded with the marking table named
    ``k8semu_trace``)."""
    return nfttrace.parse(node, (GOLDEN / f"flannel-{node}.monitor").read_text(), "k8semu_trace")


def test_the_first_packet_walks_kube_proxys_chains_to_its_endpoint() -> None:
    walks = nfttrace.first_packet(monitor("worker-2") + monitor("worker-1"), "tcp", 45678)
    hops = nfttrace.hops(walks)
    chains = [h.table for h in hops if h.kind == "rule"]
    assert chains[:4] == ["ip nat PREROUTING", "ip nat KUBE-SERVICES", "ip nat KUBE-SVC-LOLE4ISW44XBNF3G",
                          "ip nat KUBE-SEP-OD4NQTAG4GNU2XE5"]
    assert nfttrace.dnat(hops) == "10.244.1.4:80" and nfttrace.verdict(hops) == ("", None)
    assert {h.node for h in hops} == {"worker-1", "worker-2"}  # through the tunnel to the endpoint's node
    assert all("tcp flags == syn" in w.packet for w in walks)  # the SYN only, not its ACKs or the reply
    assert not any("k8semu_trace" in h.text for h in hops)  # k8semu's marking table is not the data plane's
    assert all("counter packets" not in h.text for h in hops)


def test_a_reject_is_named_rejected_though_nftables_calls_it_a_drop() -> None:
    text = ("trace id 1 ip filter KUBE-SERVICES packet: iif \"cni0\" ip saddr 10.244.2.2 ip daddr 10.96.0.9 "
            "tcp sport 5000 tcp dport 80 tcp flags == syn\n"
            "trace id 1 ip filter KUBE-SERVICES rule meta l4proto tcp ip daddr 10.96.0.9 tcp dport 80 reject "
            "(verdict drop)\n")
    hops = nfttrace.hops(nfttrace.first_packet(nfttrace.parse("w", text, "t"), "tcp", 5000))
    assert nfttrace.verdict(hops)[0] == "rejected"
    dropped = nfttrace.hops(nfttrace.parse("w", text.replace(" reject ", " ").replace("rule", "rule drop", 1), "t"))
    assert nfttrace.verdict(dropped)[0] == "dropped"


def test_the_marking_table_is_built_from_numbers_and_an_address_only() -> None:
    text = nfttrace.ruleset(45678, "tcp", "10.244.2.2")
    assert "table inet k8semu_trace_45678" in text and "tcp sport 45678 meta nftrace set 1" in text
    assert "priority -350" in text
    for bad in ((0, "tcp", "10.0.0.1"), (80, "sctp", "10.0.0.1"), (80, "tcp", "10.0.0.1; flush ruleset")):
        with pytest.raises(ValueError):
            nfttrace.ruleset(*bad)
