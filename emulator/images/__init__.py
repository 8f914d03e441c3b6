"""Programs that stand in for container images (see ``emulator.model.images``).

Each runs inside a pod's namespaces and learns who it is from the environment the kubelet sets:
``K8SEMU_POD_NAME``, ``K8SEMU_POD_NAMESPACE``, ``K8SEMU_POD_IP``, ``K8SEMU_NODE_NAME`` and
``K8SEMU_CONTAINER_DIR`` (a private writable directory).
"""
import os


def identity() -> dict[str, str]:
    return {k: os.environ.get(f"K8SEMU_{k.upper()}", "") for k in
            ("pod_name", "pod_namespace", "pod_ip", "node_name", "container_dir")}
