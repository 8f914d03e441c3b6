"""What a user's words name: a kind (kubectl's names and short names for it), and where a
command runs for ``exec``: a pod's container (entered as its processes run) or a node or
external host (its network namespace). The CLI and the scenario runner both read them here."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from emulator.api import resources
from emulator.api.enter import ExecTarget, pod_target
from emulator.client.client import Client
from emulator.errors import K8semuError


def _names(r: resources.Resource) -> set[str]:
    names = {r.singular, r.plural, *r.short_names}
    return names | {f"{n}.{r.group}" for n in (r.singular, r.plural)} if r.group else names


def resolve_kind(word: str) -> str:
    """The kind a word names as kubectl resolves it (``po``, ``pods``, ``deployments.apps``),
    from the API's own table of resources.

    Raises:
        K8semuError: no kind has that name.
    """
    found = next((r.kind for r in resources.RESOURCES if word.lower() in _names(r)), None)
    if found is None:
        raise K8semuError(f'the server doesn\'t have a resource type "{word}"')
    return found


def exec_target(client: Client, target: str, namespace: str | None, container: str | None,
                command: list[str]) -> ExecTarget:
    """Where ``command`` runs for a pod (``enter.pod_target``) or for a node or external host
    (its network namespace).

    Raises:
        NotFoundError: no pod or node of that name; no such container in the pod.
    """
    if not command:
        raise K8semuError("you must specify at least one command for the container")
    status = client.status()
    if namespace is None and target in status["netns"]:
        inside = command
        if target in status.get("node_roots", {}):  # cni: flannel: the node's /etc/cni, /run/flannel, /var/lib/cni
            inside = [sys.executable, "-m", "emulator.runtime.nodefs", status["node_roots"][target], "--", *command]
        return ExecTarget(["ip", "netns", "exec", status["netns"][target], *inside],
                          node_env(client.run) if target in status.get("control_plane", ()) else None)
    return pod_target(client.pod(target, namespace), container, command)


def node_env(run: Path) -> dict[str, str] | None:
    """A command's environment on a control-plane node: kubectl there reads ``admin.conf``,
    which names the API by the node's own address (:6443), as kubeadm's does; the machine's
    127.0.0.1 is not that node's. The kubectl k8semu installs comes first on PATH; its discovery
    cache stays in the run directory."""
    conf = run / "admin.conf"
    if not conf.exists():
        return None
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "TERM", "LANG", "HOME")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env["KUBECONFIG"] = str(conf)
    env["KUBECACHEDIR"] = str(run / "kubecache")  # not root's ~/.kube/cache: it goes with the cluster
    return env
