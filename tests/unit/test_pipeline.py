"""Flow generation without a switch: golden flows, register layout, cookies, the sync diff."""
from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from emulator.cli.plan import simulate
from emulator.cluster.dataplane import network_view
from emulator.controller.sync import diff, diff_groups
from emulator.pipeline import cookie, fields
from emulator.pipeline.build import Memo, build_node, describe_cookie, flows_for_node
from emulator.model.netview import GROUP_CHUNK, EndpointView, NodeView, ServicePortView, subgroups_needed
from emulator.pipeline.features import service
from emulator.pipeline.features.service import groups_for_service
from emulator.pipeline.stale import stale_udp_entries
from emulator.pipeline.flow import Flow, Group, GroupAction, Output, cidr_match
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


NODE = NodeView("worker-1", 1, "192.168.0.2", "10.1.1.0/24", "10.1.1.1", "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", 1, 10)


def test_services_past_one_message_get_chained_groups_weighted_by_size() -> None:
    """600 endpoints do not fit one OpenFlow group message: three chained groups of at most
    GROUP_CHUNK buckets, chosen with weights equal to their sizes so each endpoint is equally likely."""
    endpoints = tuple(EndpointView(f"10.1.{i // 250}.{i % 250 + 1}", 80, "worker-1" if i < 300 else "worker-2")
                      for i in range(600))
    svc = ServicePortView(7, "default", "web", "", "TCP", "10.96.0.10", 80, endpoints=endpoints,
                          groups=(11, 12), subgroups=(20, 21, 22, 23, 24), internal_local=True)
    assert subgroups_needed(600) == 3 and subgroups_needed(300) == 2 and subgroups_needed(GROUP_CHUNK) == 0
    groups = groups_for_service(NODE, svc)
    by_id = {g.group_id: g for g in groups}
    assert [g.group_id for g in groups] == [20, 21, 22, 11, 23, 24, 12]  # chained groups before their parent
    assert by_id[11].weights == (256, 256, 88)
    assert by_id[11].buckets == ((GroupAction(20),), (GroupAction(21),), (GroupAction(22),))
    assert sum(len(by_id[g].buckets) for g in (20, 21, 22)) == 600
    assert by_id[12].weights == (256, 44) and len(by_id[23].buckets) == 256
    assert "bucket=weight:256,group:20" in by_id[11].to_ofctl()
    short = ServicePortView(7, "default", "web", "", "TCP", "10.96.0.10", 80, endpoints=endpoints, groups=(11, 12))
    assert groups_for_service(NODE, short) == []  # no ids: no group


def test_a_group_choosing_among_others_is_deleted_before_them() -> None:
    """A switch may refuse to delete a group another group's bucket still points at."""
    child = Group(20, ((Output(1),),))
    parent = Group(11, ((GroupAction(20),),), 0, (1,))
    assert diff_groups({20: child, 11: parent}, []) == ([], [], [parent, child])
    assert diff_groups({}, [child, parent])[0] == [child, parent]


def test_the_memo_builds_what_a_fresh_build_builds_and_keeps_only_what_views_use() -> None:
    """A pod deleted and one added: the memo's flows equal a fresh build's on every node, and after
    two views without the deleted pod nothing of it is kept."""
    state = simulate(str(TOPOLOGIES / "three-node.yaml"), seed=0)
    memo = Memo()
    first = network_view(state)
    for node in first.nodes:
        assert build_node(first, node.name, memo).flows == build_node(first, node.name).flows
    gone = first.pods[0]
    second = replace(first, pods=first.pods[1:], generation=first.generation + 1)
    memo.rotate()
    for node in second.nodes:
        assert build_node(second, node.name, memo).flows == build_node(second, node.name).flows
    memo.rotate()
    assert not any(k[0] == "pod" and k[2] == gone for k in list(memo.current) + list(memo.previous))


def test_a_local_policy_falls_back_to_the_nodes_serving_terminating_endpoints() -> None:
    """kube-proxy (KEP-1669): with internalTrafficPolicy Local and no ready endpoint on this
    node, the node's serving-terminating endpoints take new connections; a ready local one wins."""
    ready_elsewhere = (EndpointView("10.244.2.5", 80, "worker-2"),)
    ending_here = (EndpointView("10.244.1.7", 80, NODE.name),)
    svc = ServicePortView(7, "default", "web", "", "TCP", "10.96.0.10", 80, endpoints=ready_elsewhere,
                          groups=(11, 12), internal_local=True, terminating=ending_here)
    local = {g.group_id: g for g in groups_for_service(NODE, svc)}[12]
    assert len(local.buckets) == 1 and "0xaf40107" in local.to_ofctl()  # 10.244.1.7, not 10.244.2.5
    ready_here = replace(svc, endpoints=ready_elsewhere + (EndpointView("10.244.1.9", 80, NODE.name),))
    local = {g.group_id: g for g in groups_for_service(NODE, ready_here)}[12]
    assert len(local.buckets) == 1 and "0xaf40109" in local.to_ofctl()


