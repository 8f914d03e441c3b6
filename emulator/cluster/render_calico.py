"""Calico's own objects (crd.projectcalico.org/v1) as a Calico cluster's API shows them, on
``cni: calico``: ``kubectl get ippools,ipamblocks,blockaffinities,bgpconfigurations,bgppeers``.

IPPools, BGPConfigurations and BGPPeers are stored objects (what the spec's
``network.calico`` says, written at ``up``, then whatever is applied: ``cluster/calicopools.py``,
``cluster/calicobgp.py``). The others are views: the blocks and affinities of Calico's IPAM as
it is now (``model.calicoipam``), in the shapes calico-node and the CNI plugin write on a
cluster that keeps Calico's datastore in Kubernetes (KDD):

- an IPAMBlock is named after its CIDR (``10-244-0-0-26``); ``allocations[ordinal]`` is the
  index of its entry in ``attributes`` (null when free), each entry the handle
  (``k8s-pod-network.<sandbox id>``; a node's VXLAN tunnel address ``vxlan-tunnel-addr-<node>``)
  and who holds it; ``unallocated`` is the free list in the order it is handed out;
- a BlockAffinity is named ``<node>-<block name>`` and is ``confirmed``;
- BGPConfiguration ``default`` carries the AS number and whether the node-to-node mesh is on;
  with route reflectors, the BGPPeer ``peer-with-route-reflectors`` of Calico's docs (every
  node peers with the nodes labelled ``route-reflector=true``).

- an IPAMHandle per handle holding an address (``block``: CIDR → count), IPAMConfig,
  FelixConfiguration ``default`` (``defaultEndpointToHostAction: Return``, what
  ``netpolicy.felix`` writes), ClusterInformation ``default`` (the version and cluster type
  calico-node records at start, ``calicoctl version``'s "Cluster Calico Version" and "Cluster
  Type").

What k8semu does not keep is left out rather than made up (an IPAMBlock's sequenceNumber).
"""
from __future__ import annotations

import uuid

from emulator.cluster.apimeta import meta, timestamp
from emulator.cluster.nodedaemons import CALICO_VERSION
from emulator.cluster.store import ClusterState, Record
from emulator.model import calicocrds
from emulator.model.calico import (CALICO_GROUP, CALICO_KINDS, VXLAN_PORT, VXLAN_VNI, Pool,
                                   tunnel_handle)
from emulator.model.calicoipam import Block

API_VERSION = f"{CALICO_GROUP}/v1"
POD_HANDLE = "k8s-pod-network."  # the CNI plugin's handle prefix, then the sandbox (container) id


def block_name(cidr: str) -> str:
    """An IPAMBlock's name: its CIDR with the dots and the slash as dashes."""
    return cidr.replace(".", "-").replace("/", "-")


def _meta(state: ClusterState, kind: str, name: str, created: float) -> dict:
    uid = uuid.uuid5(uuid.NAMESPACE_URL, f"k8semu:{state.config.name}/{kind}/{name}/{created}")
    return {"name": name, "uid": str(uid), "generation": 1, "creationTimestamp": timestamp(created)}


def _obj(state: ClusterState, kind: str, name: str, created: float, spec: dict) -> dict:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": _meta(state, kind, name, created), "spec": spec}


def _mode(pool: Pool, family: str) -> str:
    """ipipMode / vxlanMode of a pool from its one encapsulation (Always, CrossSubnet, Never)."""
    if not pool.encapsulation.startswith(family):
        return "Never"
    return "CrossSubnet" if pool.cross_subnet else "Always"


