"""The one place that derives names.

Kubernetes names
    A Deployment ``web`` owns a ReplicaSet ``web-<pod-template-hash>`` whose pods are
    ``web-<hash>-<5 random chars>``, using Kubernetes' alphabet without vowels
    (``bcdfghjklmnpqrstvwxz2456789``) so that generated names never spell words. The hash is the
    FNV-1a 32-bit hash of the pod template, encoded digit by digit in that alphabet, as the
    Deployment controller does.

Everything below is scoped to one cluster (``Scope``: its name and a *slot*, a small number
that ``up`` allocates among the clusters running on the machine), so that two clusters side by
side, or a user's own objects, never share a name with ours.

Network namespaces (``ip netns exec NAME``; any length up to 255, we keep them under 200)
    a node's is ``<cluster>_<node>`` (``default_worker-1``), an external host's the same;
    a pod's ``<cluster>_<namespace>_<pod>``. ``_`` never appears in Kubernetes names, so the
    forms cannot collide; a name that would pass 200 characters is cut and ends in ``~`` and
    8 hex digits of its hash (``~`` cannot appear in a Kubernetes name either).

Interfaces in the root namespace (Linux limits names to 15 characters; ``check_ifname``)
    ``k8s<S>-ul``       the cluster's underlay bridge (S: the slot, one of 0-9a-z)
    ``k8s<S>-u<i>``     root end of node i's eth0 veth (i is the node index, from 0)
    ``k8s<S>-e<i>``     root end of external host i's eth0 veth (hosts outside the cluster)
    ``k8s<S>-br<i>``    node i's Open vSwitch bridge
    ``k8s<S>-g<i>``     root end of node i's gateway veth; the node end is ``k8semu-gw0``
    ``k8s<S>-x<i>``     node i's VXLAN device (its UDP socket stays in the node namespace)
    ``k8s<S>-<10 hex>`` root end of a pod's eth0 veth, from a hash of cluster/namespace/name

Numbers: a bridge's datapath id is ``(slot + 1) << 16 | (i + 1)``; conntrack zones are laid out
per slot (``ct_zone``).

MAC addresses are derived from IP addresses (``0a:58:`` + the IPv4 bytes, as Kubernetes CNI
plugins do), so nothing has to be read back from the kernel to write flows.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import random
from dataclasses import dataclass
from typing import Any

POD_DIR_IN_POD = "/run/k8semu/pod"  # a pod's own folder, as its processes see it
SHARED_IN_POD = "/run/k8semu/shared"  # k8semu's data for system pods (read-only), as they see it
IFNAME_MAX = 15
NETNS_MAX = 200
NODE_GATEWAY_IF = "k8semu-gw0"
GLOBAL_VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"  # Antrea's, answered for remote gateways
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SLOT_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_SLOTS = len(SLOT_CHARS)
MAX_NODES = 250  # interface names (k8s0-br249) and conntrack zones are laid out for this many


@dataclass(frozen=True)
class Scope:
    """Whose names these are: a cluster and the slot ``up`` gave it (0 for ``plan``)."""
    cluster: str
    slot: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.slot < MAX_SLOTS:
            raise ValueError(f"slot {self.slot} out of range")

    @property
    def prefix(self) -> str:
        return f"k8s{SLOT_CHARS[self.slot]}-"


def check_ifname(name: str) -> str:
    """Return ``name`` if Linux accepts it as an interface name, else raise ValueError."""
    if not 0 < len(name) <= IFNAME_MAX or "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise ValueError(f"interface name {name!r} is not valid on Linux (max {IFNAME_MAX} chars)")
    return name


def _bounded(name: str) -> str:
    if len(name) <= NETNS_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name[:NETNS_MAX - 9] + "~" + digest


def expand_node_names(name: str, count: int | None) -> list[str]:
    """``worker`` with ``count: 2`` becomes ``worker-1``, ``worker-2``; without count, ``worker``."""
    if count is None:
        return [name]
    return [f"{name}-{i}" for i in range(1, count + 1)]


def fnv1a_32(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Kubernetes' rand.SafeEncodeString: each character mapped into the vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def _without_empties(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _without_empties(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_without_empties(v) for v in value]
    return value


def pod_template_hash(template: Any) -> str:
    """The ``pod-template-hash`` label a Deployment puts on its ReplicaSet and pods, of the
    template without empty values: a template written back by a client (``kubectl rollout
    undo`` sends Go's zero values, ``resources: {}``, ``creationTimestamp: null``) hashes as
    the one it came from, so its ReplicaSet is found again (kube-controller-manager hashes the
    defaulted template for the same reason)."""
    encoded = json.dumps(_without_empties(template), sort_keys=True, separators=(",", ":")).encode()
    return safe_encode(str(fnv1a_32(encoded)))


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE_ALPHABET) for _ in range(length))


def generate_name(base: str, rng: random.Random) -> str:
    """``metadata.generateName``: the base cut to 58 characters plus 5 random ones, so that a
    generated name is at most 63 long (the API server's SimpleNameGenerator)."""
    return base[:58] + random_suffix(rng)


def node_netns(scope: Scope, node: str) -> str:
    return _bounded(f"{scope.cluster}_{node}")


def pod_netns(scope: Scope, namespace: str, pod: str) -> str:
    return _bounded(f"{scope.cluster}_{namespace}_{pod}")


def attach_socket(pod_uid: str, container: str) -> str:
    """The file name of a container's attach socket in the run directory's ``attach`` folder:
    a digest, since a Unix socket's path must fit in 108 bytes and pod folders may not."""
    return hashlib.sha1(f"{pod_uid}/{container}".encode()).hexdigest()[:16]


def container_log(container: str, previous: bool = False) -> str:
    """The file of a container's output in its pod's folder: the running (or last) instance's,
    or with ``previous`` the instance before it, which the kubelet keeps when the container
    restarts (``kubectl logs --previous``). A container's name is a DNS label: no dot, so the
    two names never meet another container's."""
    return f"{container}.previous.log" if previous else f"{container}.log"


def pod_dir(namespace: str, pod: str) -> str:
    """The pod's folder under the cluster's run directory (one path component, bounded)."""
    return _bounded(f"{namespace}_{pod}")


def underlay_bridge(scope: Scope) -> str:
    return check_ifname(f"{scope.prefix}ul")


def underlay_veth(scope: Scope, node_index: int) -> str:
    return check_ifname(f"{scope.prefix}u{node_index}")


ROUTER = "_router"  # the underlay router's host: "_" is in no node or external host name


def router_veth(scope: Scope) -> str:
    """Root end of the underlay router's eth0 (made only with routed subnets)."""
    return check_ifname(f"{scope.prefix}ur")


def external_veth(scope: Scope, index: int) -> str:
    """Root end of external host ``index``'s eth0 on the underlay bridge."""
    return check_ifname(f"{scope.prefix}e{index}")


def node_bridge(scope: Scope, node_index: int) -> str:
    return check_ifname(f"{scope.prefix}br{node_index}")


def gateway_veth(scope: Scope, node_index: int) -> str:
    return check_ifname(f"{scope.prefix}g{node_index}")


def vxlan_device(scope: Scope, node_index: int) -> str:
    return check_ifname(f"{scope.prefix}x{node_index}")


def pod_port(scope: Scope, namespace: str, pod: str) -> str:
    digest = hashlib.sha1(f"{scope.cluster}/{namespace}/{pod}".encode()).hexdigest()[:10]
    return check_ifname(f"{scope.prefix}{digest}")


def datapath_id(scope: Scope, node_index: int) -> int:
    return (scope.slot + 1) << 16 | (node_index + 1)


ZONE_BASE = 0x1000
ZONES_PER_SLOT = 2 * MAX_NODES  # two zones per node: pod traffic, hairpin SNAT


def ct_zone(slot: int, node_index: int) -> int:
    """The conntrack zone of a node's pod traffic. Antrea uses one zone (65520) per node; all
    bridges on this machine share one userspace datapath and so one connection table (several
    clusters' bridges included), so each node of each cluster slot gets its own zones, or a
    connection tracked on one node would be seen by the next. The hairpin SNAT zone (Antrea's
    65521) is the next one. 36 slots x 500 zones end below 0x5700: clear of Antrea's 65520."""
    if not 0 <= node_index < MAX_NODES:
        raise ValueError(f"node index {node_index} out of range")
    return ZONE_BASE + ZONES_PER_SLOT * slot + 2 * node_index


@functools.lru_cache(maxsize=1 << 16)  # called for every pod on every tick
@functools.lru_cache(maxsize=65536)  # every pod, every published view: parsing was a third of it
def mac_from_ip(ip: str, prefix: str = "0a:58") -> str:
    """``10.244.1.5`` -> ``0a:58:0a:f4:01:05``."""
    packed = ipaddress.IPv4Address(ip).packed
    return prefix + ":" + ":".join(f"{b:02x}" for b in packed)


def vtep_mac(node_ip: str) -> str:
    """The MAC of a node's VXLAN device; peers address overlay frames to it (Flannel's VTEP MAC)."""
    return mac_from_ip(node_ip, prefix="0a:5a")


# OpenFlow port numbers are requested (ofport_request), never discovered.
TUNNEL_OFPORT = 1
GATEWAY_OFPORT = 2
POD_OFPORT_BASE = 100


@functools.lru_cache(maxsize=1 << 16)
@functools.lru_cache(maxsize=65536)  # as mac_from_ip
def pod_ofport(pod_ip: str, pod_cidr: str) -> int:
    """Each pod's port number is its address offset within the node's pod CIDR, plus 100."""
    net = ipaddress.IPv4Network(pod_cidr)
    return POD_OFPORT_BASE + int(ipaddress.IPv4Address(pod_ip)) - int(net.network_address)
