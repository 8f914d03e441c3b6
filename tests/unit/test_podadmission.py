"""What the API server's admission plugins add to a pod, and the checks on what a pod says."""
from __future__ import annotations

import pytest
import yaml

from emulator.cluster import controllers
from emulator.errors import SpecError
from emulator.model import podadmission
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_controllers import default_state

POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: busybox}]
"""


def _pod(extra: str = ""):
    manifests = parse_documents(load_text(POD + extra, "pod.yaml"))
    return manifests.objects[0], manifests.warnings


def test_a_pod_gets_the_default_tolerations_priority_and_service_account():
    pod = podadmission.admit(_pod()[0])
    raw = pod.spec.raw
    assert raw["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    assert [(t.key, t.operator, t.effect) for t in pod.spec.tolerations] == [
        ("node.kubernetes.io/not-ready", "Exists", "NoExecute"), ("node.kubernetes.io/unreachable", "Exists", "NoExecute")]
    assert (raw["priority"], raw["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert (raw["serviceAccountName"], raw["serviceAccount"]) == ("default", "default")
    assert podadmission.admit(pod) is pod  # nothing is added twice


def test_tolerations_already_there_are_kept_and_not_added_again():
    pod = podadmission.admit(_pod("  tolerations: [{operator: Exists}]\n")[0])
    assert pod.spec.raw["tolerations"] == [{"operator": "Exists"}]
    pod = podadmission.admit(_pod("  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, "
                                  "effect: NoExecute, tolerationSeconds: 10}]\n")[0])
    assert [(t["key"], t.get("tolerationSeconds")) for t in pod.spec.raw["tolerations"]] == \
        [("node.kubernetes.io/unreachable", 10), ("node.kubernetes.io/not-ready", 300)]


def test_priority_classes_and_mirror_pods():
    pod = podadmission.admit(_pod("  priorityClassName: system-cluster-critical\n")[0])
    assert pod.spec.raw["priority"] == 2000000000
    pod, warnings = _pod("  priorityClassName: gold\n")
    assert "priority" not in podadmission.admit(pod).spec.raw  # a class k8semu does not have
    assert any("priorityClassName" in w for w in warnings)
    mirror = podadmission.admit(type(pod)(pod.meta, pod.spec, None, ("Node", "node-a")))
    assert "serviceAccountName" not in mirror.spec.raw


def test_what_a_pod_says_of_its_priority_is_checked_as_the_plugin_checks_it():
    _, warnings = _pod("  priority: 0\n  preemptionPolicy: PreemptLowerPriority\n")
    assert warnings == []  # what every pod read back says
    with pytest.raises(SpecError, match=r"the integer value of priority \(5\) must not be provided in pod spec; "
                                        r"priority admission controller computed 0"):
        _pod("  priority: 5\n")
    with pytest.raises(SpecError, match=r"the string value of PreemptionPolicy \(Never\) must not be provided"):
        _pod("  preemptionPolicy: Never\n")
    with pytest.raises(SpecError, match="Unsupported value"):
        _pod("  preemptionPolicy: Sometimes\n")


def test_the_stored_pod_carries_them_and_reapplying_its_manifest_changes_nothing():
    state = default_state()
    pod, _ = _pod()
    assert controllers.apply(state, [pod]) == ["pod/p created"]
    stored = state.get("Pod", "default", "p").obj
    assert stored.spec.raw["priority"] == 0 and len(stored.spec.tolerations) == 2
    assert controllers.apply(state, [pod]) == ["pod/p unchanged"]
    made = [r for r in state.pods() if r.obj.owner and r.obj.owner[0] == "ReplicaSet"]
    assert made and all(len(r.obj.spec.tolerations) == 2 for r in made)  # made by a controller: admitted too


def test_the_service_account_volume_is_added_and_mounted_read_only_in_every_container():
    pod = podadmission.admit(_pod()[0])
    (volume,) = pod.spec.volumes
    assert volume.name.startswith("kube-api-access-") and len(volume.name) == len("kube-api-access-") + 5
    assert [(s.kind, s.name, s.path, s.expiration) for s in volume.sources] == [
        ("ServiceAccountToken", "", "token", 3607), ("ConfigMap", "kube-root-ca.crt", "", 3600),
        ("DownwardAPI", "", "", 3600)]
    assert [(m.name, m.mount_path, m.read_only) for m in pod.spec.containers[0].mounts] == \
        [(volume.name, "/var/run/secrets/kubernetes.io/serviceaccount", True)]
    assert pod.spec.raw["containers"][0]["volumeMounts"] == \
        [{"name": volume.name, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    assert podadmission.admit(pod) is pod


def test_no_service_account_volume_when_the_pod_or_its_account_opts_out_or_mounts_the_path():
    assert podadmission.admit(_pod("  automountServiceAccountToken: false\n")[0]).spec.volumes == ()
    assert podadmission.admit(_pod()[0], account_automount=False).spec.volumes == ()
    assert len(podadmission.admit(_pod("  automountServiceAccountToken: true\n")[0],
                                  account_automount=False).spec.volumes) == 1  # the pod decides first
    own = POD.replace("image: busybox}", "image: busybox, volumeMounts: [{name: mine, mountPath: "
                      "/var/run/secrets/kubernetes.io/serviceaccount}]}") + "  volumes: [{name: mine, emptyDir: {}}]\n"
    pod = podadmission.admit(_pod_from(own)[0])
    assert [v.name for v in pod.spec.volumes] == ["mine"]  # the pod mounts that path itself: nothing added


def test_a_pod_read_back_parses_to_the_pod_stored():
    """What kubectl replace sends: the admitted raw spec, parsed again, is the same pod spec."""
    pod = podadmission.admit(_pod()[0])
    again, warnings = _pod_from(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                "spec": pod.spec.raw}))
    assert warnings == [] and podadmission.admit(again).spec == pod.spec


def _pod_from(text: str):
    manifests = parse_documents(load_text(text, "pod.yaml"))
    return manifests.objects[0], manifests.warnings