def ip_pools(state: ClusterState) -> list[dict]:
    """The stored IPPools (the spec's, written at ``up``, and those applied since), with every
    field the CRD defaults spelled out as calico-node writes them."""
    out = []
    for rec in state.list("IPPool"):
        p = rec.obj.pool
        spec = {"allowedUses": list(p.allowed_uses), "blockSize": p.block_size, "cidr": p.cidr,
                "ipipMode": _mode(p, "IPIP"), "natOutgoing": p.nat_outgoing, "nodeSelector": p.node_selector,
                "vxlanMode": _mode(p, "VXLAN")}
        if p.disabled:
            spec["disabled"] = True
        out.append({"apiVersion": API_VERSION, "kind": "IPPool", "metadata": meta(rec, namespaced=False),
                    "spec": spec})
    return out


def _pod_record(state: ClusterState, handle: str) -> tuple[str, str, Record | None]:
    """(namespace, pod, its record) of a pod's IPAM handle (its key); the record is None once the
    pod is gone (its address is released at the next pass)."""
    namespace, _, pod = handle.partition("/")
    return namespace, pod, state.kinds.get("Pod", {}).get((namespace, pod))


def _attribute(state: ClusterState, handle: str, ip: str) -> dict:
    node = state.calico_ipam.used_on.get(ip, "")
    for n in state.config.nodes:
        if handle == tunnel_handle(n.name):
            return {"handle_id": handle, "secondary": {"node": n.name, "type": "vxlanTunnelAddress"}}
    namespace, pod, rec = _pod_record(state, handle)
    if rec is None:  # the handle as IPAM holds it
        return {"handle_id": handle, "secondary": {"node": node}}
    return {"handle_id": POD_HANDLE + rec.uid,
            "secondary": {"namespace": namespace, "node": node, "pod": pod, "timestamp": timestamp(rec.created)}}


def ipam_block(state: ClusterState, block: Block) -> dict:
    allocations: list[int | None] = [None] * block.size
    attributes = []
    for ordinal, handle in sorted(block.allocations.items()):
        allocations[ordinal] = len(attributes)
        attributes.append(_attribute(state, handle, block.address(ordinal)))
    return _obj(state, "IPAMBlock", block_name(block.cidr), block.claimed,
                {"affinity": f"host:{block.affinity}", "allocations": allocations, "attributes": attributes,
                 "cidr": block.cidr, "deleted": False, "strictAffinity": False,
                 "unallocated": list(block.unallocated)})


def block_affinity(state: ClusterState, block: Block) -> dict:
    return _obj(state, "BlockAffinity", f"{block.affinity}-{block_name(block.cidr)}", block.claimed,
                {"cidr": block.cidr, "deleted": "false", "node": block.affinity, "state": "confirmed",
                 "type": "host"})


def ipam_handles(state: ClusterState) -> list[dict]:
    """One per handle holding addresses: a pod's sandbox, a node's tunnel address."""
    tunnels = {tunnel_handle(n.name) for n in state.config.nodes}
    out = []
    for handle, ip in state.calico_ipam.handles.items():
        rec = None if handle in tunnels else _pod_record(state, handle)[2]
        name = handle if handle in tunnels else POD_HANDLE + rec.uid if rec is not None else ""
        block = state.calico_ipam.block_of(ip)
        if name and block is not None:
            out.append(_obj(state, "IPAMHandle", name, block.claimed,
                            {"block": {block.cidr: 1}, "deleted": False, "handleID": name}))
    return out


def ipam_configs(state: ClusterState) -> list[dict]:
    return [_obj(state, "IPAMConfig", "default", state.started,
                 {"autoAllocateBlocks": True, "maxBlocksPerHost": 0, "strictAffinity": False})]


def felix_configurations(state: ClusterState) -> list[dict]:
    """What Felix runs with here; ``Return`` toward the host is what ``netpolicy.felix`` writes."""
    spec: dict = {"defaultEndpointToHostAction": "Return", "logSeverityScreen": "Info", "reportingInterval": "0s"}
    if state.config.calico.vxlan:
        spec.update(vxlanVNI=VXLAN_VNI, vxlanPort=VXLAN_PORT)
    return [_obj(state, "FelixConfiguration", "default", state.started, spec)]


