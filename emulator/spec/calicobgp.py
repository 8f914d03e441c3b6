"""crd.projectcalico.org/v1 BGPConfiguration and BGPPeer manifests -> model, checked field by
field as Calico's validator checks them (the bare CRD takes anything): an AS number in
1..4294967295, a log severity Calico knows, selectors that parse (``model.calicoselector``), a
peer by address (IPv4, with its AS) or by selector but not both, local nodes by name or by
selector but not both. What needs the cluster (which nodes exist, the AS they speak, the
addresses the underlay reaches) is checked when applied (``cluster/calicobgp.py``).
"""
from __future__ import annotations

import ipaddress

from emulator.model import calicoselector
from emulator.model.calicobgp import BGPConfiguration, BGPPeer
from emulator.model.meta import ObjectMeta
from emulator.spec.reader import Reader

CONFIG_SUPPORTED = {"asNumber", "nodeToNodeMeshEnabled", "logSeverityScreen"}
CONFIG_KNOWN = {"serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs", "listenPort", "communities",
                "prefixAdvertisements", "nodeMeshPassword", "nodeMeshMaxRestartTime", "bindMode", "ignoredInterfaces",
                "localWorkloadPeeringIPV4", "localWorkloadPeeringIPV6", "programClusterRoutes"}
PEER_SUPPORTED = {"node", "nodeSelector", "peerIP", "peerSelector", "asNumber"}
PEER_KNOWN = {"password", "sourceAddress", "keepOriginalNextHop", "maxRestartTime", "numAllowedLocalASNumbers",
              "ttlSecurity", "reachableBy", "filters", "keepaliveTime", "nextHopMode", "localWorkloadSelector",
              "externalNetwork", "reversePeering"}
SEVERITIES = ("Debug", "Info", "Warning", "Error", "Fatal")
MAX_AS = 4294967295


def _selector(r: Reader, key: str) -> str:
    return r.string(("spec", key), "", check=lambda v: calicoselector.check(v) if v else None) or ""


def parse_bgp_configuration(r: Reader, meta: ObjectMeta, source) -> BGPConfiguration:
    r.mapping(("spec",), CONFIG_SUPPORTED, CONFIG_KNOWN)
    asn = r.integer(("spec", "asNumber"), None, 1, MAX_AS)
    mesh = r.typed(("spec", "nodeToNodeMeshEnabled"), bool, None)
    severity = r.string(("spec", "logSeverityScreen"), "", check=lambda v: None if v in SEVERITIES else
                        f'Unsupported value: "{v}": supported values: ' + ", ".join(f'"{s}"' for s in SEVERITIES))
    return BGPConfiguration(meta, asn, mesh, severity or "", source)


def parse_bgp_peer(r: Reader, meta: ObjectMeta, source) -> BGPPeer:
    r.mapping(("spec",), PEER_SUPPORTED, PEER_KNOWN)
    node = r.string(("spec", "node"), "") or ""
    node_selector = _selector(r, "nodeSelector")
    peer_selector = _selector(r, "peerSelector")
    peer_ip = r.string(("spec", "peerIP"), "") or ""
    asn = r.integer(("spec", "asNumber"), None, 1, MAX_AS)
    if node and node_selector:
        r.fail(("spec",), "node and nodeSelector cannot both be set")
    if peer_ip and peer_selector:
        r.fail(("spec",), "peerIP and peerSelector cannot both be set")
    if r.get(("spec", "peerIP")) is None and r.get(("spec", "peerSelector")) is None:
        r.fail(("spec",), "one of peerIP or peerSelector is required")
    if peer_ip:
        try:
            ipaddress.IPv4Address(peer_ip)
        except ValueError:
            r.fail(("spec", "peerIP"), f'Invalid value: "{peer_ip}": an IPv4 address (k8semu\'s nodes listen on '
                                       "port 179 only, so no :port)")
            peer_ip = ""
        if asn is None:
            r.fail(("spec", "asNumber"), "required with peerIP (the AS the peer speaks)")
    return BGPPeer(meta, node, node_selector, peer_ip, peer_selector, asn, source)
