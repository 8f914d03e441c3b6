"""The node-side half of the Service data path: what each node's own kernel does before traffic
reaches its Open vSwitch bridge (Antrea's agent does the same with host iptables).

- NodePort: ``<node IP>:<nodePort>`` is DNATed to the NodePort virtual IP, which the node routes
  to its gateway; OVS load-balances it (``features.service``).
- LoadBalancer: traffic to a load-balancer address (held by the announcing node) is DNATed to
  the NodePort virtual IP and the Service's nodePort, then follows the NodePort path; with
  ``loadBalancerSourceRanges`` only traffic from those ranges is, and the rest is dropped.
- externalTrafficPolicy: Cluster is SNATed to the gateway address so replies come back through
  this node; Local keeps the client's address (and OVS uses node-local endpoints only). A pod
  of this node calling the node's NodePort, a LoadBalancer address or an external IP of a Local
  Service never gets here: OVS balances it over every endpoint, keeping the pod's address, as
  kube-proxy's KUBE-EXT chain does (``features.service``).
- externalIPs: traffic to ``<external IP>:<port>`` reaching a node (from outside, routed there by
  whoever owns the address, or from a pod through its gateway) is DNATed to the cluster IP and
  SNATed to the gateway address, so the reply comes back through this node to be un-NATed; for
  a NodePort/LoadBalancer Service with externalTrafficPolicy Local it follows the LoadBalancer
  address's path instead (client address kept, node-local endpoints only).
- Pods reaching anything outside the pod subnet through eth0 are masqueraded to the node IP, and
  so is the gateway hairpin's SNAT address (a NodePort reaching a hostNetwork endpoint on
  another node, ``features.service``).
- hostPort: as the portmap CNI plugin, ``hostIP:hostPort`` (the node's address when hostIP is
  unset, where portmap matches every local address) is DNATed to the pod's port.

Rendered as ``iptables-restore`` input (the nat and filter tables) for the node's own namespace
(nothing else uses it). With kube-proxy beside the controller (``kubeProxy.mode`` on
``cni: openflow``, as Antrea with ``proxyAll: false``) kube-proxy's chains do the NodePort,
load-balancer and external-IP part, and only the CNI's part is written (``cni_nat``: hostPorts
and the masquerades, in k8semu's own chains, without flushing kube-proxy's).
"""
from __future__ import annotations

from emulator.errors import RenderError
from emulator.model.netview import NetworkView, NodeView
from emulator.pipeline.features.service import HAIRPIN_VIP, NODEPORT_VIP, SERVICE_GW_VIP


def comment(text: str) -> str:
    """``-m comment --comment "..."`` for iptables-restore, which splits lines on spaces unless
    quoted and reads ``\\"`` inside quotes; a value with a control character is refused.

    Raises:
        RenderError: the text holds a control character or is longer than the kernel's 255.
    """
    if len(text) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise RenderError(f"iptables comment {text!r} cannot be written")
    return '-m comment --comment "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def loopback_host_ports(view: NetworkView, node: NodeView) -> bool:
    """A pod of this node has a hostPort on a loopback hostIP (the node needs route_localnet)."""
    return any(ip.startswith("127.") for pod in view.host_port_pods if pod.node == node.name
               for _, ip, _, _ in pod.host_ports)


def host_port_rules(view: NetworkView, node: NodeView, pod_subnet: str) -> list[str]:
    """The portmap plugin's rules for this node's pods: ``hostIP:hostPort`` (the node's address
    when hostIP is unset) DNATed to the pod; a pod or the node's loopback calling it is SNATed,
    so the reply comes back through the node."""
    lines = []
    for pod in sorted((p for p in view.host_port_pods if p.node == node.name), key=lambda p: p.ip):
        for proto, host_ip, host_port, container_port in pod.host_ports:
            proto_l, dest = proto.lower(), host_ip or node.ip
            # a pod name may be 253 characters: cut to fit the kernel's 255 for a comment
            note = comment(f"hostport {host_port}/{proto} {pod.namespace}/{pod.name}"[:255])
            lines.append(f"-A K8SEMU-HOSTPORTS -d {dest}/32 -p {proto_l} -m {proto_l} --dport {host_port} "
                         f"{note} -j DNAT --to-destination {pod.ip}:{container_port}")
            lines.append(f"-A K8SEMU-POSTROUTING -s {pod_subnet} -p {proto_l} -m conntrack --ctorigdst {dest}/32 "
                         f"--ctorigdstport {host_port} {note} -j MASQUERADE")
    if loopback_host_ports(view, node):
        lines.append(f"-A K8SEMU-POSTROUTING -s 127.0.0.0/8 ! -d 127.0.0.0/8 "
                     f"{comment('hostports from the node loopback')} -j MASQUERADE")
    return lines


