"""A node's own files where a node keeps them, for a command run on the node.

``python -m emulator.runtime.nodefs NODE_ROOT -- COMMAND ARGS`` runs after ``ip netns exec``
(which gives the command a private mount namespace, slave to the machine's): it binds the node's
folders of the cluster's run directory at /etc/cni, /run/flannel and /var/lib/cni (and, calico,
/etc/bird and /run/bird, where ``birdc`` finds BIRD's socket), then execs the
command. So ``k8semu exec worker-1 -- cat /etc/cni/net.d/10-flannel.conflist`` reads what the
CNI plugins were given, and ``ls /var/lib/cni/networks/cbr0`` lists host-local's leases, as on a
real node. A folder the machine lacks gets a place the way a pod's volume does
(``podmounts.shadow``: a tmpfs over its parent, holding binds of the parent's entries), in this
mount namespace only: the machine's /etc, /run and /var are never written.
"""
from __future__ import annotations

import os
import sys

from emulator.runtime import podmounts

FOLDERS = ("etc/cni", "run/flannel", "var/lib/cni", "etc/bird", "run/bird")  # those a node has (bird: calico)


def mounts(root: str) -> list[dict]:
    """The binds a node's command sees: each of its folders over the machine's path."""
    return [{"source": os.path.join(root, f), "target": "/" + f, "read_only": False}
            for f in FOLDERS if os.path.isdir(os.path.join(root, f))]


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m emulator.runtime.nodefs NODE_ROOT -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    held = podmounts.hold(mounts(argv[0]), ())
    podmounts.shadow(held)
    podmounts.attach(held)
    try:
        os.execvp(argv[2], argv[2:])
    except OSError as exc:
        print(f'exec of "{argv[2]}" failed: {exc.strerror}', file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
