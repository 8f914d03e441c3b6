"""Pure model helpers: naming, IPAM, selectors, scheduling, images, pod files."""
from __future__ import annotations

import random

import pytest

from emulator.model import images, naming, podfiles, validation
from emulator.model.ipam import AddressesExhausted, NodeIPAM
from emulator.model.meta import ObjectMeta
from emulator.model.netview import (EndpointView, NetworkView, NodeView, PodView, PolicyView, RuleView,
                                    ServicePortView)
from emulator.model.network import PodNetwork, ServiceNetwork, Underlay
from emulator.model.node import CONTROL_PLANE_TAINT, Node, Taint
from emulator.model.pod import Container, ContainerPort, EnvVar, Pod, PodSpec, Toleration
from emulator.model.scheduler import Placer, Unschedulable, ports_conflict, schedule
from emulator.model.labelquery import parse_label_query
from emulator.model.selectors import selector_from_dict


def test_ipam_never_hands_out_an_address_twice_and_skips_reserved() -> None:
    ipam = NodeIPAM("10.244.1.0/29")  # .0 network, .1 gateway, .7 broadcast
    got = [ipam.allocate(f"p{i}") for i in range(5)]
    assert got == ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"]
    with pytest.raises(AddressesExhausted):
        ipam.allocate("p5")


def test_ipam_frees_on_release_and_does_not_reuse_at_once() -> None:
    ipam = NodeIPAM("10.244.1.0/24")
    a, b = ipam.allocate("a"), ipam.allocate("b")
    ipam.release(a)
    c = ipam.allocate("c")
    assert c not in (a, b)  # host-local: continue after the last one handed out
    assert ipam.allocate("c") == c  # idempotent per owner
    assert NodeIPAM.from_dict(ipam.to_dict()) == ipam


def test_ipam_wraps_around_to_freed_addresses() -> None:
    ipam = NodeIPAM("10.0.0.0/29")
    addrs = [ipam.allocate(str(i)) for i in range(5)]
    ipam.release(addrs[0])
    assert ipam.allocate("new") == addrs[0]


