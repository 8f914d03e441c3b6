"""NetworkPolicy as an iptables-based policy agent enforces it on a node (kube-router's and
Calico's iptables mode's shape), rendered from ``model.netview.PolicyView`` for one node.

Same semantics as the OpenFlow pipeline (``pipeline.features.policy``), node by node:

- Established and related traffic always passes (replies, and connections a changed policy
  still allows are never cut); the first packet of a connection is judged.
- Egress is judged on the node of the sending pod, ingress on the node of the receiving pod,
  both in FORWARD (routed and, with br_netfilter, bridged packets), after kube-proxy's DNAT: a
  packet to a Service is judged by the endpoint it goes to. A pod's packet to its own node's
  addresses is judged in INPUT (egress only: no pod receives there).
- A pod selected by a policy of a direction is isolated in it: what no rule of that direction
  allows is dropped. The node's own gateway address (kubelet probes) is admitted.

Per node, only the rules protecting its own pods are written: a set of the rule's pods on this
node (``hash:ip``) and, unless the rule admits anyone, a set of its peers (``hash:net``: pod
addresses as /32, ipBlocks less their exceptions), each rule port one iptables rule. Sets are
named from the rule's allocated id (``k8semu-r<id>-pods``/``-peers``), chains ``K8SEMU-POLICY``
(jumped to first in FORWARD and INPUT), ``K8SEMU-EGRESS``, ``K8SEMU-INGRESS``. SCTP ports are not written
(this kernel has no SCTP; nothing here can send it).

Written by hand, as kube-proxy's rules are (``emulator.kubeproxy``): no library renders policy
rules, and every value is an address, a port or an allocated id (``kubeproxy.common.word``
refuses anything else all the same).
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.kubeproxy.common import word
from emulator.model.netview import PolicyView, RuleView

POLICY, EGRESS, INGRESS = "K8SEMU-POLICY", "K8SEMU-EGRESS", "K8SEMU-INGRESS"
ISOLATED = {"Egress": "k8semu-iso-egress", "Ingress": "k8semu-iso-ingress"}
SET_PREFIX = "k8semu-"
# FORWARD: pod to pod (and anything routed); INPUT: a pod to its own node's addresses, which egress
# policy judges too, as the OpenFlow pipeline does (what enters INPUT is never a pod's ingress)
JUMPS = tuple(("filter", chain, ["-m", "comment", "--comment", "k8semu network policy", "-j", POLICY])
              for chain in ("FORWARD", "INPUT"))
ANY = "0.0.0.0/0"


@dataclass(frozen=True)
class NodePolicy:
    """What one node loads: ``ipset restore`` input, ``iptables-restore --noflush`` input, and
    the sets they use (the node's other k8semu sets are destroyed after)."""
    ipsets: str
    rules: str
    sets: frozenset[str]
    chains: frozenset[str] = frozenset()  # chains that come and go with pods (Felix's): the gone ones are deleted


def quoted(text: str) -> str:
    if '"' in text or "\\" in text or "\n" in text:
        raise ValueError(f"{text!r} cannot be an iptables comment")
    return f'"{text}"'


def ipset_lines(lines: list[str], name: str, kind: str, members: list[str]) -> None:
    lines += [f"create {name} {kind} family inet -exist", f"flush {name}"]
    lines += [f"add {name} {word(m)} -exist" for m in members]


def port_matches(rule: RuleView) -> list[list[str]]:
    """Each rule port as match words; [[]] when the rule names no port (every port)."""
    if not rule.ports:
        return [[]]
    out = []
    for protocol, port, end in rule.ports:
        if protocol not in ("TCP", "UDP"):
            continue
        proto = protocol.lower()
        if port is None:
            out.append(["-p", proto])
        else:
            out.append(["-p", proto, "-m", proto, "--dport", f"{int(port)}:{int(end)}" if end else str(int(port))])
    return out


def render(policies: PolicyView, node: str, gateway_ip: str, local: set[str] | frozenset[str]) -> NodePolicy:
    """The node's policy state (see the module's docstring); ``local``: the addresses of the
    node's pods."""
    sets: list[str] = []
    names: set[str] = set()
    for direction, name in ISOLATED.items():
        isolated = policies.isolated_egress if direction == "Egress" else policies.isolated_ingress
        ipset_lines(sets, name, "hash:ip", sorted(ip for ip in isolated if ip in local))
        names.add(name)
    chains = {EGRESS: [], INGRESS: []}
    chains[INGRESS].append(["-s", f"{word(gateway_ip)}/32", "-m", "comment", "--comment",
                            quoted("the node itself (kubelet probes)"), "-j", "RETURN"])
    for rule in sorted(policies.rules, key=lambda r: r.id):
        mine = sorted(ip for ip, where in rule.applied if where == node)
        if not mine or not rule.peers:
            continue
        pods, peers = f"{SET_PREFIX}r{int(rule.id)}-pods", f"{SET_PREFIX}r{int(rule.id)}-peers"
        ipset_lines(sets, pods, "hash:ip", mine)
        names.add(pods)
        egress = rule.direction == "Egress"
        match = ["-m", "set", "--match-set", pods, "src" if egress else "dst"]
        if ANY not in rule.peers:
            ipset_lines(sets, peers, "hash:net", sorted(rule.peers))
            names.add(peers)
            match += ["-m", "set", "--match-set", peers, "dst" if egress else "src"]
        for ports in port_matches(rule):
            chains[EGRESS if egress else INGRESS].append(
                match + ports + ["-m", "comment", "--comment", quoted(rule.owner), "-j", "RETURN"])
    rules = ["*filter", f":{POLICY} - [0:0]", f":{EGRESS} - [0:0]", f":{INGRESS} - [0:0]",
             f"-A {POLICY} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
             f"-A {POLICY} -m set --match-set {ISOLATED['Egress']} src -j {EGRESS}",
             f"-A {POLICY} -m set --match-set {ISOLATED['Ingress']} dst -j {INGRESS}"]
    for chain in (EGRESS, INGRESS):
        rules += [" ".join(["-A", chain, *words]) for words in chains[chain]]
        what = "egress" if chain == EGRESS else "ingress"
        rules.append(f"-A {chain} -m comment --comment {quoted(what + '-isolated: drop what no rule allows')} -j DROP")
    rules.append("COMMIT")
    return NodePolicy("\n".join(sets) + "\n", "\n".join(rules) + "\n", frozenset(names))