def test_a_pod_calling_external_destinations_of_a_local_service_is_balanced_over_every_endpoint() -> None:
    """kube-proxy's KUBE-EXT "pod traffic for external destinations": on each node, a pod's
    packet to that node's NodePort, the LoadBalancer address or an external IP of a Local
    Service goes to the all-endpoints group in OVS (keeping the pod's address), while the same
    destinations from outside use the node-local group."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    local = next(s for s in view.services if s.external_local and s.protocol == "TCP")
    local = replace(local, lb_ip="10.50.100.9", external_ips=("192.0.2.11",),
                    endpoints=(EndpointView("10.244.1.5", 80, "worker-1"),))
    view = replace(view, services=(local,))
    every, _ = service.group_ids(local)
    for node in ("worker-1", "worker-2"):
        node_ip = view.node(node).ip
        flows = [f for f in service.flows_for_service(view.node(node), local)
                 if f.table == "ServiceLB" and fields.FROM_POD.match in f.match]
        got = {(dict(f.match)["ipv4_dst"], dict(f.match)["tcp_dst"]): f.actions for f in flows}
        assert set(got) == {(node_ip, local.node_port), ("10.50.100.9", local.port), ("192.0.2.11", local.port)}
        assert all(a == (GroupAction(every),) for a in got.values())


def test_a_pod_reaches_a_local_load_balancer_in_ovs_only_from_its_source_ranges() -> None:
    """With loadBalancerSourceRanges, a pod's call to the LoadBalancer address of a Local Service
    is balanced in OVS only from those ranges; from elsewhere it goes on to the node's firewall
    (hostrules), as kube-proxy's KUBE-FW chain sees pod traffic too. Other destinations keep
    their flow."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    local = next(s for s in view.services if s.external_local and s.protocol == "TCP")
    local = replace(local, lb_ip="10.50.100.9", source_ranges=("10.244.1.0/24",),
                    endpoints=(EndpointView("10.244.1.5", 80, "worker-1"),))
    flows = [f for f in service.flows_for_service(view.node("worker-1"), local)
             if f.table == "ServiceLB" and fields.FROM_POD.match in f.match]
    to_lb = [dict(f.match) for f in flows if dict(f.match)["ipv4_dst"] == "10.50.100.9"]
    assert [m.get("ipv4_src") for m in to_lb] == [cidr_match("10.244.1.0/24")]
    assert any(dict(f.match)["ipv4_dst"] == view.node("worker-1").ip and "ipv4_src" not in dict(f.match)
               for f in flows)


def test_a_udp_service_that_loses_an_endpoint_has_its_conntrack_entries_flushed_on_every_node() -> None:
    """pipeline.stale: a UDP Service port that lost an endpoint gets its entries flushed by the
    addresses clients sent to (cluster IP, the NodePort VIP), in every node's zone; a TCP one,
    an unchanged one and a first view flush nothing."""
    view = network_view(simulate(str(TOPOLOGIES / "services.yaml"), seed=0))
    udp = next(s for s in view.services if s.protocol == "UDP" and s.node_port)
    tcp = next(s for s in view.services if s.protocol == "TCP")
    one, two = EndpointView("10.244.1.5", 5353, "worker-1"), EndpointView("10.244.2.6", 5353, "worker-2")
    old = replace(view, services=(replace(udp, endpoints=(one, two)), replace(tcp, endpoints=(one,))))
    new = replace(view, services=(replace(udp, endpoints=(two,)), replace(tcp, endpoints=())))
    got = stale_udp_entries(old, new)
    want_matches = {f"ct_nw_dst={udp.cluster_ip},ct_nw_proto=17,ct_tp_dst={udp.port}",
                    f"ct_nw_dst={service.NODEPORT_VIP},ct_nw_proto=17,ct_tp_dst={udp.node_port}"}
    if udp.external_local:
        want_matches |= {f"ct_nw_dst={n.ip},ct_nw_proto=17,ct_tp_dst={udp.node_port}" for n in view.nodes}
    assert {(node, zone) for node, zone, _ in got} == {(n.name, n.zone) for n in view.nodes}
    assert {m for _, _, m in got} == want_matches
    assert stale_udp_entries(old, old) == [] and stale_udp_entries(None, new) == []
