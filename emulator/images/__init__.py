"""Programs that stand in for container images (see ``emulator.model.images``).

Each runs inside a pod's namespaces and learns who it is from the environment the kubelet sets:
``K8SEMU_POD_NAME``, ``K8SEMU_POD_NAMESPACE``, ``K8SEMU_POD_IP``, ``K8SEMU_NODE_NAME`` and
``K8SEMU_CONTAINER_DIR`` (a private writable directory).
"""
import os
from pathlib import Path


def identity() -> dict[str, str]:
    return {k: os.environ.get(f"K8SEMU_{k.upper()}", "") for k in
            ("pod_name", "pod_namespace", "pod_ip", "node_name", "container_dir")}


def acknowledge(generation) -> None:
    """Tell the manager which snapshot this server answers from (a file in the container's own
    folder): its ``synced`` waits for every DNS server, so a scenario step that follows a change
    resolves the new names."""
    folder = os.environ.get("K8SEMU_CONTAINER_DIR")
    if folder and generation is not None:
        try:
            tmp = Path(folder, "ack.tmp")
            tmp.write_text(str(generation))
            tmp.replace(Path(folder, "ack"))
        except OSError:
            pass
