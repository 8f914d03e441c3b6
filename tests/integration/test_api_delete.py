"""Delete options through real clients: ``kubectl delete --grace-period=0 --force``, ``--cascade=
orphan`` (propagationPolicy Orphan) and the Python client's delete_collection (deletecollection
with a label selector), as the API server serves them."""
from __future__ import annotations

import json

import pytest
from kubernetes import client as kclient, config as kconfig

from tests.cluster import KUBECONFIG, k8semu, kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

PODS = "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: doomed-{i}, labels: {{fate: doomed}}}}
spec:
  terminationGracePeriodSeconds: 60
  containers: [{{name: c, image: k8semu/echo}}]
""" for i in range(3))


def pods(selector: str) -> dict[str, dict]:
    items = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p for p in items}


def test_force_delete_with_zero_grace_ends_a_pod_at_once(cluster):
    """The pod's own 60 s grace period would keep it Terminating; --grace-period=0 --force does not."""
    kubectl("apply", "-f", "-", input=PODS)
    poll(lambda: all(p["status"]["phase"] == "Running" for p in pods("fate=doomed").values())
         and len(pods("fate=doomed")) == 3, what="three running pods")
    done = kubectl("delete", "pod", "doomed-0", "--grace-period=0", "--force")
    assert done.stdout.strip() == 'pod "doomed-0" force deleted from default namespace'
    poll(lambda: "doomed-0" not in pods("fate=doomed"), timeout=10, what="doomed-0 to be gone")
    ours = k8semu("--cluster", cluster.name, "delete", "pod", "doomed-1", "--force", timeout=20)
    assert (ours.stdout, ours.stderr) == ('pod "doomed-1" force deleted from default namespace\n', done.stderr)
    poll(lambda: "doomed-1" not in pods("fate=doomed"), timeout=10, what="doomed-1 to be gone")


def test_delete_collection_with_a_selector_deletes_only_what_it_selects(cluster):
    kubectl("apply", "-f", "-", input=PODS)  # doomed-0 and -1 again; doomed-2 kept from before
    kconfig.load_kube_config(config_file=str(KUBECONFIG))
    api = kclient.CoreV1Api()
    others = set(pods("app=web"))
    poll(lambda: len(pods("fate=doomed")) == 3, what="three doomed pods")
    api.delete_collection_namespaced_pod("default", label_selector="fate=doomed", grace_period_seconds=0)
    poll(lambda: not pods("fate=doomed"), timeout=10, what="the selected pods to be gone")
    assert set(pods("app=web")) == others


def test_orphan_propagation_keeps_the_replicaset_and_its_pods(cluster):
    before = set(pods("app=web"))
    (rs,) = json.loads(kubectl("get", "rs", "-l", "app=web", "-o", "json").stdout)["items"]
    done = kubectl("delete", "deployment", "web", "--cascade=orphan")
    assert done.stdout.strip() == 'deployment.apps "web" deleted from default namespace'
    left = json.loads(kubectl("get", "rs", rs["metadata"]["name"], "-o", "json").stdout)
    assert "ownerReferences" not in left["metadata"]
    assert set(pods("app=web")) == before
    assert kubectl("get", "deployment", "web", check=False).returncode != 0
    name = rs["metadata"]["name"]
    ours = k8semu("--cluster", cluster.name, "delete", "rs", name, "--wait=false")
    assert ours.stdout == f'replicaset.apps "{name}" deleted from default namespace\n'  # kubectl's words


FOREGROUND = """apiVersion: apps/v1
kind: Deployment
metadata: {name: fg}
spec:
  replicas: 2
  selector: {matchLabels: {app: fg}}
  template:
    metadata: {labels: {app: fg}}
    spec:
      terminationGracePeriodSeconds: 3
      containers: [{name: c, image: k8semu/echo, lifecycle: {preStop: {sleep: {seconds: 2}}}}]
"""


def test_foreground_propagation_keeps_the_owner_until_its_pods_are_gone(cluster):
    """kubectl delete --cascade=foreground: the Deployment stays, marked and with the
    foregroundDeletion finalizer, while its pods terminate (their preStop hook sleeps 2 s); it
    goes after them."""
    kubectl("apply", "-f", "-", input=FOREGROUND)
    poll(lambda: len(pods("app=fg")) == 2 and all(p["status"]["phase"] == "Running" for p in pods("app=fg").values()),
         what="two running fg pods")
    kubectl("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
    shown = json.loads(kubectl("get", "deployment", "fg", "-o", "json").stdout)["metadata"]
    assert shown["finalizers"] == ["foregroundDeletion"] and "deletionTimestamp" in shown
    assert all(p["metadata"].get("deletionTimestamp") for p in pods("app=fg").values())
    kubectl("wait", "--for=delete", "deployment/fg", "--timeout=30s")
    assert pods("app=fg") == {} and json.loads(kubectl("get", "rs", "-l", "app=fg", "-o", "json").stdout)["items"] == []
