"""What the kubelet hands the shim to start one container: its argv (the image's, with the
image's own files written into the container's folder), its environment as the kubelet builds it
(the pod's fields, ConfigMaps and Secrets, the Services that existed when the pod was created),
its folder, user, cgroups and capabilities. Split from ``runtime/kubelet.py``, which decides
when a container starts; this decides what it starts with.
"""
from __future__ import annotations

import base64
import os
import sys

from emulator.cluster.store import ClusterState, Record
from emulator.images import files as image_makers
from emulator.model import images, naming, podfiles
from emulator.model.projection import PodFacts
from emulator.runtime import sandbox
from emulator.runtime.kubevolumes import VolumeManager


def request(state: ClusterState, runtime: sandbox.SandboxRuntime, volumes: VolumeManager, rec: Record,
            box: sandbox.Sandbox, name: str) -> dict:
    """What the shim needs to start a container (raises UnknownImage, RenderError)."""
    pod = rec.obj
    container = next(c for c in pod.spec.containers if c.name == name)
    node = state.config.node(rec.status.node)
    host_dir, pod_dir = runtime.container_dir(box, name)
    env = podfiles.container_env(pod, container, rec.status.ip, node.name, node.ip, pod_dir,
                                 service_env(state, rec), lambda kind, name: config_data(state, kind, pod.meta.namespace, name),
                                 PodFacts(rec.uid, *volumes.capacity))
    argv = images.argv_for(container, state.config.images, env, sys.executable)
    sec = container.security
    uid = sec.run_as_user if sec.run_as_user is not None else pod.spec.security.run_as_user
    gid = sec.run_as_group if sec.run_as_group is not None else pod.spec.security.run_as_group
    made = [host_dir]
    image = images.image_of(container, state.config.images)
    if image is not None and image.files:
        argv = image_files(image.files, env, host_dir, pod_dir, argv, made, [m.mount_path for m in container.mounts])
    if uid is not None and uid != 0:
        for path in made:
            os.chown(path, uid, gid if gid is not None else uid)
    return {"box": box, "argv": argv, "env": env, "cwd": container.working_dir or pod_dir, "cwd_fallback": pod_dir,
            "log": str(box.directory / naming.container_log(name)),
            "cgroups": runtime.cgroups.container(rec.uid, name, container.resources),
            "caps": sorted(sandbox.capabilities(container, pod.spec.security)),
            "uid": uid, "gid": gid if gid is not None else (uid if uid is not None else None),
            "attach": runtime.attach_path(rec.uid, name) if container.attachable else None,
            "tty": container.tty, "stdin_once": container.stdin_once}


def config_data(state: ClusterState, kind: str, namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data, or a Secret's decoded, for a container's environment."""
    rec = state.get(kind, namespace, name)
    if rec is None:
        return None
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in rec.obj.data.items()}
    return dict(rec.obj.data)


def image_files(maker: str, env: dict[str, str], host_dir, pod_dir: str, argv: list[str],
                 made: list, mounts: list[str]) -> list[str]:
    """Write an image's files into the container's folder; returns the argv that uses them."""
    who = {k: env.get(f"K8SEMU_{k.upper()}", "") for k in ("pod_name", "pod_namespace", "pod_ip", "node_name")}
    files, folders, argv = image_makers.MAKERS[maker](who, pod_dir, argv, tuple(mounts))
    for folder in folders:
        (host_dir / folder).mkdir(exist_ok=True)
        made.append(host_dir / folder)
    for name, text in files.items():
        (host_dir / name).write_text(text)
        made.append(host_dir / name)
    return argv


def service_env(state: ClusterState, rec: Record) -> dict[str, str]:
    """Variables for the Services of the pod's namespace (and ``kubernetes``) that existed
    when the pod was created, as kubelet injects them."""
    pod = rec.obj
    if pod.spec.raw.get("enableServiceLinks") is False:
        candidates = [s for s in state.list("Service", "default") if s.obj.meta.name == "kubernetes"]
    else:
        candidates = state.list("Service", pod.meta.namespace) + [
            s for s in state.list("Service", "default")
            if s.obj.meta.name == "kubernetes" and pod.meta.namespace != "default"]
    entries = []
    for svc in candidates:
        alloc = state.alloc.by_service.get(svc.obj.key)
        if svc.created <= rec.created and alloc and alloc.cluster_ip:
            entries.append((svc.obj.meta.name, alloc.cluster_ip,
                            [(p.name, p.protocol, p.port) for p in svc.obj.ports]))
    return podfiles.service_env(entries)