def test_pod_template_hash_is_stable_and_safe() -> None:
    h = naming.pod_template_hash({"spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert h == naming.pod_template_hash({"spec": {"containers": [{"image": "nginx", "name": "c"}]}})
    assert set(h) <= set(naming.SAFE_ALPHABET) and 8 <= len(h) <= 10
    assert naming.random_suffix(random.Random(1)) != naming.random_suffix(random.Random(2))


def test_interface_names_fit_linux_limit() -> None:
    scope = naming.Scope("x" * 63, naming.MAX_SLOTS - 1)
    for i in (0, 9, naming.MAX_NODES - 1):
        for fn in (naming.underlay_veth, naming.node_bridge, naming.gateway_veth, naming.vxlan_device,
                   naming.external_veth):
            assert len(fn(scope, i)) <= 15
    assert len(naming.pod_port(scope, "a-very-long-namespace-name", "x" * 63)) <= 15
    with pytest.raises(ValueError):
        naming.check_ifname("sixteen-chars-xx")


def test_names_and_macs() -> None:
    scope = naming.Scope("demo", 3)
    assert naming.pod_netns(scope, "default", "web") == "demo_default_web"
    assert naming.pod_netns(scope, "kube-system", "dns") == "demo_kube-system_dns"
    assert naming.node_netns(scope, "worker-1") == "demo_worker-1"
    assert naming.node_bridge(scope, 12) == "k8s3-br12" and naming.underlay_bridge(scope) == "k8s3-ul"
    assert naming.datapath_id(scope, 0) == 0x40001
    assert naming.mac_from_ip("10.244.1.5") == "0a:58:0a:f4:01:05"
    assert naming.vtep_mac("172.18.0.3") == "0a:5a:ac:12:00:03"
    assert naming.pod_ofport("10.244.1.5", "10.244.1.0/24") == 105
    assert naming.expand_node_names("worker", 2) == ["worker-1", "worker-2"]
    assert validation.is_dns1123_label("web-1") and not validation.is_dns1123_label("Web")
    assert validation.is_dns1123_subdomain("a.b-c") and not validation.is_dns1123_subdomain("-a")


def test_long_names_stay_within_linux_limits() -> None:
    scope = naming.Scope("c" * 63, 35)
    name = naming.pod_netns(scope, "n" * 63, "p" * 253)
    assert len(name) <= naming.NETNS_MAX and "~" in name
    assert name != naming.pod_netns(scope, "n" * 63, "p" * 252 + "q")  # the hash keeps them apart
    assert len(naming.pod_dir("n" * 63, "p" * 253)) <= naming.NETNS_MAX
    assert len(naming.pod_port(scope, "n" * 63, "p" * 253)) == 15
    assert naming.node_bridge(scope, naming.MAX_NODES - 1) == "k8sz-br249"


def test_networks() -> None:
    assert Underlay().node_ip(0) == "172.18.0.2"
    assert PodNetwork().node_cidr(3) == "10.244.3.0/24"
    assert PodNetwork("10.32.0.0/16", 25).node_cidr(3) == "10.32.1.128/25"
    assert PodNetwork().node_capacity() == 253
    assert ServiceNetwork().dns_ip == "10.96.0.10"


def test_selectors() -> None:
    sel = parse_label_query("app=web,tier!=db,env,!legacy")
    assert sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({"app": "web", "env": "prod", "tier": "db"})
    assert not sel.matches({"app": "web"})
    assert not sel.matches({"app": "web", "env": "x", "legacy": "1"})
    expr = selector_from_dict({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]})
    assert expr.matches({"app": "b"}) and not expr.matches({"app": "c"})


def _node(name: str, index: int, **kw) -> Node:
    return Node(name, index, kw.pop("role", "worker"), f"172.18.0.{index + 2}", f"10.244.{index}.0/24", **kw)


def test_scheduler_spreads_and_honours_constraints() -> None:
    nodes = [_node("cp", 0, role="control-plane", taints=(Taint(CONTROL_PLANE_TAINT),)),
             _node("w1", 1, labels={"disk": "ssd"}), _node("w2", 2)]
    spec = PodSpec((Container("c", "busybox"),))
    load: dict[str, int] = {}
    placed = []
    for _ in range(4):
        node = schedule(spec, nodes, load)
        load[node] = load.get(node, 0) + 1
        placed.append(node)
    assert placed == ["w1", "w2", "w1", "w2"]
    assert schedule(PodSpec((), node_selector={"disk": "ssd"}), nodes, {"w1": 9}) == "w1"
    assert schedule(PodSpec((), node_name="cp"), nodes, {}) == "cp"
    tolerant = PodSpec((), tolerations=(Toleration(CONTROL_PLANE_TAINT, "Exists"),))
    assert schedule(tolerant, nodes, {"w1": 5, "w2": 5}) == "cp"
    with pytest.raises(Unschedulable):
        schedule(PodSpec((), node_selector={"disk": "hdd"}), nodes, {})


def test_host_ports_take_a_node_only_where_they_are_free() -> None:
    """kube-scheduler's NodePorts filter: same protocol and port conflict on the same hostIP, or
    when either side binds every address; another protocol or another hostIP does not."""
    nodes = [_node("w1", 1), _node("w2", 2)]

    def wants(port: int, proto: str = "TCP", ip: str = "") -> PodSpec:
        return PodSpec((Container("c", "busybox", ports=(ContainerPort(80, "", proto, port, ip),)),))
    load: dict[str, int] = {}
    placer = Placer(nodes, load, {})
    first = placer.place(wants(8080))
    load[first] = 1
    second = placer.place(wants(8080))
    assert {first, second} == {"w1", "w2"}  # the port is taken on the first node
    with pytest.raises(Unschedulable, match="2 node\\(s\\) didn't have free ports for the requested pod ports"):
        placer.place(wants(8080))
    assert placer.place(wants(8080, "UDP")) in ("w1", "w2")
    assert ports_conflict((("TCP", "127.0.0.1", 9, 80),), {("TCP", "172.18.0.3", 9)}) is False
    assert ports_conflict((("TCP", "127.0.0.1", 9, 80),), {("TCP", "", 9)}) is True
    assert Placer(nodes, {}).place(wants(8080)) == "w1"  # without used ports (admission): not checked


def test_image_catalogue_and_kubernetes_command_rules() -> None:
    assert images.repository("docker.io/library/nginx:1.25@sha256:ab") == "nginx"
    assert images.repository("registry.k8s.io/echoserver:1.4") == "registry.k8s.io/echoserver"
    env = {"MSG": "hi"}
    c = Container("c", "busybox", command=("sh", "-c"), args=("echo $(MSG) $$(MSG) $(NOPE)",))
    assert images.argv_for(c, {}, env, "/py") == ["sh", "-c", "echo hi $(MSG) $(NOPE)"]
    assert images.argv_for(Container("c", "nginx:1.25"), {}, {}, "/py") == ["nginx"]
    assert images.image_of(Container("c", "nginx:1.25"), {}).files == "nginx"
    assert images.image_of(Container("c", "nginx:1.25", command=("nginx",)), {}) is None
    assert images.argv_for(Container("c", "busybox"), {}, {}, "/py") == ["sleep", "infinity"]
    assert images.argv_for(Container("c", "networkstatic/iperf3", args=("-s", "-p", "5202")), {}, {}, "/py") == \
        ["iperf3", "-s", "-p", "5202"]
    extra = {"me/app": images.Image(("python3", "-m", "http.server"), ("80",))}
    assert images.argv_for(Container("c", "me/app:v1"), extra, {}, "/py") == ["python3", "-m", "http.server", "80"]
    with pytest.raises(images.UnknownImage) as info:
        images.argv_for(Container("c", "me/other"), extra, {}, "/py")
    assert "nginx" in str(info.value) and "me/app" in str(info.value)


def test_pod_files_match_kubelet() -> None:
    pod = Pod(ObjectMeta("web-1", "shop"), PodSpec((Container("c", "busybox"),)))
    assert podfiles.resolv_conf(pod, "10.96.0.10", "cluster.local") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    hosts = podfiles.hosts_file("web-1", "10.244.1.5")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith("10.244.1.5\tweb-1\n")
    c = Container("c", "busybox", env=(EnvVar("A", "x"), EnvVar("B", "$(A)-y"), EnvVar("IP", field_path="status.podIP")))
    env = podfiles.container_env(pod, c, "10.244.1.5", "w1", "172.18.0.3", "/tmp/c")
    assert env["B"] == "x-y" and env["IP"] == "10.244.1.5" and env["HOSTNAME"] == "web-1"
    assert env["K8SEMU_POD_IP"] == "10.244.1.5"


def test_the_network_view_survives_its_json_round_trip_equal_and_hashable() -> None:
    """The controller memoizes on view values: a field read back as a list is unhashable and
    stops every switch, so every sequence field is populated here and must come back a tuple."""
    ep = EndpointView("10.244.1.2", 80, "node-a")
    view = NetworkView(
        7, (NodeView("node-a", 1, "172.18.0.2", "10.244.1.0/24", "10.244.1.1", "aa:00:00:00:00:01",
                     "aa:00:00:00:00:02", 65537, 10),),
        (PodView(1, "default", "web", "node-a", "10.244.1.2", "aa:00:00:00:00:03", 3,
                 (("TCP", "", 8080, 80), ("UDP", "127.0.0.1", 53, 5353))),),
        (ServicePortView(1, "default", "web", "http", "TCP", "10.96.0.10", 80, 30080, "172.18.255.1", 10800,
                         True, True, (ep,), (1, 2), (3, 4), (ep,), ("192.0.2.10", "192.0.2.11")),),
        PolicyView((RuleView(1, "default/p ingress[0]", "Ingress", (("10.244.1.2", "node-a"),), ("0.0.0.0/0",),
                             (("TCP", 80, 90),)),), ("10.244.1.2",), ("10.244.1.3",)))
    back = NetworkView.from_json(view.to_json())
    assert back == view
    hash(back)
    for service in back.services:
        hash(service)


@pytest.mark.parametrize("query, labels, match", [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app = web , tier", {"app": "web", "tier": ""}, True),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("app=web,app=db", {"app": "web"}, False),  # every requirement must hold
    ("app in (web, db)", {"app": "db"}, True),
    ("app notin (web,db)", {"app": "api"}, True),
    ("app in (web,)", {"app": ""}, True),  # an empty member is the empty value
    ("app=", {"app": ""}, True),
    ("!legacy,env", {"env": "prod"}, True),
    ("gen>3,gen<10", {"gen": "7"}, True),
    ("gen>3", {"gen": "seven"}, False),
])
def test_label_queries_parse_as_kubectl_parses_them(query: str, labels: dict, match: bool) -> None:
    """labels.Parse's grammar (kubectl get -l, drain --pod-selector), each case its verdict."""
    assert parse_label_query(query).matches(labels) is match


@pytest.mark.parametrize("query", [
    "app=web,", "app in (web", "app in web", "app=(web)", "a b", "in=x", "!", "gen>x",
    "Bad Key=1", "app=-bad-", "app=web)",
])
def test_label_queries_kubectl_refuses_are_refused(query: str) -> None:
    with pytest.raises(ValueError):
        parse_label_query(query)
