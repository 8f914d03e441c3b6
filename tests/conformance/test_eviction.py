"""Cordon, uncordon and drain (the Eviction API), after kubectl's own tests of them
(kubernetes/kubernetes test/cmd/node-management.sh) and the e2e tests that drain a node
(test/e2e/apps/disruption.go "evictions: ... should allow an eviction"): a cordoned node takes no
new pod; a drained node's pods are evicted gracefully and their controllers put replacements
elsewhere, which the data plane serves; a pod no controller would replace stops the drain unless
--force."""
from __future__ import annotations

import json


from tests.cluster import SERVICES_PLANES, Cluster, k8semu, kubectl, module_cluster, poll

OTHER_PLANES = SERVICES_PLANES  # make slow (the budget)
evict_cluster = module_cluster("topologies/services.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


def node(cluster: Cluster, name: str) -> dict:
    return next(n for n in cluster.get("nodes") if n["metadata"]["name"] == name)


def web_nodes(cluster: Cluster) -> list[str]:
    return sorted(p["spec"]["nodeName"] for p in cluster.get("pods", "default", "app=web")
                  if not p["metadata"].get("deletionTimestamp"))


def test_cordon_marks_the_node_unschedulable_and_uncordon_undoes_it(evict_cluster: Cluster) -> None:
    """node-management.sh: cordon sets spec.unschedulable (kubectl shows SchedulingDisabled and
    the unschedulable taint); a second cordon says "already cordoned"; new pods avoid the node;
    uncordon clears it."""
    name = evict_cluster.name
    assert k8semu("--cluster", name, "cordon", "worker-1").stdout == "node/worker-1 cordoned\n"
    assert k8semu("--cluster", name, "cordon", "worker-1").stdout == "node/worker-1 already cordoned\n"
    try:
        got = node(evict_cluster, "worker-1")
        assert got["spec"]["unschedulable"] is True
        assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in got["spec"]["taints"]
        table = k8semu("--cluster", name, "get", "nodes").stdout
        assert any(line.split()[:2] == ["worker-1", "Ready,SchedulingDisabled"] for line in table.splitlines())
        before = web_nodes(evict_cluster)
        k8semu("--cluster", name, "scale", "deployment", "web", "--replicas", "6")
        evict_cluster.wait_running("default")
        after = web_nodes(evict_cluster)
        assert after.count("worker-1") == before.count("worker-1") and len(after) == 6
    finally:
        assert k8semu("--cluster", name, "uncordon", "worker-1").stdout == "node/worker-1 uncordoned\n"
        k8semu("--cluster", name, "scale", "deployment", "web", "--replicas", "3")
    assert "unschedulable" not in node(evict_cluster, "worker-1")["spec"]
    evict_cluster.wait_running("default")


def daemon(pod: dict) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences", []))


def test_drain_evicts_the_nodes_pods_and_their_replacements_serve(evict_cluster: Cluster) -> None:
    """A bare pod on the node stops the drain (the node stays cordoned, nothing is evicted);
    with --force it is deleted and every other pod evicted; Deployments replace theirs on
    another node; the Service answers from the replacements only, and nothing runs on the
    drained node."""
    name = evict_cluster.name
    evict_cluster.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\n"
                        "spec: {nodeName: worker-1, containers: [{name: c, image: k8semu/echo}]}\n")
    evict_cluster.wait_running("default")
    assert "worker-1" in web_nodes(evict_cluster)
    refused = k8semu("--cluster", name, "drain", "worker-1", "--ignore-daemonsets", check=False)
    assert refused.returncode != 0
    assert "cannot delete Pods declare no controller (use --force to override): default/bare" in refused.stderr
    assert node(evict_cluster, "worker-1")["spec"].get("unschedulable") is True
    assert evict_cluster.pod("bare")["status"]["phase"] == "Running"
    try:
        done = k8semu("--cluster", name, "drain", "worker-1", "--ignore-daemonsets", "--force", timeout=120)
        lines = done.stdout.splitlines()
        assert lines[0] == "node/worker-1 already cordoned" and lines[-1] == "node/worker-1 drained"
        assert "evicting pod default/bare" in lines and "pod/bare evicted" in lines
        assert not [p for p in evict_cluster.get("pods") if p["spec"].get("nodeName") == "worker-1"
                    and not daemon(p)]  # what --ignore-daemonsets leaves: the data plane's agent
        # echo's replacement is pinned to worker-1 by its nodeSelector: Pending, as kube-scheduler leaves it
        echo = poll(lambda: [p for p in evict_cluster.get("pods", "default", "app=echo")
                             if p["status"].get("conditions")], timeout=10, what="echo's replacement")[0]
        assert echo["status"]["phase"] == "Pending"
        assert "1 node(s) were unschedulable" in json.dumps(echo["status"])
        events = k8semu("--cluster", name, "get", "events", "-n", "default").stdout
        assert "FailedScheduling" in events and "were unschedulable" in events
        ready = poll(lambda: (lambda pods: pods if all(p["status"]["phase"] == "Running" and all(
            c["ready"] for c in p["status"]["containerStatuses"]) for p in pods) and len(pods) == 3 else None)(
            [p for p in evict_cluster.get("pods", "default", "app=web") if not p["metadata"].get("deletionTimestamp")]),
            timeout=30, what="three web pods running")
        assert {p["spec"]["nodeName"] for p in ready} == {"worker-2"}
        assert "bare" not in {p["metadata"]["name"] for p in evict_cluster.get("pods", "default")}  # gone for good
        evict_cluster.synced()
        web = json.loads(k8semu("--cluster", name, "get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
        codes = [evict_cluster.exec("client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                                    f"http://{web}:8080/").stdout for _ in range(6)]
        assert codes == ["200"] * 6
        slices = evict_cluster.get("endpointslices", "default")
        web_slice = next(s for s in slices if s["metadata"]["labels"].get("kubernetes.io/service-name") == "web")
        assert {e["nodeName"] for e in web_slice["endpoints"]} == {"worker-2"}
    finally:
        k8semu("--cluster", name, "uncordon", "worker-1", check=False)
    # uncordoned, the Pending replacement is scheduled there at once
    poll(lambda: [p for p in evict_cluster.get("pods", "default", "app=echo")
                  if p["spec"].get("nodeName") == "worker-1"], timeout=10, what="echo back on worker-1")


def test_eviction_respects_pod_disruption_budgets(evict_cluster: Cluster) -> None:
    """disruption.go "evictions: enough pods, absolute => should allow an eviction" and "...
    maxUnavailable deny evictions, integer => should not allow an eviction": with minAvailable 2
    over the three web pods, draining the node holding two (or three) of them evicts one, is
    refused the next ("would violate the pod's disruption budget") until the replacement is ready, then
    evicts it (kubectl retries every 5 s); with maxUnavailable 0 no web pod is ever evicted and
    the drain gives up at its timeout. `get pdb` shows the disruption controller's status."""
    name = evict_cluster.name
    before = web_nodes(evict_cluster)
    busy = max(set(before), key=before.count)  # the worker holding two or three web pods
    assert before.count(busy) >= 2
    evict_cluster.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\n"
                        "spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}\n")
    try:
        table = k8semu("--cluster", name, "get", "pdb").stdout.splitlines()
        assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
        assert table[1].split()[:4] == ["web", "2", "N/A", "1"]
        done = k8semu("--cluster", name, "drain", busy, "--ignore-daemonsets", "--force", timeout=120)
        assert "Cannot evict pod as it would violate the pod's disruption budget." in done.stdout
        assert done.stdout.splitlines()[-1] == f"node/{busy} drained"
        assert busy not in web_nodes(evict_cluster)
        other = "worker-1" if busy == "worker-2" else "worker-2"
        k8semu("--cluster", name, "uncordon", busy)
        evict_cluster.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\n"
                            "spec: {maxUnavailable: 0, selector: {matchLabels: {app: web}}}\n")
        held = k8semu("--cluster", name, "drain", other, "--ignore-daemonsets", "--force", "--timeout", "7",
                      check=False, timeout=60)
        assert held.returncode != 0 and "global timeout reached: 7s" in held.stderr
        assert web_nodes(evict_cluster) == [other] * 3  # none of them evicted
        got = next(p for p in evict_cluster.get("pdb", "default") if p["metadata"]["name"] == "web")
        assert got["status"]["disruptionsAllowed"] == 0 and got["status"]["currentHealthy"] == 3
    finally:
        k8semu("--cluster", name, "delete", "pdb", "web", check=False)
        for node_name in ("worker-1", "worker-2"):
            k8semu("--cluster", name, "uncordon", node_name, check=False)


def test_kubectl_cordon_drain_and_uncordon_through_the_api(evict_cluster: Cluster) -> None:
    """The same through kubectl itself: cordon and uncordon patch the Node's spec.unschedulable;
    drain lists the node's pods, evicts each through the Eviction subresource (policy/v1) and
    waits for them to go; while the budget says no it is refused with 429 and retries every 5 s
    until its timeout. Labels may change (kubectl label), nothing else of an emulated node's spec
    (422)."""
    assert kubectl("cordon", "worker-1").stdout == "node/worker-1 cordoned\n"
    assert kubectl("cordon", "worker-1").stdout == "node/worker-1 already cordoned\n"
    row = next(line.split() for line in kubectl("get", "nodes").stdout.splitlines() if line.startswith("worker-1 "))
    assert row[1] == "Ready,SchedulingDisabled"
    assert kubectl("uncordon", "worker-1").stdout == "node/worker-1 uncordoned\n"
    assert "unschedulable" not in node(evict_cluster, "worker-1")["spec"]
    assert kubectl("label", "node", "worker-1", "team=a").stdout == "node/worker-1 labeled\n"
    assert node(evict_cluster, "worker-1")["metadata"]["labels"]["team"] == "a"
    assert kubectl("label", "node", "worker-1", "team-").stdout == "node/worker-1 unlabeled\n"
    refused = kubectl("patch", "node", "worker-1", "-p", '{"spec":{"podCIDR":"10.9.0.0/24"}}', check=False)
    assert refused.returncode != 0 and "only spec.unschedulable, labels and annotations may change" in refused.stderr
    before = web_nodes(evict_cluster)
    busy = max(set(before), key=before.count)
    assert before.count(busy) >= 2
    evict_cluster.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\n"
                        "spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}\n")
    try:
        # kubectl evicts the node's pods side by side: whether the second web pod is refused
        # first depends on how soon the first one's replacement is ready; the node ends empty
        done = kubectl("drain", busy, "--ignore-daemonsets", "--force", "--timeout=120s", timeout=150)
        assert done.stdout.splitlines()[-1] == f"node/{busy} drained", done.stdout + done.stderr
        assert busy not in web_nodes(evict_cluster)
        assert not [p for p in evict_cluster.get("pods") if p["spec"].get("nodeName") == busy
                    and not p["metadata"].get("deletionTimestamp") and not daemon(p)]
        kubectl("uncordon", busy)
        evict_cluster.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\n"
                            "spec: {maxUnavailable: 0, selector: {matchLabels: {app: web}}}\n")
        other = "worker-1" if busy == "worker-2" else "worker-2"
        held = kubectl("drain", other, "--ignore-daemonsets", "--force", "--timeout=7s", check=False, timeout=60)
        said = held.stdout + held.stderr
        assert held.returncode != 0 and "global timeout reached: 7s" in said, said
        assert ("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
                in said), said  # the 429, retried
        assert web_nodes(evict_cluster) == [other] * 3  # none of them evicted
    finally:
        k8semu("--cluster", evict_cluster.name, "delete", "pdb", "web", check=False)
        for node_name in ("worker-1", "worker-2"):
            kubectl("uncordon", node_name, check=False)
