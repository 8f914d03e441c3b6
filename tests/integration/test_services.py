"""Services as kube-proxy makes them, programmed by the controller: ClusterIP load balancing,
affinity, rejection, NodePort and LoadBalancer from outside, traffic policies, readiness,
UDP, hairpin, masquerade to the outside, environment variables."""
from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import time


from emulator.scenario.artifacts import StepArtifacts
from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll

NODES = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4"}


# the same lab on every data plane (issues #13, #14): the controller's OpenFlow pipeline here,
# the others (SERVICES_PLANES) in make slow (make test's budget)
svc_cluster = module_cluster("topologies/services.yaml", *SERVICES_PLANES, slow=SERVICES_PLANES)


def service(cluster: Cluster, name: str) -> dict:
    return json.loads(k8semu("get", "svc", name, "-o", "json").stdout)


def cip(cluster: Cluster, name: str) -> str:
    return service(cluster, name)["spec"]["clusterIP"]


def web_pods(cluster: Cluster) -> list[dict]:
    return [p for p in cluster.get("pods", "default", "app=web") if not p["metadata"].get("deletionTimestamp")]


def endpoints(name: str) -> list[str]:
    ep = json.loads(k8semu("get", "endpoints", name, "-o", "json").stdout)
    return sorted(a["ip"] for s in ep.get("subsets", []) for a in s.get("addresses", []))


def hits(cluster: Cluster, source: str, url: str, n: int) -> collections.Counter:
    script = f'for i in $(seq {n}); do curl -s -m 2 {url} | grep -o "pod: [a-z0-9-]*"; done'
    out = cluster.exec(source, "sh", "-c", script, timeout=120).stdout
    return collections.Counter(line.split()[1] for line in out.splitlines())


def test_get_svc_shows_types_ips_and_ports(svc_cluster: Cluster) -> None:
    table = k8semu("get", "svc").stdout
    assert re.search(r"^web-nodeport\s+NodePort\s+10\.\d+\.\d+\.\d+\s+<none>\s+80:30007/TCP", table, re.M)
    assert re.search(r"^web-lb\s+LoadBalancer\s+\S+\s+10\.50\.100\.5\s+80:3\d{4}/TCP", table, re.M)
    assert re.search(r"^kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443/TCP", table, re.M)
    svc_cluster.wait_running("default", count=5)
    lb = service(svc_cluster, "web-lb")
    assert lb["status"]["loadBalancer"]["ingress"] == [{"ip": "10.50.100.5", "ipMode": "VIP"}]
    assert endpoints("web") == sorted(p["status"]["podIP"] for p in web_pods(svc_cluster))
    described = k8semu("describe", "svc", "web-nodeport").stdout
    assert re.search(r"^NodePort:\s+<unset>\s+30007/TCP$", described, re.M)
    assert re.search(r"^Endpoints:\s+(10\.244\.\d+\.\d+:80,?){3}$", described, re.M)


def test_cluster_ip_balances_300_connections_over_3_endpoints(svc_cluster: Cluster) -> None:
    counts = hits(svc_cluster, "client", f"http://{cip(svc_cluster, 'web')}:8080/", 300)
    assert sum(counts.values()) == 300 and len(counts) == 3, counts
    assert min(counts.values()) >= 60, counts  # each endpoint at least 20%


def test_endpoint_sees_the_client_pod_ip(svc_cluster: Cluster) -> None:
    echo = svc_cluster.exec("client", "curl", "-s", "-m", "3", f"http://{cip(svc_cluster, 'echo')}/").stdout
    client_ip = svc_cluster.pod("client")["status"]["podIP"]
    assert json.loads(echo)["client"] == client_ip


def test_cluster_ip_reachable_from_every_node(svc_cluster: Cluster) -> None:
    for node in NODES:
        assert svc_cluster.curl(node, f"http://{cip(svc_cluster, 'web')}:8080/").returncode == 0, node


