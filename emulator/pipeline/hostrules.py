"""The node-side half of the Service data path: what each node's own kernel does before traffic
reaches its Open vSwitch bridge (Antrea's agent does the same with host iptables).

- NodePort: ``<node IP>:<nodePort>`` is DNATed to the NodePort virtual IP, which the node routes
  to its gateway; OVS load-balances it (``features.service``).
- LoadBalancer: traffic to a load-balancer address (held by the announcing node) is DNATed to
  the NodePort virtual IP and the Service's nodePort, then follows the NodePort path.
- externalTrafficPolicy: Cluster is SNATed to the gateway address so replies come back through
  this node; Local keeps the client's address (and OVS uses node-local endpoints only).
- Pods reaching anything outside the pod subnet through eth0 are masqueraded to the node IP.

Rendered as ``iptables-restore`` input for the node's own namespace (nothing else uses it).
"""
from __future__ import annotations

from emulator.errors import RenderError
from emulator.model.netview import NetworkView, NodeView
from emulator.pipeline.features.service import NODEPORT_VIP, SERVICE_GW_VIP


def comment(text: str) -> str:
    """``-m comment --comment "..."`` for iptables-restore, which splits lines on spaces unless
    quoted and reads ``\\"`` inside quotes; a value with a control character is refused.

    Raises:
        RenderError: the text holds a control character or is longer than the kernel's 255.
    """
    if len(text) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise RenderError(f"iptables comment {text!r} cannot be written")
    return '-m comment --comment "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def iptables_nat(view: NetworkView, node: NodeView, pod_subnet: str) -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":K8SEMU-SERVICES - [0:0]", ":K8SEMU-POSTROUTING - [0:0]",
             "-A PREROUTING -j K8SEMU-SERVICES", "-A OUTPUT -j K8SEMU-SERVICES",
             "-A POSTROUTING -j K8SEMU-POSTROUTING"]
    for svc in view.services:
        if not svc.node_port or not svc.cluster_ip:
            continue
        proto = svc.protocol.lower()
        note = comment(svc.label)
        lines.append(f"-A K8SEMU-SERVICES -d {node.ip}/32 -p {proto} -m {proto} --dport {svc.node_port} "
                     f"{note} -j DNAT --to-destination {NODEPORT_VIP}")
        if svc.lb_ip:
            lines.append(f"-A K8SEMU-SERVICES -d {svc.lb_ip}/32 -p {proto} -m {proto} --dport {svc.port} "
                         f"{note} -j DNAT --to-destination {NODEPORT_VIP}:{svc.node_port}")
        if not svc.external_local:
            lines.append(f"-A K8SEMU-POSTROUTING -d {NODEPORT_VIP}/32 -p {proto} -m {proto} "
                         f"--dport {svc.node_port} {note} -j MASQUERADE")
    lines.append(f"-A K8SEMU-POSTROUTING -s {pod_subnet} ! -d {pod_subnet} -o eth0 "
                 f"{comment('pods to the outside')} -j MASQUERADE")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def node_routes(service_subnet: str, gateway_if: str) -> list[str]:
    """``ip route`` lines: the service subnet and the NodePort VIP go to OVS via the gateway."""
    return [f"route replace {service_subnet} via {SERVICE_GW_VIP} dev {gateway_if} onlink",
            f"route replace {NODEPORT_VIP}/32 via {SERVICE_GW_VIP} dev {gateway_if} onlink"]