def cluster_informations(state: ClusterState) -> list[dict]:
    """As calico-node writes it at start on a kubeadm cluster keeping Calico's data in the
    Kubernetes API (its CLUSTER_TYPE ``k8s,bgp``, then ``kubeadm`` and ``kdd`` found); the GUID
    is made from the cluster's name and start (a new one per ``up``, as a new datastore's)."""
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"k8semu:{state.config.name}/ClusterInformation/{state.started}").hex
    return [_obj(state, "ClusterInformation", "default", state.started,
                 {"calicoVersion": CALICO_VERSION, "clusterGUID": guid, "clusterType": "k8s,bgp,kubeadm,kdd",
                  "datastoreReady": True})]


def bgp_configurations(state: ClusterState) -> list[dict]:
    """The stored BGPConfigurations (``default`` written at ``up`` from the spec), fields as written."""
    out = []
    for rec in state.list("BGPConfiguration"):
        c = rec.obj
        spec = {k: v for k, v in (("asNumber", c.as_number), ("logSeverityScreen", c.log_severity or None),
                                  ("nodeToNodeMeshEnabled", c.mesh)) if v is not None}
        out.append({"apiVersion": API_VERSION, "kind": "BGPConfiguration", "metadata": meta(rec, namespaced=False),
                    "spec": spec})
    return out


def bgp_peers(state: ClusterState) -> list[dict]:
    """The stored BGPPeers (with route reflectors in the spec, Calico's docs' peering with them)."""
    out = []
    for rec in state.list("BGPPeer"):
        p = rec.obj
        spec = {k: v for k, v in (("asNumber", p.as_number), ("node", p.node), ("nodeSelector", p.node_selector),
                                  ("peerIP", p.peer_ip), ("peerSelector", p.peer_selector)) if v}
        out.append({"apiVersion": API_VERSION, "kind": "BGPPeer", "metadata": meta(rec, namespaced=False),
                    "spec": spec})
    return out


def custom_resource_definitions(state: ClusterState) -> list[dict]:
    """``kubectl get crd``: Calico's CRDs on a calico cluster (calico.yaml installs them), none
    on the others; each with the schema ``kubectl explain`` reads (``model.calicocrds``)."""
    if state.calico_ipam is None:
        return []
    out = []
    for kind, plural in CALICO_KINDS:
        name = f"{plural}.{CALICO_GROUP}"
        names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
        schema = calicocrds.kind_schema(kind, {"type": "object"})
        out.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": _meta(state, "CustomResourceDefinition", name, state.started),
                    "spec": {"group": CALICO_GROUP, "names": names, "scope": "Cluster",
                             "versions": [{"name": "v1", "served": True, "storage": True,
                                           "schema": {"openAPIV3Schema": schema}}]},
                    "status": {"acceptedNames": names, "storedVersions": ["v1"], "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found", "lastTransitionTime": timestamp(state.started)},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted",
                         "lastTransitionTime": timestamp(state.started)}]}})
    return sorted(out, key=lambda o: o["metadata"]["name"])


def objects(state: ClusterState, kind: str) -> list[dict]:
    """Every object of one of Calico's kinds, by name (none on a cluster of another CNI)."""
    if state.calico_ipam is None:
        return []
    blocks = sorted(state.calico_ipam.blocks.values(), key=lambda b: block_name(b.cidr))
    views = {"IPPool": ip_pools, "IPAMBlock": lambda s: [ipam_block(s, b) for b in blocks],
             "BlockAffinity": lambda s: [block_affinity(s, b) for b in blocks], "IPAMHandle": ipam_handles,
             "IPAMConfig": ipam_configs, "FelixConfiguration": felix_configurations,
             "ClusterInformation": cluster_informations, "BGPConfiguration": bgp_configurations,
             "BGPPeer": bgp_peers}
    if kind not in views:
        raise ValueError(f"{kind} is not one of Calico's kinds")
    return sorted(views[kind](state), key=lambda o: o["metadata"]["name"])