def iptables_nat(view: NetworkView, node: NodeView, pod_subnet: str) -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":K8SEMU-HOSTPORTS - [0:0]", ":K8SEMU-SERVICES - [0:0]",
             ":K8SEMU-POSTROUTING - [0:0]",
             "-A PREROUTING -j K8SEMU-HOSTPORTS", "-A OUTPUT -j K8SEMU-HOSTPORTS",
             "-A PREROUTING -j K8SEMU-SERVICES", "-A OUTPUT -j K8SEMU-SERVICES",
             "-A POSTROUTING -j K8SEMU-POSTROUTING"]
    lines += host_port_rules(view, node, pod_subnet)
    for svc in view.services:
        if not svc.cluster_ip:
            continue
        proto = svc.protocol.lower()
        note = comment(svc.label)
        local = svc.external_local and svc.node_port  # Local applies to NodePort/LoadBalancer only
        for ip in svc.external_ips if not local else ():
            lines.append(f"-A K8SEMU-SERVICES -d {ip}/32 -p {proto} -m {proto} --dport {svc.port} "
                         f"{note} -j DNAT --to-destination {svc.cluster_ip}:{svc.port}")
            lines.append(f"-A K8SEMU-POSTROUTING -p {proto} -m conntrack --ctorigdst {ip}/32 --ctorigdstport "
                         f"{svc.port} {note} -j MASQUERADE")
        if not svc.node_port:
            continue
        lines.append(f"-A K8SEMU-SERVICES -d {node.ip}/32 -p {proto} -m {proto} --dport {svc.node_port} "
                     f"{note} -j DNAT --to-destination {NODEPORT_VIP}")
        for ip in ([svc.lb_ip] if svc.lb_ip else []) + (list(svc.external_ips) if local else []):
            # loadBalancerSourceRanges: only their sources are DNATed (the rest is dropped by
            # iptables_filter), as kube-proxy's KUBE-FW chain does
            sources = [f"-s {cidr} " for cidr in svc.source_ranges] if ip == svc.lb_ip and svc.source_ranges else [""]
            lines += [f"-A K8SEMU-SERVICES {src}-d {ip}/32 -p {proto} -m {proto} --dport {svc.port} "
                      f"{note} -j DNAT --to-destination {NODEPORT_VIP}:{svc.node_port}" for src in sources]
        if not svc.external_local:
            lines.append(f"-A K8SEMU-POSTROUTING -d {NODEPORT_VIP}/32 -p {proto} -m {proto} "
                         f"--dport {svc.node_port} {note} -j MASQUERADE")
    lines += masquerade_rules(pod_subnet)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def masquerade_rules(pod_subnet: str) -> list[str]:
    """Pods reaching the outside through eth0, and the gateway hairpin's address, masqueraded to
    the node's address."""
    return [f"-A K8SEMU-POSTROUTING -s {pod_subnet} ! -d {pod_subnet} -o eth0 "
            f"{comment('pods to the outside')} -j MASQUERADE",
            f"-A K8SEMU-POSTROUTING -s {HAIRPIN_VIP}/32 -o eth0 "
            f"{comment('gateway hairpin to an endpoint on another host')} -j MASQUERADE"]


CNI_JUMPS = ("*nat\n-A PREROUTING -j K8SEMU-HOSTPORTS\n-A OUTPUT -j K8SEMU-HOSTPORTS\n"
             "-A POSTROUTING -j K8SEMU-POSTROUTING\nCOMMIT\n")  # once, after the chains exist (``cni_nat``)


def cni_nat(view: NetworkView, node: NodeView, pod_subnet: str) -> str:
    """``iptables-restore --noflush`` input for the CNI's part alone (kube-proxy beside the
    controller): k8semu's two chains declared (so flushed) and refilled, nothing else touched;
    the jumps to them are ``CNI_JUMPS``, loaded once. kube-proxy inserts its own jumps first, as
    it does before the portmap plugin's on a real node."""
    lines = ["*nat", ":K8SEMU-HOSTPORTS - [0:0]", ":K8SEMU-POSTROUTING - [0:0]"]
    lines += host_port_rules(view, node, pod_subnet)
    lines += masquerade_rules(pod_subnet)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def iptables_filter(view: NetworkView) -> str:
    """The filter table: new connections to a LoadBalancer address from outside its
    ``loadBalancerSourceRanges`` (not DNATed by ``iptables_nat``) are dropped, as kube-proxy's
    KUBE-PROXY-FIREWALL drops them. Written whole with the nat table, so a range taken away
    leaves no rule behind."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":K8SEMU-FIREWALL - [0:0]"]
    lines += [f"-A {chain} -m conntrack --ctstate NEW -j K8SEMU-FIREWALL" for chain in ("INPUT", "FORWARD", "OUTPUT")]
    for svc in view.services:
        if svc.cluster_ip and svc.lb_ip and svc.node_port and svc.source_ranges:
            proto = svc.protocol.lower()
            lines.append(f"-A K8SEMU-FIREWALL -d {svc.lb_ip}/32 -p {proto} -m {proto} --dport {svc.port} "
                         f"{comment(svc.label + ' traffic not from loadBalancerSourceRanges')} -j DROP")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def node_routes(service_subnet: str, gateway_if: str) -> list[str]:
    """``ip route`` lines: the service subnet, the NodePort VIP and the hairpin SNAT address
    (replies of the gateway hairpin) go to OVS via the gateway."""
    return [f"route replace {service_subnet} via {SERVICE_GW_VIP} dev {gateway_if} onlink",
            f"route replace {NODEPORT_VIP}/32 via {SERVICE_GW_VIP} dev {gateway_if} onlink",
            f"route replace {HAIRPIN_VIP}/32 via {SERVICE_GW_VIP} dev {gateway_if} onlink"]
