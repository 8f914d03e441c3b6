"""Pod volumes on a live cluster, through kubectl: a ConfigMap, a Secret, the Downward API and an
emptyDir as files; a ConfigMap update reaching the mounted file (and not a subPath mount, and
not an environment variable, as in Kubernetes); a pod waiting for its ConfigMap (FailedMount)
and starting once it exists; the volumes gone from the machine with the pod."""
from __future__ import annotations

import json
import os

import pytest

from tests.cluster import kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata: {name: game-config}
data:
  game.properties: "lives=3\\n"
  mode: easy
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {app: vols}
spec:
  containers:
    - name: main
      image: busybox
      command: [sh, -c, "sleep 3600"]
      env: [{name: MODE, valueFrom: {configMapKeyRef: {name: game-config, key: mode}}}]
      resources: {limits: {memory: 64Mi}}
      volumeMounts:
        - {name: config, mountPath: /etc/config}
        - {name: config, mountPath: /etc/game.properties, subPath: game.properties}
        - {name: creds, mountPath: /etc/creds}
        - {name: podinfo, mountPath: /etc/podinfo}
        - {name: shared, mountPath: /data}
    - name: writer
      image: busybox
      command: [sh, -c, "echo from-writer > /out/index.html; sleep 3600"]
      volumeMounts: [{name: shared, mountPath: /out}]
  volumes:
    - {name: config, configMap: {name: game-config}}
    - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
    - name: podinfo
      downwardAPI:
        items:
          - {path: labels, fieldRef: {fieldPath: metadata.labels}}
          - {path: mem, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
    - {name: shared, emptyDir: {}}
"""
WAITING = """apiVersion: v1
kind: Pod
metadata: {name: waits}
spec:
  containers:
    - {name: c, image: busybox, command: [sh, -c, "cat /cfg/k; sleep 3600"], volumeMounts: [{name: v, mountPath: /cfg}]}
  volumes: [{name: v, configMap: {name: later}}]
"""


def in_pod(*argv: str, container: str = "main") -> str:
    return kubectl("exec", "vols", "-c", container, "--", *argv).stdout


def test_configmap_secret_downward_api_and_emptydir_volumes(cluster, tmp_path):
    (tmp_path / "m.yaml").write_text(MANIFEST)
    kubectl("apply", "-f", str(tmp_path / "m.yaml"))
    kubectl("wait", "--for=condition=Ready", "pod/vols", "--timeout=60s")
    assert in_pod("cat", "/etc/config/game.properties") == "lives=3\n"
    assert in_pod("cat", "/etc/game.properties") == "lives=3\n"
    assert in_pod("cat", "/etc/creds/password") == "s3cr3t"
    assert in_pod("stat", "-L", "-c", "%a", "/etc/creds/password").strip() == "400"
    assert in_pod("cat", "/etc/podinfo/labels") == 'app="vols"'
    assert in_pod("cat", "/etc/podinfo/mem") == "64"
    poll(lambda: kubectl("exec", "vols", "-c", "main", "--", "cat", "/data/index.html", check=False).stdout
         == "from-writer\n", timeout=20, what="the writer container's file in the shared emptyDir")
    assert "Read-only file system" in kubectl("exec", "vols", "-c", "main", "--", "touch", "/etc/config/x",
                                              check=False).stderr
    # updates: the mounted file follows the ConfigMap, the subPath mount and the variable do not
    kubectl("patch", "configmap", "game-config", "--type", "merge",
            "-p", json.dumps({"data": {"game.properties": "lives=5\n", "mode": "hard"}}))
    poll(lambda: in_pod("cat", "/etc/config/game.properties") == "lives=5\n", timeout=20,
         what="the ConfigMap update to reach the mounted file")
    assert in_pod("cat", "/etc/game.properties") == "lives=3\n"
    assert in_pod("printenv", "MODE") == "easy\n"
    kubectl("label", "pod", "vols", "tier=web")
    poll(lambda: in_pod("cat", "/etc/podinfo/labels") == 'app="vols"\ntier="web"', timeout=20,
         what="the new label to reach the Downward API file")
    folder = f"/run/k8semu/{cluster.name}/volumes/default_vols"
    assert os.path.isdir(folder)
    kubectl("delete", "pod", "vols", "--wait=true", "--timeout=60s")
    poll(lambda: not os.path.exists(folder), timeout=20, what="the pod's volumes to leave the machine")


def test_a_pod_waits_for_its_configmap_and_starts_once_it_exists(cluster, tmp_path):
    (tmp_path / "w.yaml").write_text(WAITING)
    kubectl("apply", "-f", str(tmp_path / "w.yaml"))

    def failed_mount() -> bool:
        events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=waits",
                                    "-o", "json").stdout)["items"]
        return any(e["reason"] == "FailedMount" and 'configmap "later" not found' in e["message"] for e in events)
    poll(failed_mount, timeout=20, what="a FailedMount event naming the missing ConfigMap")
    assert json.loads(kubectl("get", "pod", "waits", "-o", "json").stdout)["status"]["phase"] == "Pending"
    kubectl("create", "configmap", "later", "--from-literal=k=value")
    kubectl("wait", "--for=condition=Ready", "pod/waits", "--timeout=60s")
    poll(lambda: kubectl("logs", "waits").stdout == "value", timeout=20, what="the pod to read its ConfigMap")
    kubectl("delete", "pod/waits", "configmap/later", "--wait=true", "--timeout=60s")


def test_a_pod_deleted_while_it_waits_for_a_volume_leaves_nothing(cluster, tmp_path):
    """Its emptyDir was made before the ConfigMap was found missing; deleting the pod, which
    never got a sandbox, removes it too."""
    waiting = WAITING.replace("name: waits", "name: never").replace(
        "volumes: [{name: v, configMap: {name: later}}]",
        "volumes: [{name: s, emptyDir: {}}, {name: v, configMap: {name: missing}}]").replace(
        "volumeMounts: [{name: v, mountPath: /cfg}]", "volumeMounts: [{name: v, mountPath: /cfg}, {name: s, mountPath: /s}]")
    (tmp_path / "n.yaml").write_text(waiting)
    kubectl("apply", "-f", str(tmp_path / "n.yaml"))
    folder = f"/run/k8semu/{cluster.name}/volumes/default_never"
    poll(lambda: os.path.isdir(f"{folder}/s"), timeout=20, what="the emptyDir made before the mount failed")
    kubectl("delete", "pod", "never", "--wait=true", "--timeout=60s")
    poll(lambda: not os.path.exists(folder), timeout=20, what="the waiting pod's volumes to go with it")


# the Kubernetes docs' "Communicate Between Containers in the Same Pod Using a Shared Volume"
TWO_CONTAINERS = """apiVersion: v1
kind: Pod
metadata: {name: two-containers}
spec:
  restartPolicy: Never
  volumes: [{name: shared-data, emptyDir: {}}]
  containers:
  - name: nginx-container
    image: nginx
    volumeMounts: [{name: shared-data, mountPath: /usr/share/nginx/html}]
  - name: debian-container
    image: debian
    volumeMounts: [{name: shared-data, mountPath: /pod-data}]
    command: ["/bin/sh"]
    args: ["-c", "echo Hello from the debian container > /pod-data/index.html"]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data:
  site.conf: |
    server {
        listen 80;
        location / { return 200 "served by the ConfigMap's server\\n"; }
    }
---
apiVersion: v1
kind: Pod
metadata: {name: conf-d}
spec:
  volumes: [{name: conf, configMap: {name: site}}]
  containers:
  - name: nginx
    image: nginx
    volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]