def test_client_ip_affinity_sticks_to_one_endpoint(svc_cluster: Cluster) -> None:
    svc_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: sticky}\nspec:\n"
                      "  selector: {app: web}\n  sessionAffinity: ClientIP\n"
                      "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80}]\n")
    url = f"http://{cip(svc_cluster, 'sticky')}/"
    poll(lambda: svc_cluster.curl("client", url).returncode == 0, what="the sticky service")
    assert len(hits(svc_cluster, "client", url, 30)) == 1
    assert len(hits(svc_cluster, "worker-2", url, 10)) == 1


def test_service_without_endpoints_rejects_at_once(svc_cluster: Cluster) -> None:
    start = time.monotonic()
    done = svc_cluster.exec("client", "curl", "-sS", "-m", "5", f"http://{cip(svc_cluster, 'empty')}/")
    assert done.returncode == 7 and "Couldn't connect" in done.stderr  # connection refused (RST)
    assert time.monotonic() - start < 1.0 + 0.5  # the exec itself costs a little
    udp = svc_cluster.exec("client", "sh", "-c", f"echo x | nc -u -w1 {cip(svc_cluster, 'kubernetes')} 9999")
    assert udp.returncode == 0  # no UDP port on the Service: not load-balanced, no hang


def test_nodeport_answers_on_every_node_from_outside(svc_cluster: Cluster) -> None:
    for node, ip in NODES.items():
        page = svc_cluster.curl("outside", f"http://{ip}:30007/")
        assert page.returncode == 0 and "Welcome to nginx!" in page.stdout, node


def test_external_traffic_policy_local_keeps_client_ip_and_skips_nodes_without_endpoints(svc_cluster: Cluster) -> None:
    echo_node = svc_cluster.get("pods", "default", "app=echo")[0]["spec"]["nodeName"]
    reply = svc_cluster.curl("outside", f"http://{NODES[echo_node]}:30080/")
    assert json.loads(reply.stdout)["client"] == "172.18.0.254"
    for node, ip in NODES.items():
        if node != echo_node:
            assert svc_cluster.curl("outside", f"http://{ip}:30080/", timeout=2).returncode == 28, node


def test_nodeport_with_cluster_policy_is_snatted(svc_cluster: Cluster) -> None:
    svc_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: echo-cluster}\nspec:\n  type: NodePort\n"
                      "  selector: {app: echo}\n  ports: [{port: 80, targetPort: 80, nodePort: 31000}]\n")
    reply = poll(lambda: (lambda r: r.returncode == 0 and r)(svc_cluster.curl("outside", "http://172.18.0.2:31000/")),
                 what="NodePort 31000 on the control plane")
    # the node's address on the pod network: its gateway port (openflow), its flannel.1 (flannel);
    # calico's cali veths have none: the node's own address
    assert json.loads(reply.stdout)["client"] == {"openflow": "10.244.0.1", "flannel": "10.244.0.0",
                                                  "calico": "172.18.0.2"}[svc_cluster.cni]


def test_udp_service(svc_cluster: Cluster) -> None:
    out = svc_cluster.exec("client", "sh", "-c", f"echo ping | nc -u -w1 {cip(svc_cluster, 'echo')} 53").stdout
    echo_pod = svc_cluster.get("pods", "default", "app=echo")[0]["metadata"]["name"]
    assert out.strip() == f"{echo_pod}: ping"


def test_pod_reaches_itself_through_its_service(svc_cluster: Cluster) -> None:
    pod = web_pods(svc_cluster)[0]["metadata"]["name"]
    codes = {svc_cluster.exec(pod, "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{cip(svc_cluster, 'web')}:8080/").stdout for _ in range(6)}
    assert codes == {"200"}


def test_readiness_failure_removes_and_restores_the_endpoint(svc_cluster: Cluster) -> None:
    pod = web_pods(svc_cluster)[0]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    index = str(svc_cluster.pod_dir(name) / "nginx" / "html" / "index.html")
    subprocess.run(["mv", index, index + ".off"], check=True)
    try:
        poll(lambda: ip not in endpoints("web"), timeout=10, what=f"{ip} to leave the endpoints")
        ready = svc_cluster.pod(name)["status"]["containerStatuses"][0]["ready"]
        assert ready is False
        counts = hits(svc_cluster, "client", f"http://{cip(svc_cluster, 'web')}:8080/", 30)
        assert name not in counts and sum(counts.values()) == 30
    finally:
        subprocess.run(["mv", index + ".off", index], check=True)
    poll(lambda: ip in endpoints("web"), timeout=10, what=f"{ip} to come back")


