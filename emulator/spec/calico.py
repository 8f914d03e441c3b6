"""``spec.network.calico``: IP pools and BGP of a ``cni: calico`` cluster (issue #14), checked
as Calico's API checks an IPPool and a BGPConfiguration, with the field named.

::

    spec:
      network:
        cni: calico
        calico:
          ipPools:                      # default: one pool, the pod subnet
          - name: default-ipv4-ippool
            cidr: 10.244.0.0/16         # inside spec.network.podSubnet (kube-proxy's clusterCIDR)
            blockSize: 26               # 20..32, Calico's IPv4 bounds
            encapsulation: None         # None | VXLAN | VXLANCrossSubnet (IPIP: refused, not emulated)
            natOutgoing: true
          bgp:
            asNumber: 64512
            routeReflectors: [control-plane]   # these nodes reflect; the node-to-node mesh is off
"""
from __future__ import annotations

import ipaddress

from emulator.model import validation
from emulator.model.calico import (DEFAULT_AS, DEFAULT_BLOCK_SIZE, ENCAPSULATIONS, MAX_BLOCK_SIZE,
                                   MIN_BLOCK_SIZE, BGPConfig, CalicoConfig, Pool)
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

DEFAULT_POOL = "default-ipv4-ippool"  # the name calico-node gives the pool it makes


def _pool(r: Reader, at: PathKey, pod_subnet: str, default_name: str) -> Pool | None:
    r.mapping(at, {"name", "cidr", "blockSize", "encapsulation", "natOutgoing"})
    name = r.string(at + ("name",), default_name, check=validation.check_dns1123_subdomain) or default_name
    cidr = r.string(at + ("cidr",), pod_subnet)
    try:
        net = ipaddress.IPv4Network(cidr) if cidr else None
    except ValueError as exc:
        r.fail(at + ("cidr",), f"{cidr!r} is not an IPv4 CIDR ({exc})")
        net = None
    if net is not None and not net.subnet_of(ipaddress.IPv4Network(pod_subnet)):
        r.fail(at + ("cidr",), f"{net} must be inside spec.network.podSubnet {pod_subnet} (kube-proxy's clusterCIDR)")
        net = None
    size = r.integer(at + ("blockSize",), DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE) or DEFAULT_BLOCK_SIZE
    if net is not None and size < net.prefixlen:
        r.fail(at + ("blockSize",), f"/{size} blocks do not fit in the pool {net}")
        net = None
    encap = r.string(at + ("encapsulation",), "None",
                     check=lambda v: None if v in ENCAPSULATIONS else
                     f"must be one of {', '.join(ENCAPSULATIONS)}{did_you_mean(v, ENCAPSULATIONS)}") or "None"
    nat = r.typed(at + ("natOutgoing",), bool, True)
    return Pool(name, str(net), size, encap, bool(nat)) if net is not None else None


def read(r: Reader, net: PathKey, pod_subnet: str, node_names: list[str]) -> CalicoConfig:
    """The calico section (defaults where absent); problems go to ``r``."""
    at = net + ("calico",)
    r.mapping(at, {"ipPools", "bgp"})
    pools: list[Pool] = []
    raw = r.seq(at + ("ipPools",))
    for i in range(len(raw)):
        pool = _pool(r, at + ("ipPools", i), pod_subnet, DEFAULT_POOL if i == 0 else f"pool-{i}")
        if pool is None:
            continue
        for other in pools:
            if other.name == pool.name:
                r.fail(at + ("ipPools", i, "name"), f"duplicate pool name {pool.name!r}")
            elif other.network.overlaps(pool.network):
                r.fail(at + ("ipPools", i, "cidr"), f"{pool.cidr} overlaps pool {other.name!r} {other.cidr}")
        pools.append(pool)
    if not raw:
        pools.append(Pool(DEFAULT_POOL, pod_subnet))
    if len({p.encapsulation for p in pools}) > 1:
        r.fail(at + ("ipPools",), "every pool must have the same encapsulation (one data plane per cluster)")
    r.mapping(at + ("bgp",), {"asNumber", "routeReflectors"})
    asn = r.integer(at + ("bgp", "asNumber"), DEFAULT_AS, 1, 4294967295) or DEFAULT_AS
    reflectors = []
    for i, name in enumerate(r.seq(at + ("bgp", "routeReflectors"))):
        if not isinstance(name, str) or name not in node_names:
            r.fail(at + ("bgp", "routeReflectors", i), f"{name!r} is not a node of this cluster"
                                                      f"{did_you_mean(str(name), node_names)}")
        elif name in reflectors:
            r.fail(at + ("bgp", "routeReflectors", i), f"{name!r} is listed twice")
        else:
            reflectors.append(name)
    return CalicoConfig(tuple(pools), BGPConfig(asn, tuple(reflectors)))