"""


def test_nginx_serves_what_its_volumes_hold_as_the_real_image_does(cluster, tmp_path):
    """The docs' two containers sharing an emptyDir: nginx serves the page the debian container
    wrote; a ConfigMap mounted at /etc/nginx/conf.d brings its own server."""
    (tmp_path / "two.yaml").write_text(TWO_CONTAINERS)
    kubectl("apply", "-f", str(tmp_path / "two.yaml"))
    for pod in ("two-containers", "conf-d"):
        poll(lambda: json.loads(kubectl("get", "pod", pod, "-o", "json").stdout)["status"].get("podIP"), timeout=60,
             what=f"{pod} to have an address")

    def page(pod: str) -> str:
        ip = json.loads(kubectl("get", "pod", pod, "-o", "json").stdout)["status"]["podIP"]
        return cluster.exec("client", "wget", "-qO-", "-T", "2", f"http://{ip}/", check=False).stdout
    poll(lambda: page("two-containers") == "Hello from the debian container\n", timeout=30,
         what="nginx to serve the page the other container wrote")
    poll(lambda: page("conf-d") == "served by the ConfigMap's server\n", timeout=30,
         what="nginx to serve the ConfigMap's server")
    kubectl("delete", "pod/two-containers", "pod/conf-d", "configmap/site", "--wait=true", "--timeout=60s")
