"""NetworkPolicy in the e2e netpol layout (namespaces x, y, z; pods a, b, c; TCP and UDP on 80
and 81). Every case applies its policies, waits for the data plane, probes every pair on every
port and protocol, and compares the complete truth table with the one Kubernetes semantics give."""
from __future__ import annotations


import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from emulator.client import probe
from tests.cluster import k8semu, module_cluster, poll

# the other data planes run in make slow (make test's budget): flannel, calico
OTHER_PLANES = ("topologies/netpol-flannel.yaml", "topologies/netpol-calico.yaml")
netpol_cluster = module_cluster("topologies/netpol.yaml", *OTHER_PLANES, slow=OTHER_PLANES)
PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]
KEYS = [f"{proto}/{port}" for proto in ("tcp", "udp") for port in (80, 81)]


@pytest.fixture
def cluster(netpol_cluster):
    yield netpol_cluster
    for ns in "xyz":  # every case starts from no policies and the original labels
        for pol in json.loads(k8semu("get", "networkpolicies", "-n", ns, "-o", "json").stdout)["items"]:
            k8semu("delete", "networkpolicy", pol["metadata"]["name"], "-n", ns)
    settle()
    # and from no remembered connections: a UDP "connection" a previous case allowed would
    # otherwise pass as established (that is the point of conntrack, but not between cases)
    if netpol_cluster.cni == "openflow":
        subprocess.run(["ovs-appctl", "dpctl/flush-conntrack"], check=False, capture_output=True)
    else:  # each node's own conntrack table
        for node in ("control-plane", "worker-1", "worker-2"):
            netpol_cluster.exec(node, "conntrack", "-F")


def settle() -> None:
    poll(lambda: "in sync" in k8semu("status").stdout, timeout=10, what="the data plane to catch up")


