"""Calico's CRDs (crd.projectcalico.org/v1): the schema of each kind's ``spec`` for the fields
the emulator shows, from which both the CustomResourceDefinition objects (``kubectl get crd``,
their ``openAPIV3Schema``) and the OpenAPI documents (``kubectl explain ippools``) are made.

Calico's CRD files are not in any Debian package and are not fetched at run time, so these are
written here (the descriptions are ours, after Calico's reference); a field k8semu does not show
is left out. kube-apiserver publishes a CRD's schema under a name made from its reversed group
(``org.projectcalico.crd.v1.IPPool``).
"""
from __future__ import annotations

from emulator.model.calico import CALICO_GROUP

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _s(description: str) -> dict:
    return {"type": "string", "description": description}


def _i(description: str) -> dict:
    return {"type": "integer", "format": "int32", "description": description}


def _b(description: str) -> dict:
    return {"type": "boolean", "description": description}


ATTRIBUTE = {"type": "object", "properties": {
    "handle_id": _s("The handle the address was allocated to (k8s-pod-network.<sandbox id> for a pod)."),
    "secondary": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "Who holds the address: namespace, pod and node."}}}
SPECS: dict[str, tuple[str, dict, list[str]]] = {
    "IPPool": ("An IP pool: a range of pod addresses Calico's IPAM hands out in blocks.", {
        "cidr": _s("The pool's range of addresses."),
        "blockSize": _i("The prefix length of the blocks the pool is carved into, each claimed by one node "
                        "(26 by default for IPv4)."),
        "ipipMode": _s("When packets to pods of this pool are IP-in-IP encapsulated: Always, CrossSubnet "
                       "(only between nodes in different subnets) or Never."),
        "vxlanMode": _s("When packets to pods of this pool are VXLAN encapsulated: Always, CrossSubnet or Never."),
        "natOutgoing": _b("Masquerade packets from the pool's pods to destinations outside every pool."),
        "nodeSelector": _s("The nodes whose pods get addresses from this pool (a Calico selector; all() by "
                           "default; !all(): only pods naming the pool in the cni.projectcalico.org/ipv4pools "
                           "annotation)."),
        "allowedUses": {"type": "array", "items": {"type": "string"},
                        "description": "What the pool's addresses are for: Workload (pods), Tunnel (the "
                                       "nodes' tunnel addresses)."},
        "disabled": _b("No new address comes from a disabled pool (those handed out stay): the step before "
                       "moving pods to another pool."),
        "disableBGPExport": _b("Do not advertise the pool's blocks over BGP (accepted by k8semu, not emulated)."),
    }, ["cidr"]),
    "IPAMBlock": ("A block of an IP pool: its affinity to a node and which of its addresses are used.", {
        "cidr": _s("The block's range of addresses."),
        "affinity": _s("The node the block belongs to, as host:<node name>."),
        "allocations": {"type": "array", "items": {"type": "integer", "nullable": True},
                        "description": "One entry per address of the block, by ordinal: the index of the "
                                       "address's entry in attributes, or null when the address is free."},
        "attributes": {"type": "array", "items": ATTRIBUTE, "description": "What each used address was allocated to."},
        "unallocated": {"type": "array", "items": {"type": "integer"},
                        "description": "The free ordinals, in the order they are handed out (a released "
                                       "address goes to the end)."},
        "strictAffinity": _b("Unused (IPAMConfig holds strict affinity)."),
        "deleted": _b("Set while the block is being released."),
    }, ["allocations", "attributes", "cidr", "strictAffinity", "unallocated"]),
    "BlockAffinity": ("A node's claim on a block.", {
        "cidr": _s("The block's range of addresses."),
        "node": _s("The node that claimed the block."),
        "state": _s("confirmed once the block is the node's; pending or pendingDeletion meanwhile."),
        "type": _s("What holds the affinity: host."),
        "deleted": _s("\"true\" while the affinity is being removed (a string, for older releases)."),
    }, ["cidr", "deleted", "node", "state"]),
    "BGPConfiguration": ("The cluster's BGP settings (the object named default).", {
        "asNumber": _i("The AS number of every node that sets none (64512 by default)."),
        "nodeToNodeMeshEnabled": _b("Whether every node peers with every other node (true by default; off "
                                    "when route reflectors are used)."),
        "logSeverityScreen": _s("The lowest severity BIRD's logs are written for (Info by default)."),
    }, []),
    "BGPPeer": ("A BGP peering: which nodes peer with which address or which other nodes.", {
        "node": _s("The one node this peering is for (else nodeSelector, else every node)."),
        "nodeSelector": _s("The nodes this peering is for (a Calico selector)."),
        "peerIP": _s("The address of the peer, when it is one address."),
        "asNumber": _i("The AS number of the peer at peerIP."),
        "peerSelector": _s("The nodes to peer with (a Calico selector on their labels), instead of peerIP."),
    }, []),
    "IPAMHandle": ("What one allocation handle (a pod's sandbox, a node's tunnel) holds, block by block.", {
        "handleID": _s("The handle: k8s-pod-network.<sandbox id> for a pod, vxlan-tunnel-addr-<node> for a "
                       "node's VXLAN tunnel address."),
        "block": {"type": "object", "additionalProperties": {"type": "integer"},
                  "description": "How many addresses the handle holds in each block (by CIDR)."},
        "deleted": _b("Set while the handle is being released."),
    }, ["block", "handleID"]),
    "IPAMConfig": ("The IPAM's settings (the object named default).", {
        "strictAffinity": _b("Whether a node may only use addresses of blocks affine to it (false: it borrows "
                             "from other nodes' blocks once every block is claimed)."),
        "autoAllocateBlocks": _b("Whether a node claims a new block when its own are full."),
        "maxBlocksPerHost": _i("The most blocks a node may claim (0: no limit)."),
    }, ["autoAllocateBlocks", "strictAffinity"]),
    "FelixConfiguration": ("Felix's settings (the object named default).", {
        "defaultEndpointToHostAction": _s("What happens to a packet from a pod to its own node once the pod's "
                                          "egress policy let it through: Drop, Return (on to the host's other "
                                          "rules) or Accept."),
        "logSeverityScreen": _s("The lowest severity Felix logs (Info by default)."),
        "reportingInterval": _s("How often Felix reports its status (0s: never)."),
        "vxlanVNI": _i("The VNI of the vxlan.calico device (4096 by default)."),
        "vxlanPort": _i("The UDP port of the vxlan.calico device (4789 by default)."),
    }, []),
    "ClusterInformation": ("What calico-node records of the cluster (the object named default).", {
        "calicoVersion": _s("The Calico version the cluster runs."),
        "clusterGUID": _s("A unique identifier of the cluster, made when calico-node first starts."),
        "clusterType": _s("What calico-node found: k8s, bgp (BIRD networking), kubeadm (a kubeadm "
                          "cluster), kdd (the datastore is the Kubernetes API)."),
        "datastoreReady": _b("Whether Calico's components may use the datastore."),
    }, []),
}


def schema_name(kind: str) -> str:
    return ".".join(reversed(CALICO_GROUP.split("."))) + f".v1.{kind}"


def kind_schema(kind: str, metadata: dict) -> dict:
    """The kind's object schema, with ``metadata`` as given: a reference to ObjectMeta in an
    OpenAPI document, ``{"type": "object"}`` in a CRD (which cannot describe it)."""
    description, properties, required = SPECS[kind]
    spec: dict = {"type": "object", "description": f"The {kind}'s settings.", "properties": properties}
    if required:
        spec["required"] = required
    return {"type": "object", "description": description,
            "properties": {"apiVersion": _s("The versioned schema of this object: crd.projectcalico.org/v1."),
                           "kind": _s(f"The kind: {kind}."), "metadata": metadata, "spec": spec}}


def schemas() -> dict[str, dict]:
    """Each kind's schema for the OpenAPI documents, named as kube-apiserver names a CRD's."""
    meta = {"allOf": [{"$ref": f"#/components/schemas/{META}"}], "description": "Standard object's metadata."}
    return {schema_name(kind): {**kind_schema(kind, meta),
                                "x-kubernetes-group-version-kind": [{"group": CALICO_GROUP, "kind": kind, "version": "v1"}]}
            for kind in SPECS}