def test_load_balancer_from_outside_and_failover(svc_cluster: Cluster) -> None:
    def holder() -> str | None:
        for node in NODES:
            if "10.50.100.5/32" in subprocess.run(["ip", "-n", svc_cluster.netns(node), "-4", "-o", "addr", "show", "eth0"],
                                                  capture_output=True, text=True).stdout:
                return node
        return None
    first = poll(holder, what="a node to announce 10.50.100.5")
    assert "Welcome to nginx!" in svc_cluster.curl("outside", "http://10.50.100.5/").stdout
    subprocess.run(["ip", "-n", svc_cluster.netns(first), "link", "set", "eth0", "down"], check=True)
    try:
        second = poll(lambda: (lambda h: h if h and h != first else None)(holder()), timeout=10,
                      what="another node to take 10.50.100.5 over")
        assert second != first
        poll(lambda: "Welcome to nginx!" in svc_cluster.curl("outside", "http://10.50.100.5/").stdout,
             timeout=10, what="the LoadBalancer address to answer again")
        nodes = {n["metadata"]["name"]: n["status"]["conditions"][0]["status"] for n in svc_cluster.get("nodes")}
        assert nodes[first] == "False"
    finally:
        subprocess.run(["ip", "-n", svc_cluster.netns(first), "link", "set", "eth0", "up"], check=True)


RANGED = """apiVersion: v1
kind: Service
metadata: {name: web-ranged}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
  loadBalancerSourceRanges: [%s]
"""


def test_load_balancer_source_ranges_admit_only_their_sources(svc_cluster: Cluster) -> None:
    """loadBalancerSourceRanges: the outside host (172.18.0.254) reaches the LoadBalancer address
    while a range holds it, and is dropped once the ranges leave it out (kube-proxy's KUBE-FW on
    flannel, the node's firewall on openflow); a pod outside the ranges is dropped too."""
    svc_cluster.apply(RANGED % "172.18.0.254/32")
    try:
        lb = poll(lambda: service(svc_cluster, "web-ranged")["status"]["loadBalancer"].get("ingress"),
                  what="web-ranged's LoadBalancer address")[0]["ip"]
        assert service(svc_cluster, "web-ranged")["spec"]["loadBalancerSourceRanges"] == ["172.18.0.254/32"]
        svc_cluster.synced()
        assert "Welcome to nginx!" in svc_cluster.curl("outside", f"http://{lb}/").stdout
        assert svc_cluster.curl("client", f"http://{lb}/", timeout=2).returncode != 0
        svc_cluster.apply(RANGED % "192.0.2.0/24")
        svc_cluster.synced()
        blocked = svc_cluster.curl("outside", f"http://{lb}/", timeout=2)
        assert blocked.returncode != 0 and "Welcome" not in blocked.stdout
    finally:
        k8semu("delete", "svc", "web-ranged")