def policy(ns: str, name: str, spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"


def check(cluster, allowed) -> None:
    """``allowed(src, dst, proto, port)`` for every cell; a pod always reaches itself."""
    settle()
    actual = probe.probe(cluster.client, ["x", "y", "z"], [80, 81], ["tcp", "udp"])
    expected = {k: {s: {d: s == d or allowed(s, d, k.split("/")[0], int(k.split("/")[1])) for d in PODS}
                    for s in PODS} for k in KEYS}
    differences = probe.diff(expected, actual)
    assert not differences, "\n".join(differences) + "\n" + probe.render(actual)


def ns(pod: str) -> str:
    return pod.split("/")[0]


def name(pod: str) -> str:
    return pod.split("/")[1]


def test_no_policy_allows_everything(cluster) -> None:
    check(cluster, lambda s, d, proto, port: True)


def test_default_deny_ingress_in_a_namespace(cluster) -> None:
    cluster.apply(policy("x", "deny", "  podSelector: {}\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x")


def test_allow_from_one_label_in_the_same_namespace(cluster) -> None:
    cluster.apply(policy("x", "allow-b", "  podSelector: {matchLabels: {pod: a}}\n"
                                         "  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: d != "x/a" or s == "x/b")


def test_namespace_selector(cluster) -> None:
    cluster.apply(policy("x", "from-y", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) == "y")


def test_automatic_namespace_name_label(cluster) -> None:
    cluster.apply(policy("x", "from-z", "  podSelector: {}\n  ingress:\n"
                                        "    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) == "z")


def test_pod_and_namespace_selector_in_one_peer_is_and(cluster) -> None:
    cluster.apply(policy("x", "and", "  podSelector: {}\n  ingress:\n    - from: [{namespaceSelector: {matchLabels: {ns: y}},"
                                     " podSelector: {matchLabels: {pod: b}}}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or s == "y/b")


def test_two_peers_are_or(cluster) -> None:
    cluster.apply(policy("x", "or", "  podSelector: {}\n  ingress:\n    - from: [{namespaceSelector: {matchLabels: {ns: y}}},"
                                    " {podSelector: {matchLabels: {pod: b}}}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) == "y" or s == "x/b")


def test_port_number_and_protocol(cluster) -> None:
    cluster.apply(policy("x", "tcp80", "  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: TCP}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or (proto, port) == ("tcp", 80))


def test_udp_only(cluster) -> None:
    cluster.apply(policy("x", "udp", "  podSelector: {}\n  ingress: [{ports: [{protocol: UDP}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or proto == "udp")


def test_named_port(cluster) -> None:
    cluster.apply(policy("x", "named", "  podSelector: {}\n  ingress: [{ports: [{port: serve-81-tcp}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or (proto, port) == ("tcp", 81))


def test_port_range_with_end_port(cluster) -> None:
    cluster.apply(policy("x", "range", "  podSelector: {}\n  ingress: [{ports: [{port: 81, endPort: 90, protocol: UDP}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or (proto, port) == ("udp", 81))


def test_empty_rule_allows_all_and_empty_list_denies_all(cluster) -> None:
    cluster.apply(policy("x", "open", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{}]\n"))
    cluster.apply(policy("y", "closed", "  podSelector: {matchLabels: {pod: a}}\n  ingress: []\n"))
    check(cluster, lambda s, d, proto, port: d != "y/a")


def test_policies_are_a_union_in_any_order(cluster) -> None:
    cluster.apply(policy("x", "p2", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]\n"))
    cluster.apply(policy("x", "p1", "  podSelector: {}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) == "z" or s == "x/c")


def test_egress_deny_all(cluster) -> None:
    cluster.apply(policy("x", "no-egress", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"))
    check(cluster, lambda s, d, proto, port: s != "x/a")


def test_egress_isolation_covers_the_pods_own_node(cluster) -> None:
    """A pod isolated for egress reaches its own node's address only where a rule allows it:
    judged in INPUT on flannel, as OVS judges it on openflow."""
    node_ip = cluster.pod("a", "x")["status"]["hostIP"]

    def reaches() -> bool:
        return cluster.exec("a", "ping", "-c", "1", "-W", "1", node_ip, namespace="x").returncode == 0
    assert reaches()
    cluster.apply(policy("x", "no-egress", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"))
    settle()
    assert not reaches()
    cluster.apply(policy("x", "to-node", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
                                         f"  egress: [{{to: [{{ipBlock: {{cidr: {node_ip}/32}}}}]}}]\n"))
    settle()
    assert reaches()


def test_egress_to_one_namespace_and_port(cluster) -> None:
    cluster.apply(policy("x", "egress-y", "  podSelector: {}\n  egress:\n    - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n"
                                          "      ports: [{port: 81}]\n"))
    # no policyTypes and an egress section: [Ingress, Egress], so x's ingress is denied too
    check(cluster, lambda s, d, proto, port: ns(d) != "x" and (ns(s) != "x" or (ns(d) == "y" and (proto, port) == ("tcp", 81))))


def test_sender_egress_and_receiver_ingress_must_both_allow(cluster) -> None:
    cluster.apply(policy("x", "egress-to-y", "  podSelector: {}\n  policyTypes: [Egress]\n"
                                             "  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n"))
    cluster.apply(policy("y", "in-from-z", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: (ns(s) != "x" or ns(d) == "y") and (ns(d) != "y" or ns(s) == "z"))


def test_ip_block_with_except(cluster) -> None:
    pods = {p["metadata"]["namespace"] + "/" + p["metadata"]["name"]: p["status"]["podIP"]
            for n in "xyz" for p in cluster.get("pods", n)}
    excluded = f"{pods['y/b']}/32"
    peer = "{ipBlock: {cidr: 10.244.0.0/16, except: [" + excluded + "]}}"
    cluster.apply(policy("x", "block", "  podSelector: {}\n  ingress:\n    - from: [" + peer + "]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or s != "y/b")


def test_label_change_is_enforced_within_a_second(cluster) -> None:
    cluster.apply(policy("x", "allow-b", "  podSelector: {matchLabels: {pod: a}}\n"
                                         "  ingress: [{from: [{podSelector: {matchLabels: {role: friend}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: d != "x/a")
    pod = json.loads(k8semu("get", "pod", "c", "-n", "x", "-o", "json").stdout)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "x",
                                                                "labels": {"pod": "c", "role": "friend"}},
                "spec": {k: v for k, v in pod["spec"].items() if k not in ("nodeName",)}}
    start = time.monotonic()
    k8semu("apply", "-f", "-", input=json.dumps(manifest))
    settle()
    assert time.monotonic() - start < 1.5
    check(cluster, lambda s, d, proto, port: d != "x/a" or s == "x/c")


def test_service_traffic_is_checked_against_the_endpoint(cluster) -> None:
    cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n"
                  "spec: {selector: {pod: a}, ports: [{port: 8080, targetPort: 80}]}\n")
    cluster.apply(policy("x", "only-y", "  podSelector: {matchLabels: {pod: a}}\n"
                                        "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n"))
    settle()
    vip = json.loads(k8semu("get", "svc", "a", "-n", "x", "-o", "json").stdout)["spec"]["clusterIP"]
    for src, ok in (("y/b", True), ("z/b", False)):
        done = cluster.exec(name(src), "nc", "-w", "1", vip, "8080", namespace=ns(src))
        assert (done.returncode == 0 and done.stdout.strip() == "a") is ok, (src, done)
    k8semu("delete", "svc", "a", "-n", "x")


def test_established_connections_survive_a_policy_that_still_allows_them(cluster) -> None:
    target = json.loads(k8semu("get", "pod", "a", "-n", "x", "-o", "json").stdout)["status"]["podIP"]
    # a long-lived TCP conversation from y/b: a shell loop writing a line a second into one socket
    conv = subprocess.Popen(["k8semu", "exec", "-n", "y", "b", "--", "sh", "-c",
                             f"(for i in $(seq 6); do echo $i; sleep 0.5; done) | nc -w 5 {target} 81"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cluster.apply(policy("x", "keep-y", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n"))
    out, _ = conv.communicate(timeout=20)
    assert conv.returncode == 0 and out.strip() == "a"
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) == "y")


RAW_TCP = str(Path(__file__).resolve().parents[1] / "fixtures" / "rawtcp.py")  # the checkout is visible in pods


def test_a_packet_conntrack_marks_invalid_is_dropped_never_past_policy(cluster) -> None:
    """A SYN-ACK that opens nothing is invalid in conntrack (OVS's conntrack will not let it
    create a connection) and is dropped before policy, as Antrea drops ct invalid and kube-proxy
    its INVALID state: without the drop the target's kernel would answer it with a RST. A bare
    ACK is not invalid: conntrack picks it up as a new connection (as Linux's default
    nf_conntrack_tcp_loose does), so policy decides it like any new connection: answered (a
    RST) without a policy, dropped under a default deny. A SYN shows the raw sender works."""
    ip = {p: json.loads(k8semu("get", "pod", p, "-n", "x", "-o", "json").stdout)["status"]["podIP"] for p in "ab"}

    def send(flags: str) -> str:
        return cluster.exec("a", "python3", RAW_TCP, ip["a"], ip["b"], "80", flags, "1.5", namespace="x").stdout.strip()

    assert send("S") == "answered SA"
    assert send("SA") == "no answer"  # a RST here would mean the invalid packet reached the pod
    assert send("A") == "answered R"
    cluster.apply(policy("x", "deny", "  podSelector: {}\n"))
    settle()
    for flags in ("S", "SA", "A"):
        assert send(flags) == "no answer", flags


def test_denied_tcp_connect_times_out_rather_than_being_refused(cluster) -> None:
    cluster.apply(policy("x", "deny", "  podSelector: {}\n"))
    settle()
    target = json.loads(k8semu("get", "pod", "a", "-n", "x", "-o", "json").stdout)["status"]["podIP"]
    start = time.monotonic()
    done = cluster.exec("b", "curl", "-sS", "-m", "2", f"http://{target}/", namespace="y")
    assert done.returncode == 28 and time.monotonic() - start >= 2  # timed out, no RST


def test_invalid_policies_are_refused_with_the_field() -> None:
    bad = [("cidr: 10.0.0.0/33", "ipBlock.cidr: Invalid value: '10.0.0.0/33'"),
           ("cidr: 10.1.0.0/16, except: [10.2.0.0/24]", "must be a strict subset of `cidr`")]
    for block, message in bad:
        text = policy("x", "bad", f"  podSelector: {{}}\n  ingress: [{{from: [{{ipBlock: {{{block}}}}}]}}]\n")
        done = k8semu("apply", "-f", "-", input=text, check=False)
        assert done.returncode == 3 and message in done.stderr, done.stderr
    text = policy("x", "bad", "  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80}]}]\n")
    assert "must be greater than or equal to `port`" in k8semu("apply", "-f", "-", input=text, check=False).stderr
    text = policy("x", "bad", "  podSelector: {}\n  ingress: [{ports: [{port: 90, protocol: ICMP}]}]\n")
    assert "Unsupported value: 'ICMP'" in k8semu("apply", "-f", "-", input=text, check=False).stderr


def test_match_expressions_in_pod_selector(cluster) -> None:
    cluster.apply(policy("x", "expr", "  podSelector: {}\n  ingress:\n    - from: [{podSelector: {matchExpressions: "
                                      "[{key: pod, operator: In, values: [a, c]}]}}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or s in ("x/a", "x/c"))


def test_namespace_selector_not_in(cluster) -> None:
    cluster.apply(policy("x", "not-y", "  podSelector: {}\n  ingress:\n    - from: [{namespaceSelector: {matchExpressions: "
                                       "[{key: ns, operator: NotIn, values: [y]}]}}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or ns(s) != "y")


def test_ingress_and_egress_in_one_policy(cluster) -> None:
    cluster.apply(policy("x", "both", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n"
                                      "  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n"
                                      "  egress: [{to: [{namespaceSelector: {matchLabels: {ns: z}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: (d != "x/a" or ns(s) == "y") and (s != "x/a" or ns(d) == "z"))


def test_several_ports_in_one_rule(cluster) -> None:
    cluster.apply(policy("x", "ports", "  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: TCP}, "
                                       "{port: 81, protocol: UDP}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or (proto, port) in (("tcp", 80), ("udp", 81)))


def test_egress_policies_of_a_namespace_are_a_union(cluster) -> None:
    cluster.apply(policy("y", "deny-egress", "  podSelector: {}\n  policyTypes: [Egress]\n"))
    cluster.apply(policy("y", "egress-to-x", "  podSelector: {}\n  policyTypes: [Egress]\n"
                                             "  egress: [{to: [{namespaceSelector: {matchLabels: {ns: x}}}]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(s) != "y" or ns(d) == "x")


def test_ip_block_of_one_node(cluster) -> None:
    """An ipBlock holding one node's pod addresses: its podCIDR, or (calico, where a node's pods
    take addresses from the IP pool's blocks) the blocks affine to it."""
    nodes = {n["metadata"]["name"]: [n["spec"]["podCIDR"]] for n in cluster.get("nodes")}
    if cluster.cni == "calico":
        shown = k8semu("--cluster", cluster.name, "ipam", "show", "--show-blocks").stdout
        nodes = {"worker-1": re.findall(r"^Block\s+(\S+)\s+host:worker-1\s", shown, re.M)}
    where = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"]["nodeName"]
             for n in "xyz" for p in cluster.get("pods", n)}
    blocks = ", ".join("{ipBlock: {cidr: " + cidr + "}}" for cidr in nodes["worker-1"])
    cluster.apply(policy("x", "node", "  podSelector: {}\n  ingress: [{from: [" + blocks + "]}]\n"))
    check(cluster, lambda s, d, proto, port: ns(d) != "x" or where[s] == "worker-1")


def test_describe_netpol_says_what_it_selects_and_allows(cluster) -> None:
    cluster.apply(policy("x", "allow-b", "  podSelector: {matchLabels: {pod: a}}\n"
                                         "  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]\n"))
    out = k8semu("describe", "netpol", "allow-b", "-n", "x").stdout
    assert "PodSelector:     pod=a" in out and "To Port: 80/TCP" in out and "PodSelector: pod=b" in out
    assert "Not affecting egress traffic" in out and "Selected pods:  a" in out


def test_trace_names_the_rule_that_admits_and_the_table_that_drops_and_live_agrees(cluster) -> None:
    cluster.apply(policy("x", "allow-b", "  podSelector: {matchLabels: {pod: a}}\n"
                                         "  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]\n"))
    settle()

    def trace(src: str) -> dict:
        done = k8semu("trace", src, "pod/a", "-n", "x", "--port", "80", "--live", "-o", "json", check=False)
        return json.loads(done.stdout)

    allowed, denied = trace("b"), trace("c")
    assert allowed["verdict"] == "delivered" and allowed["where"] == "pod x/a" and allowed["live"]["agrees"], \
        allowed["live"]
    assert not denied["live"]["reached"] and denied["live"]["agrees"], denied["live"]
    if cluster.cni != "openflow":  # the policy agent's chains, traced live by nftables: the drop's rule
        assert denied["verdict"] == "dropped" and denied["hops"][-1]["kind"] in ("rule", "route"), denied["where"]
        return
    assert any(h.get("table") == "IngressRule" and h.get("owner") == "networkpolicy x/allow-b ingress[0]"
               for h in allowed["hops"])
    assert denied["verdict"] == "dropped" and denied["hops"][-1]["table"] == "IngressRule"
    assert "isolated by x/allow-b" in denied["where"]  # the policy that isolates x/a, named
    assert denied["live"]["agrees"] and not denied["live"]["reached"], denied["live"]
