"""kubernetes/kubernetes test/e2e/network/conntrack.go, transcribed: what kube-proxy does with
conntrack entries when endpoints come and go, and with a segment conntrack could mark invalid.
Each test is named after the e2e test it follows (docs/conformance.md maps them)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll
from tests.conformance.test_services import NODES, cluster_ip

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
services_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


UDP_PING = str(Path(__file__).resolve().parents[1] / "fixtures" / "udpping.py")  # the checkout is visible in pods


# make slow (make test's 15-minute budget): a client's datagrams through a pod's deletion and
# replacement; the flush it needs is unit-tested (test_pipeline.py, test_flannel.py)
@pytest.mark.slow
@pytest.mark.parametrize("via", ["ClusterIP", "NodePort"])
def test_should_be_able_to_preserve_udp_traffic_when_server_pod_cycles(services_cluster: Cluster, via: str) -> None:
    """conntrack.go "should be able to preserve UDP traffic when server pod cycles for a
    ClusterIP service" / "... NodePort service": a client sending a datagram every 0.2 s from
    one source port keeps being answered after its server pod is deleted and replaced, because
    the conntrack entries DNATed to the old pod are flushed once every switch has dropped it (as
    kube-proxy deletes them); without that its datagrams would go to the old address for as long
    as it keeps sending."""
    svc = json.loads(k8semu("--cluster", services_cluster.name, "get", "svc", "echo", "-o", "json").stdout)["spec"]
    udp = next(p for p in svc["ports"] if p["protocol"] == "UDP")
    old = services_cluster.get("pods", "default", "app=echo")[0]
    target = (svc["clusterIP"], udp["port"]) if via == "ClusterIP" else (NODES[old["spec"]["nodeName"]], udp["nodePort"])
    services_cluster.synced()
    client = subprocess.Popen(["k8semu", "--cluster", services_cluster.name, "exec", "client", "--", "python3",
                               UDP_PING, target[0], str(target[1]), "12"], stdout=subprocess.PIPE, text=True)
    try:
        first = client.stdout.readline()
        assert old["metadata"]["name"] in first, first
        k8semu("--cluster", services_cluster.name, "delete", "pod", old["metadata"]["name"], "--wait=false")
        out, _ = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    answered_by = {line.split()[1].rstrip(":") for line in out.splitlines() if len(line.split()) > 1}
    assert answered_by - {old["metadata"]["name"]}, "no answer from the replacement pod:\n" + out[-500:]
    services_cluster.wait_running("default")


BOOM = """\
apiVersion: v1
kind: Pod
metadata: {name: boom-server, labels: {app: boom-server}}
spec:
  nodeName: worker-1
  containers:
    - name: boom-server
      image: registry.k8s.io/e2e-test-images/regression-issue-74839
      ports: [{containerPort: 9000}]
      env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
      securityContext: {capabilities: {add: [NET_RAW]}}
---
apiVersion: v1
kind: Service
metadata: {name: boom-server}
spec:
  selector: {app: boom-server}
  ports: [{port: 9000, targetPort: 9000}]
---
apiVersion: v1
kind: Pod
metadata: {name: startup-script}
spec:
  nodeName: worker-2
  restartPolicy: Never
  containers:
    - name: startup-script
      image: busybox
      command: [sh, -c, "while true; do sleep 2; nc boom-server 9000& done"]
"""


def test_should_drop_invalid_conntrack_entries(services_cluster: Cluster) -> None:
    """conntrack.go "should drop INVALID conntrack entries [Privileged]": the boom server answers
    each handshake through its Service with a segment 100,000 bytes before the window; the
    client on another node must never answer it with a RST (which upstream happened when
    conntrack marked it INVALID and let it through un-NATed). Here the userspace conntrack is
    liberal about the window (kube-proxy's --conntrack-tcp-be-liberal), so the segment is
    reverse-NATed like any other and the client's kernel drops it."""
    name = services_cluster.name
    try:
        services_cluster.apply(BOOM)
        services_cluster.wait_running("default")
        services_cluster.synced()

        def logs() -> str:
            return k8semu("--cluster", name, "logs", "boom-server", check=False).stdout

        def enough() -> str | None:
            text = logs()
            return text if text.count("boom packet injected") >= 4 or "ERROR" in text else None

        text = poll(enough, timeout=60, interval=0.5, what="four boom packets injected")
        assert "ERROR" not in text, "boom-server pod received a RST from the client:\n" + text
        assert text.count("connection established") >= 4, text
        assert services_cluster.pod("boom-server")["status"]["containerStatuses"][0]["restartCount"] == 0
    finally:
        k8semu("--cluster", name, "delete", "pod", "boom-server", "startup-script", check=False)
        k8semu("--cluster", name, "delete", "svc", "boom-server", check=False)


UDP_UNREADY = """\
apiVersion: v1
kind: Pod
metadata: {name: pod-backend-1, labels: {app: udp-unready}}
spec:
  nodeName: worker-1
  containers:
    - name: backend
      image: k8semu/echo
      env: [{name: PORT, value: "8080"}, {name: UDP_PORT, value: "80"}]
      readinessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 15, periodSeconds: 1}
"""


@pytest.mark.slow  # upstream's backend stays unready 15 s: make slow (make test's 15-minute budget)
def test_should_be_able_to_preserve_udp_traffic_when_initial_unready_endpoints_get_ready(
        services_cluster: Cluster) -> None:
    """conntrack.go "should be able to preserve UDP traffic when initial unready endpoints get
    ready" (kubernetes#105657): a client sends to a UDP ClusterIP with no endpoint, from one
    source port, every try; a backend then appears that stays unready for 15 s (upstream holds
    it with a 15 s init container, here with a readiness probe's initialDelaySeconds: the
    EndpointSlice shows the address not ready either way); once it is ready the client's
    datagrams must reach it within a minute, not stay blackholed by a conntrack entry made
    while the Service had no ready endpoint."""
    name = services_cluster.name
    try:
        services_cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: udp-unready}\n"
                               "spec: {selector: {app: udp-unready}, ports: [{name: udp, port: 80, "
                               "targetPort: 80, protocol: UDP}]}\n")
        ip = cluster_ip(services_cluster, "udp-unready")
        loop = (f'for i in $(seq 1 3000); do echo "$(date) Try: $i"; echo hostname | nc -u -w 5 -p 12345 {ip} 80; '
                "echo; sleep 0.2; done")
        services_cluster.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: pod-client}\nspec:\n  nodeName: worker-2\n"
                               f"  containers: [{{name: pod-client, image: busybox, command: [sh, -c, {json.dumps(loop)}]}}]\n")
        services_cluster.wait_running("default")

        def client_logs() -> str:
            return k8semu("--cluster", name, "logs", "pod-client", check=False).stdout

        poll(lambda: client_logs().count("Try:") >= 2, timeout=20, what="the client trying")
        services_cluster.apply(UDP_UNREADY)
        slices = poll(lambda: [s for s in services_cluster.get("endpointslices", "default")
                               if s["metadata"]["name"].startswith("udp-unready") and s.get("endpoints")],
                      timeout=20, what="the backend's address in the EndpointSlice")
        assert slices[0]["endpoints"][0]["conditions"]["ready"] is False
        poll(lambda: "pod-backend-1" in client_logs(), timeout=60, interval=1,
             what="the client's datagrams answered by pod-backend-1")
    finally:
        k8semu("--cluster", name, "delete", "pod", "pod-client", "pod-backend-1", check=False)
        k8semu("--cluster", name, "delete", "svc", "udp-unready", check=False)