def test_pods_reach_the_outside_masqueraded_to_their_node(svc_cluster: Cluster) -> None:
    server = subprocess.Popen(["ip", "netns", "exec", svc_cluster.netns("outside"), "python3", "-m", "http.server", "8000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = poll(lambda: (lambda r: r.returncode == 0 and r)(svc_cluster.curl("client", "http://172.18.0.254:8000/")),
                    what="the outside web server")
        assert "Directory listing" in page.stdout
    finally:
        server.terminate()
        log = server.communicate(timeout=10)[1]
    client_node = svc_cluster.pod("client")["spec"]["nodeName"]
    assert f"{NODES[client_node]} - -" in log


def test_pods_get_environment_variables_of_earlier_services(svc_cluster: Cluster) -> None:
    env = svc_cluster.exec("client", "env").stdout
    web = cip(svc_cluster, "web")
    assert f"WEB_SERVICE_HOST={web}" in env and "WEB_SERVICE_PORT=8080" in env
    assert f"WEB_PORT_8080_TCP=tcp://{web}:8080" in env and "KUBERNETES_SERVICE_HOST=10.96.0.1" in env
    assert "STICKY_SERVICE_HOST" not in env  # created after the pod


def test_the_data_plane_labels_services(svc_cluster: Cluster) -> None:
    """What a student reads: the OpenFlow tables' comments (openflow), or kube-proxy's chains
    (flannel and calico, where ``k8semu flows`` says there are no tables)."""
    if svc_cluster.cni != "openflow":
        nat = svc_cluster.exec("worker-1", "iptables-save", "-t", "nat", check=True).stdout
        assert re.search(r'-A KUBE-SERVICES -d 10\.\S+/32 -p tcp -m comment --comment "default/web cluster IP" '
                         r"-m tcp --dport 8080 -j KUBE-SVC-", nat)
        assert ('-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN'
                if svc_cluster.cni == "flannel" else "-A cali-nat-outgoing ") in nat
        filt = svc_cluster.exec("worker-1", "iptables-save", "-t", "filter", check=True).stdout
        assert '--comment "default/empty has no endpoints"' in filt and "REJECT" in filt
        refused = k8semu("--cluster", svc_cluster.name, "flows", "worker-1", check=False)
        assert refused.returncode != 0 and "no OpenFlow tables" in refused.stderr
        return
    if svc_cluster.kube_proxy:  # beside the controller: kube-proxy's chains too, and k8semu's CNI chains
        nat = svc_cluster.exec("worker-1", "iptables-save", "-t", "nat", check=True).stdout
        assert '--comment "default/web cluster IP"' in nat and "-A PREROUTING -j K8SEMU-HOSTPORTS" in nat
        assert "K8SEMU-SERVICES" not in nat  # kube-proxy serves NodePorts, not the controller's NAT
    dump = k8semu("flows", "worker-1").stdout
    assert re.search(r"table=ServiceLB, .*group:\d+ .*# service default/web:8080", dump)
    assert "# service default/empty:80" in dump and "CONTROLLER:65535" in dump


def test_allocation_errors(svc_cluster: Cluster) -> None:
    clash = k8semu("apply", "-f", "-", check=False, input="apiVersion: v1\nkind: Service\nmetadata: {name: clash}\n"
                   "spec: {type: NodePort, selector: {a: b}, ports: [{port: 80, nodePort: 30007}]}\n")
    assert clash.returncode == 3 and "provided port is already allocated" in clash.stderr
    out_of_range = k8semu("apply", "-f", "-", check=False, input="apiVersion: v1\nkind: Service\nmetadata: {name: far}\n"
                          "spec: {clusterIP: 10.200.0.5, ports: [{port: 80}]}\n")
    assert out_of_range.returncode == 3 and "provided IP is not in the valid range" in out_of_range.stderr
    bad = k8semu("apply", "-f", "-", check=False, input="apiVersion: v1\nkind: Service\nmetadata: {name: bad}\n"
                 "spec: {type: NodePort, ports: [{port: 80, nodePort: 80}]}\n")
    assert bad.returncode == 3 and "30000-32767" in bad.stderr


def trace(*args: str) -> dict:
    done = k8semu("trace", *args, "-o", "json", check=False)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_trace_follows_a_cluster_ip_across_nodes_and_a_live_attempt_agrees(svc_cluster: Cluster) -> None:
    if svc_cluster.cni != "openflow":  # kube-proxy's chains, traced live by nftables in every node
        out = trace("client", "svc/web")
        rules = [h for h in out["hops"] if h["kind"] == "rule"]
        chains = [h["table"].split()[-1] for h in rules]
        assert chains[:2] == ["PREROUTING", "KUBE-SERVICES"] and chains[2].startswith("KUBE-SVC-"), chains
        assert chains[3].startswith("KUBE-SEP-") and f"dnat to {out['endpoint']}" in rules[3]["match"]
        assert out["verdict"] == "delivered" and out["live"]["agrees"] and out["live"]["reached"] == [out["where"]], out
        routes = [h for h in out["hops"] if h["kind"] == "route"]
        assert routes and all(out["endpoint"].split(":")[0] in h["text"] for h in routes)
        empty = trace("client", "svc/empty")
        assert empty["verdict"] == "rejected" and "KUBE-SERVICES" in empty["where"] and empty["live"]["agrees"], empty
        outside = trace("external/outside", "node/worker-2", "--port", "30007")  # kube-proxy's NodePort chains
        walked = [h["table"].split()[-1] for h in outside["hops"] if h["kind"] == "rule"]
        assert "KUBE-NODEPORTS" in walked and any(c.startswith("KUBE-EXT-") for c in walked), walked
        assert outside["verdict"] == "delivered" and outside["destination"] == "172.18.0.4:30007"
        named = trace("client", "web.default", "--port", "8080")  # a DNS name, asked from the pod
        assert any(h["kind"] == "dns" and "NOERROR" in h["text"] for h in named["hops"])
        assert named["verdict"] == "delivered"
        local = next(p for p in web_pods(svc_cluster) if p["spec"]["nodeName"] == "worker-2")
        same = trace("client", f"pod/{local['metadata']['name']}", "--port", "80")  # no tunnel, no Service
        assert same["verdict"] == "delivered" and not any(h["kind"] == "tunnel" for h in same["hops"])
        return
    remote = next(p["status"]["podIP"] for p in web_pods(svc_cluster) if p["spec"]["nodeName"] == "worker-1")
    out = trace("client", "svc/web", "--endpoint", f"{remote}:80")
    assert (out["verdict"], out["endpoint"]) == ("delivered", f"{remote}:80")
    kinds = [h["kind"] for h in out["hops"]]
    assert kinds.index("group") < kinds.index("tunnel") < kinds.index("deliver")
    assert any(h["kind"] == "conntrack" and f"DNAT to {remote}:80" in h["text"] for h in out["hops"])
    tunnel = next(h for h in out["hops"] if h["kind"] == "tunnel")
    assert "172.18.0.4 -> 172.18.0.3" in tunnel["text"]
    out = trace("client", "svc/web", "--live")
    live = out["live"]  # the switch picked its own endpoint (conntrack says which): the trace follows it
    assert live["agrees"] and live["reached"] == [out["where"]] and live["endpoint"] == out["endpoint"], live


def test_trace_of_a_pod_on_the_same_node_has_no_tunnel(svc_cluster: Cluster) -> None:
    if svc_cluster.cni != "openflow":
        return
    local = next(p for p in web_pods(svc_cluster) if p["spec"]["nodeName"] == "worker-2")
    out = trace("client", f"pod/{local['metadata']['name']}", "--port", "80", "--live")
    assert out["verdict"] == "delivered" and out["where"] == f"pod default/{local['metadata']['name']}"
    assert not any(h["kind"] in ("tunnel", "group") for h in out["hops"])
    assert out["live"]["agrees"], out["live"]


def test_trace_of_a_node_port_from_outside_shows_the_nodes_nat_and_agrees(svc_cluster: Cluster) -> None:
    if svc_cluster.cni != "openflow":
        return
    out = trace("external/outside", "node/worker-2", "--port", "30007", "--live")
    assert out["verdict"] == "delivered" and out["destination"] == "172.18.0.4:30007"
    if svc_cluster.kube_proxy:  # kube-proxy's NodePort chains, traced live, then the gateway into OVS
        walked = [h["table"].split()[-1] for h in out["hops"] if h["kind"] == "rule"]
        assert "KUBE-NODEPORTS" in walked and any(c.startswith("KUBE-EXT-") for c in walked), walked
        assert "dev k8semu-gw0" in out["hops"][-1]["text"] and out["live"]["agrees"], out
        return
    nat = out["hops"][0]
    assert nat["kind"] == "host" and "DNAT 172.18.0.4:30007" in nat["text"] and "SNAT to the gateway" in nat["text"]
    assert out["live"]["agrees"] and out["live"]["seen"][0]["packets"], out["live"]


def test_trace_of_a_service_without_endpoints_is_a_reject_and_the_source_sees_the_reset(svc_cluster: Cluster) -> None:
    if svc_cluster.cni != "openflow":
        return
    out = trace("client", "svc/empty", "--live")
    assert out["verdict"] == "rejected" and out["hops"][-1]["owner"] == "service default/empty:80"
    assert out["live"]["refused"] and out["live"]["agrees"], out["live"]


def test_trace_resolves_a_dns_name_as_the_pod_does(svc_cluster: Cluster) -> None:
    if svc_cluster.cni != "openflow":
        return
    out = trace("client", "web.default", "--port", "8080")
    dns = [h for h in out["hops"] if h["kind"] == "dns"]
    assert "NXDOMAIN" in dns[0]["text"]  # web.default.default.svc.cluster.local first: the search list
    assert f"NOERROR, {cip(svc_cluster, 'web')}" in dns[-1]["text"] and "nameserver 10.96.0.10" in dns[-1]["text"]
    assert out["verdict"] == "delivered" and out["destination"] == f"{cip(svc_cluster, 'web')}:8080"


def test_capture_on_a_node_holds_vxlan_with_node_outer_and_pod_inner_addresses(svc_cluster: Cluster, tmp_path) -> None:
    if svc_cluster.cni != "openflow":
        return
    remote = next(p for p in web_pods(svc_cluster) if p["spec"]["nodeName"] == "worker-1")["status"]["podIP"]
    pcap = tmp_path / "worker-1.pcap"
    cap = subprocess.Popen([sys.executable, "-m", "emulator", "capture", "node/worker-1", "-w", str(pcap),
                            "--duration", "20", "udp", "port", "4789"], stderr=subprocess.PIPE, text=True)
    try:
        # tcpdump has its socket open once it wrote the file's header
        poll(lambda: pcap.exists() and pcap.stat().st_size >= 24, what="tcpdump to start")
        assert svc_cluster.exec("client", "curl", "-sS", "-m", "3", f"http://{remote}/").returncode == 0
        read = lambda: subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True).stdout  # noqa: E731
        text = poll(lambda: (lambda t: f"> {remote}.80: Flags [S]" in t and t)(read()), what="the SYN in the pcap")
    finally:
        cap.terminate()  # by PID: it stops its tcpdump and ends
        cap.wait(timeout=10)
    syn = text.splitlines()
    i = next(i for i, line in enumerate(syn) if f"> {remote}.80: Flags [S]" in line)
    assert "172.18.0.4." in syn[i - 1] and "> 172.18.0.3.4789: VXLAN" in syn[i - 1]  # the outer header: node IPs
    assert syn[i].strip().startswith("IP 10.244.2.2.")  # the inner: the client pod's address


