"""Graceful termination as the kubelet, the EndpointSlice controller and kube-proxy do it
(KEP-1669, e2e service.go "should fallback to terminating endpoints when there are no ready
endpoints with internalTrafficPolicy=Cluster"; pods.go "should call prestop when killing a pod").
Each waits on conditions: the API for the object's state, the data plane for traffic."""
from __future__ import annotations

import json
import time

from tests.cluster import SERVICES_PLANES, Cluster, k8semu, module_cluster, poll

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
services_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


def app(name: str, grace: int, pre_stop: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  terminationGracePeriodSeconds: {grace}
  nodeSelector: {{kubernetes.io/hostname: worker-2}}
  containers:
    - name: e
      image: k8semu/echo
      readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1}}
      lifecycle: {{preStop: {pre_stop}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{selector: {{app: {name}}}, ports: [{{port: 80}}]}}
"""


def conditions(cluster: Cluster, service: str) -> list[dict]:
    slices = [s for s in cluster.get("endpointslices", "default")
              if s["metadata"]["labels"].get("kubernetes.io/service-name") == service]
    return [e["conditions"] for s in slices for e in s.get("endpoints", [])]


def endpoints_addresses(cluster: Cluster, service: str) -> list:
    eps = json.loads(k8semu("--cluster", cluster.name, "get", "endpoints", service, "-o", "json").stdout)
    return [a for s in eps.get("subsets", []) for a in s.get("addresses", [])]


def test_a_terminating_pod_serves_as_the_fallback_while_its_pre_stop_hook_runs(services_cluster: Cluster) -> None:
    cluster = services_cluster
    cluster.apply(app("ending", 30, "{sleep: {seconds: 600}}"))
    poll(lambda: conditions(cluster, "ending") == [{"ready": True, "serving": True, "terminating": False}],
         what="the endpoint to be ready")
    k8semu("--cluster", cluster.name, "delete", "pod", "ending", "--wait=false")
    poll(lambda: conditions(cluster, "ending") == [{"ready": False, "serving": True, "terminating": True}],
         what="the endpoint to be serving and terminating")
    assert endpoints_addresses(cluster, "ending") == []  # v1 Endpoints leave terminating pods out
    assert cluster.pod("ending")["metadata"].get("deletionTimestamp")
    assert "Terminating" in k8semu("--cluster", cluster.name, "get", "pod", "ending").stdout
    cluster.synced()
    # no ready endpoint is left: kube-proxy sends new connections to the serving-terminating one
    out = cluster.exec("client", "curl", "-s", "-m", "3", "http://ending/").stdout
    assert '"pod": "ending"' in out


def deleted_after(cluster: Cluster, name: str, pre_stop: str, grace: int) -> float:
    """Seconds ``k8semu delete pod`` (which waits, as kubectl does) takes for a fresh pod."""
    cluster.apply(app(name, grace, pre_stop))
    cluster.wait_running("default")
    start = time.monotonic()
    done = k8semu("--cluster", cluster.name, "delete", "pod", name, "--timeout", "60")
    assert done.returncode == 0 and f'pod "{name}" deleted' in done.stdout
    return time.monotonic() - start


def test_the_grace_period_ends_a_pod_whose_hook_and_process_outlast_it(services_cluster: Cluster) -> None:
    took = deleted_after(services_cluster, "slow", "{sleep: {seconds: 600}}", 3)
    # the 3 s grace period (the hook is cut at its end), then the kubelet's 2 s for SIGTERM
    assert 3 <= took < 20, took


def test_a_pod_that_exits_on_sigterm_goes_as_soon_as_its_hook_is_done(services_cluster: Cluster) -> None:
    took = deleted_after(services_cluster, "quick", "{exec: {command: [sleep, '2']}}", 30)
    assert 2 <= took < 15, took  # the 2 s hook, then SIGTERM ends the echo server at once
