"""externalTrafficPolicy Local's machinery without a cluster: the healthCheckNodePort the API
server allocates, kube-proxy's health check answer, and which nodes may announce an address."""
from __future__ import annotations

import json
import random

from emulator.cluster.services import Allocations
from emulator.model import naming
from emulator.model.meta import ObjectMeta
from emulator.model.netview import EndpointView, NetworkView, NodeView, ServicePortView
from emulator.model.service import NODE_PORT_RANGE, Service, ServicePort
from emulator.runtime import healthcheck
from emulator.runtime.nodeagent import NodeAgent
from emulator.spec.cluster import load_cluster
from tests.unit.test_controllers import TOPOLOGIES


def lb(name: str, policy: str = "Local", health: int = 0, kind: str = "LoadBalancer") -> Service:
    return Service(ObjectMeta(name, "default"), kind, {"app": name}, (ServicePort(80),),
                   external_traffic_policy=policy, health_check_node_port=health)


def test_a_local_load_balancer_gets_a_health_check_port_and_keeps_it() -> None:
    allocs, rng = Allocations("10.96.0.0/16"), random.Random(1)
    got, problems = allocs.allocate(lb("web"), rng)
    assert not problems and NODE_PORT_RANGE[0] <= got.health_check_node_port <= NODE_PORT_RANGE[1]
    assert got.health_check_node_port not in got.node_ports
    allocs.commit("default/web", got)
    again, _ = allocs.allocate(lb("web"), rng)
    assert again.health_check_node_port == got.health_check_node_port  # re-applying keeps it
    for other in (lb("web", "Cluster"), lb("web", kind="NodePort")):
        assert allocs.allocate(other, rng)[0].health_check_node_port == 0  # no longer needed: released


def test_a_requested_health_check_port_is_used_and_a_taken_one_refused() -> None:
    allocs, rng = Allocations("10.96.0.0/16"), random.Random(1)
    first, _ = allocs.allocate(lb("a", health=31500), rng)
    assert first.health_check_node_port == 31500
    allocs.commit("default/a", first)
    clash, problems = allocs.allocate(lb("b", health=31500), rng)
    assert clash is None
    assert [(p.field, p.message) for p in problems] == [
        ("spec.healthCheckNodePort", "Invalid value: 31500: provided port is already allocated")]
    other, _ = allocs.allocate(Service(ObjectMeta("c", "default"), "NodePort", {"app": "c"},
                                       (ServicePort(80, node_port=31500),)), rng)
    assert other is None  # a health check port is a node port like the others
    changed, problems = allocs.allocate(lb("a", health=31501), rng)
    assert changed is None and problems[0].message == "field is immutable"


def test_the_answer_is_kube_proxys() -> None:
    status, headers, body = healthcheck.response("default", "web", 2)
    assert status == 200 and headers["X-Load-Balancing-Endpoint-Weight"] == "2"
    assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(body) == {"service": {"namespace": "default", "name": "web"}, "localEndpoints": 2,
                                "serviceProxyHealthy": True}
    assert body.decode().splitlines()[1] == '\t"service": {'  # kube-proxy's tab-indented layout
    status, _, body = healthcheck.response("default", 'we"b', 0)
    assert status == 503 and json.loads(body)["service"]["name"] == 'we"b'


def view() -> NetworkView:
    nodes = tuple(NodeView(n, i, f"172.18.0.{i + 2}", f"10.244.{i}.0/24", f"10.244.{i}.1", "", "", i, 2 * i)
                  for i, n in enumerate(("control-plane", "worker-1", "worker-2")))
    a, b, gone = (EndpointView("10.244.1.2", 80, "worker-1"), EndpointView("10.244.1.3", 80, "worker-1"),
                  EndpointView("10.244.2.2", 80, "worker-2"))
    local = ServicePortView(1, "default", "web", "http", "TCP", "10.96.0.20", 80, 30080, "10.50.100.5",
                            external_local=True, endpoints=(a, b), terminating=(gone,), health_check_node_port=31000)
    local_udp = ServicePortView(2, "default", "web", "dns", "UDP", "10.96.0.20", 53, 30053, "10.50.100.5",
                                external_local=True, endpoints=(EndpointView("10.244.1.2", 53, "worker-1"),),
                                health_check_node_port=31000)
    cluster = ServicePortView(3, "default", "all", "", "TCP", "10.96.0.21", 80, 30081, "10.50.100.6",
                              endpoints=(a,))
    nowhere = ServicePortView(4, "default", "none", "", "TCP", "10.96.0.22", 80, 30082, "10.50.100.7",
                              external_local=True, endpoints=(), health_check_node_port=31001)
    return NetworkView(3, nodes, (), (local, local_udp, cluster, nowhere))


def test_each_node_counts_its_ready_endpoints_by_address_across_ports() -> None:
    want = healthcheck.wanted(view())
    assert want[("worker-1", 31000)] == ("default", "web", 2)  # 10.244.1.2 serves both ports: counted once
    assert want[("worker-2", 31000)] == ("default", "web", 0)  # serving-terminating does not count
    assert want[("control-plane", 31000)] == ("default", "web", 0)
    assert want[("worker-1", 31001)] == ("default", "none", 0)
    assert len(want) == 6


def test_only_nodes_with_a_ready_endpoint_may_announce_a_local_services_address() -> None:
    config = load_cluster(TOPOLOGIES / "services.yaml")
    agent = NodeAgent(config, naming.Scope(config.name))
    assert agent.candidates(view()) == {"10.50.100.5": ["worker-1"],
                                        "10.50.100.6": ["control-plane", "worker-1", "worker-2"],
                                        "10.50.100.7": []}
    agent.ready["worker-1"] = False
    assert agent.candidates(view())["10.50.100.5"] == []