def test_a_scenario_steps_artifacts_hold_its_packets_tables_and_dns_logs(svc_cluster: Cluster, tmp_path) -> None:
    kept = StepArtifacts(svc_cluster.client, tmp_path / "01-curl")
    remote = next(p for p in web_pods(svc_cluster) if p["spec"]["nodeName"] == "worker-1")["status"]["podIP"]
    ok = svc_cluster.exec("client", "curl", "-sS", "-m", "3", f"http://{remote}/").returncode == 0
    kept.finish(ok, ["curl a pod on worker-1"])
    files = {p.name for p in (tmp_path / "01-curl").iterdir()}
    assert {"node-worker-1.pcap", "node-worker-2.pcap", "step.txt", "logs"} <= files
    assert ({"flows-worker-1.txt"} if svc_cluster.cni == "openflow" else {"rules-worker-1.txt"}) <= files
    read = subprocess.run(["tcpdump", "-nn", "-T", "vxlan", "-r", str(tmp_path / "01-curl" / "node-worker-1.pcap")],
                          capture_output=True, text=True).stdout
    assert f"> {remote}.80: Flags [S]" in read  # the step's SYN, as the node's eth0 carried it
    assert any(p.name.startswith("kube-system_coredns") for p in (tmp_path / "01-curl" / "logs").iterdir())
    assert (tmp_path / "01-curl" / "step.txt").read_text().startswith("PASS")
