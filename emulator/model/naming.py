"""The one place that derives names.

Kubernetes names
    A Deployment ``web`` owns a ReplicaSet ``web-<pod-template-hash>`` whose pods are
    ``web-<hash>-<5 random chars>``, using Kubernetes' alphabet without vowels
    (``bcdfghjklmnpqrstvwxz2456789``) so that generated names never spell words. The hash is the
    FNV-1a 32-bit hash of the pod template, encoded digit by digit in that alphabet, as the
    Deployment controller does.

Network namespaces (``ip netns exec NAME``)
    a node's namespace is named after the node; a pod's after the pod when it lives in the
    ``default`` namespace, ``<namespace>_<pod>`` otherwise (``_`` never appears in Kubernetes
    names, so the two forms cannot collide).

Interfaces in the root namespace (Linux limits names to 15 characters; ``check_ifname``)
    ``k8s-underlay``   the underlay bridge every node's eth0 is attached to
    ``k8u-<i>``        root end of node i's eth0 veth (i is the node index, from 0)
    ``k8e-<i>``        root end of external host i's eth0 veth (hosts outside the cluster)
    ``k8br-<i>``       node i's Open vSwitch bridge (datapath id i+1)
    ``k8g-<i>``        root end of node i's gateway veth; the node end is ``k8semu-gw0``
    ``k8x-<i>``        node i's VXLAN device (its UDP socket stays in the node namespace)
    ``kp<10 hex>``     root end of a pod's eth0 veth, from a hash of namespace/name

MAC addresses are derived from IP addresses (``0a:58:`` + the IPv4 bytes, as Kubernetes CNI
plugins do), so nothing has to be read back from the kernel to write flows.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import re
from typing import Any

IFNAME_MAX = 15
UNDERLAY_BRIDGE = "k8s-underlay"
NODE_GATEWAY_IF = "k8semu-gw0"
GLOBAL_VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"  # Antrea's, answered for remote gateways
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns1123_label(name: str) -> bool:
    return isinstance(name, str) and len(name) <= 63 and bool(DNS1123_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return isinstance(name, str) and len(name) <= 253 and bool(DNS1123_SUBDOMAIN.match(name))


def check_ifname(name: str) -> str:
    """Return ``name`` if Linux accepts it as an interface name, else raise ValueError."""
    if not 0 < len(name) <= IFNAME_MAX or "/" in name or " " in name:
        raise ValueError(f"interface name {name!r} is not valid on Linux (max {IFNAME_MAX} chars)")
    return name


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


def pod_template_hash(template: Any) -> str:
    """The ``pod-template-hash`` label a Deployment puts on its ReplicaSet and pods."""
    encoded = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return safe_encode(str(fnv1a_32(encoded)))


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE_ALPHABET) for _ in range(length))


def node_netns(node: str) -> str:
    return node


def pod_netns(namespace: str, pod: str) -> str:
    return pod if namespace == "default" else f"{namespace}_{pod}"


def underlay_veth(node_index: int) -> str:
    return check_ifname(f"k8u-{node_index}")


def external_veth(index: int) -> str:
    """Root end of external host ``index``'s eth0 on the underlay bridge."""
    return check_ifname(f"k8e-{index}")


def node_bridge(node_index: int) -> str:
    return check_ifname(f"k8br-{node_index}")


def gateway_veth(node_index: int) -> str:
    return check_ifname(f"k8g-{node_index}")


def vxlan_device(node_index: int) -> str:
    return check_ifname(f"k8x-{node_index}")


def pod_veth(namespace: str, pod: str) -> str:
    digest = hashlib.sha1(f"{namespace}/{pod}".encode()).hexdigest()[:10]
    return check_ifname(f"kp{digest}")


def datapath_id(node_index: int) -> int:
    return node_index + 1


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


def pod_ofport(pod_ip: str, pod_cidr: str) -> int:
    """Each pod's port number is its address offset within the node's pod CIDR, plus 100."""
    net = ipaddress.IPv4Network(pod_cidr)
    return POD_OFPORT_BASE + int(ipaddress.IPv4Address(pod_ip)) - int(net.network_address)
