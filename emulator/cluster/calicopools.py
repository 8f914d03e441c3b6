"""IPPools written through the API on a ``cni: calico`` cluster: what the cluster refuses of
them, and the pools a pod's address comes from.

An IPPool is checked against the cluster as calicoctl checks it against the datastore (no
overlap with another pool; ``cidr`` and ``blockSize`` never change: Calico's docs move pods to a
new pool instead), and against what k8semu's nodes run, with the reason said:

- it lies inside ``spec.network.podSubnet``, the cluster CIDR kube-proxy and the underlay's
  sealing know as the pods' (Calico's docs advise the same: "create IP pools within the same
  cluster CIDR");
- its encapsulation is of the kind the nodes were built for (VXLAN or not): the vxlan.calico
  devices, or the routes BIRD programs, exist from ``up`` on;
- IPIP is refused as in the spec (this kernel has no ipip module; k8semu does not emulate it).

A pod takes its address from the pools its ``cni.projectcalico.org/ipv4pools`` annotation
names (a JSON list of names or CIDRs), else its namespace's, else every enabled pool
(``model.calicoipam``), as Calico's CNI plugin reads them.
"""
from __future__ import annotations

import ipaddress
import json

from emulator.cluster.store import ClusterState
from emulator.errors import Problem
from emulator.model.calico import POOLS_ANNOTATION, IPPool
from emulator.model.calicoipam import PoolNotUsable
from emulator.model.pod import Pod


def check(state: ClusterState, objects: list) -> list[Problem]:
    """What the cluster refuses of the IPPools among ``objects`` (all of them when it is not a
    Calico cluster)."""
    pools = [o for o in objects if isinstance(o, IPPool)]
    if not pools:
        return []
    if state.config.calico is None:
        return [Problem(o.source, "kind", f"IPPool {o.meta.name}: Calico's IP pools need spec.network.cni: calico "
                        f"(this cluster runs {state.config.cni})") for o in pools]
    problems = []
    pod_subnet = ipaddress.IPv4Network(state.config.pods.subnet)
    vxlan = state.config.calico.vxlan
    current = {r.obj.meta.name: r.obj for r in state.list("IPPool")}
    batch = {o.meta.name: o for o in pools}
    for obj in pools:
        pool, name = obj.pool, obj.meta.name

        def fail(field: str, message: str) -> None:
            problems.append(Problem(obj.source, field, f"IPPool {name}: {message}"))
        old = current.get(name)
        if old is not None and old.pool.cidr != pool.cidr:
            fail("spec.cidr", f"field is immutable ({old.pool.cidr}): create a new pool and move the pods to it")
            continue
        if old is not None and old.pool.block_size != pool.block_size:
            fail("spec.blockSize", f"field is immutable ({old.pool.block_size}): create a new pool and move the "
                                   "pods to it, as Calico's docs change a block size")
            continue
        if not pool.network.subnet_of(pod_subnet):
            fail("spec.cidr", f"{pool.cidr} must be inside the cluster's pod subnet {pod_subnet} "
                              "(spec.network.podSubnet, kube-proxy's clusterCIDR): k8semu routes and seals pods there")
        if pool.encapsulation.startswith("IPIP"):
            fail("spec.ipipMode", "IPIP needs the ipip kernel module, and k8semu does not emulate IPIP: use "
                                  "vxlanMode or no encapsulation")
        elif pool.vxlan != vxlan:
            fail("spec.vxlanMode", "this cluster's nodes were built " + (
                "for VXLAN (vxlan.calico): set vxlanMode Always or CrossSubnet" if vxlan else
                "to route pods with BGP, without vxlan.calico: set vxlanMode Never") + " (one data plane per cluster)")
        for other_name, other in {**current, **batch}.items():
            if other_name != name and other.pool.network.overlaps(pool.network):
                fail("spec.cidr", f"CIDR {pool.cidr} overlaps with IPPool({other_name}) CIDR {other.pool.cidr}")
                break
    return problems


def requested(state: ClusterState, pod: Pod) -> tuple[str, ...]:
    """The pools a pod asks for: its annotation, else its namespace's (names or CIDRs).

    Raises:
        PoolNotUsable: the annotation is not a JSON list of strings (the pod cannot start).
    """
    value = pod.meta.annotations.get(POOLS_ANNOTATION)
    if value is None:
        ns = state.get("Namespace", "", pod.meta.namespace)
        value = ns.obj.meta.annotations.get(POOLS_ANNOTATION) if ns is not None else None
    if value is None:
        return ()
    try:
        names = json.loads(value)
    except ValueError as exc:
        raise PoolNotUsable(f"failed to parse '{value}' as JSON: {exc}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PoolNotUsable(f"{POOLS_ANNOTATION}: {value!r} is not a JSON list of pool names or CIDRs")
    return tuple(names)
