"""NetworkPolicy on ``cni: calico`` in the chains Felix (Calico's iptables data plane) writes,
rendered from ``model.netview.PolicyView`` for one node, so ``iptables-save`` on a node shows
what a Calico node shows: ``cali-FORWARD`` dispatching on the ``cali…`` interfaces to a chain per
pod and direction (``cali-fw-<iface>`` for what the pod sends, ``cali-tw-<iface>`` for what it
receives), which calls the chain of each policy selecting the pod (``cali-po-…`` egress,
``cali-pi-…`` ingress, in policy-name order, as Kubernetes policies share Felix's order 1000),
and, for a pod no policy selects, its namespace's profile ``cali-pro-kns.<namespace>``, which
allows (the kube-controllers' profile of a namespace does).

A policy rule that admits a packet sets Felix's accept mark (0x10000) and the policy chain
returns; the pod's chain returns when the mark is set ("Return if policy accepted") and drops
otherwise ("Drop if no policies passed packet"). Peers are an ipset per rule
(``cali40s:<hash>``, as Felix names selector sets: a prefix and a hash), ports as in the rule.

The semantics are the other planes' (``netpolicy.iptables``'s docstring): established and
related traffic passes, a pod's egress is judged on its node (FORWARD, and INPUT for what it
sends its own node), ingress on the receiving pod's node, after kube-proxy's DNAT, and the
node's own address is admitted (kubelet probes). Two deviations, both so that kube-proxy's
chains and a pod that is not in the view yet behave as on the other planes: where Felix ACCEPTs
what passed (``DefaultEndpointToHostAction``) this RETURNs, and an interface not in the view
is let through (Felix drops "Unknown interface"); the pod's own chain is loaded at the node's
next sync, which its generation waits for.

Names longer than iptables' 28 characters are shortened as Felix shortens them: the prefix,
``_`` and the start of the base64url SHA-224 of the name (hashutils.GetLengthLimitedID). Policy
chains are named after ``default/<namespace>/knp.default.<policy>``, the tier and name Calico's
conversion gives a Kubernetes NetworkPolicy. Written by hand as ``netpolicy.iptables`` is.
"""
from __future__ import annotations

import base64
import hashlib

from emulator.calico.cniplugin import veth_name
from emulator.kubeproxy.common import word
from emulator.model.netview import PodView, PolicyView, RuleView
from emulator.netpolicy.iptables import ANY, NodePolicy, ipset_lines, port_matches, quoted

MAX_CHAIN = 28  # iptables' chain name limit
MAX_SET = 31  # ipset's
ACCEPT_MARK = "0x10000/0x10000"
CLEAR_MARK = "0x0/0x10000"
FORWARD, INPUT = "cali-FORWARD", "cali-INPUT"
FROM_DISPATCH, TO_DISPATCH, TO_HOST = "cali-from-wl-dispatch", "cali-to-wl-dispatch", "cali-wl-to-host"
# the jumps Felix inserts first, with the rule ids it gives them
JUMPS = (("filter", "FORWARD", ["-m", "comment", "--comment", "cali:wUHhoiAYhphO9Mso", "-j", FORWARD]),
         ("filter", "INPUT", ["-m", "comment", "--comment", "cali:Cz_u1IQiXIMmKD4c", "-j", INPUT]))


def limited(prefix: str, name: str, max_len: int = MAX_CHAIN) -> str:
    """``prefix + name``, or when that is too long (or the name starts with ``_``) the prefix,
    ``_`` and as much of the name's base64url SHA-224 as fits."""
    if len(prefix) + len(name) <= max_len and not name.startswith("_"):
        return prefix + name
    digest = base64.urlsafe_b64encode(hashlib.sha224(name.encode()).digest()).decode().rstrip("=")
    return prefix + "_" + digest[:max_len - 1 - len(prefix)]


def policy_chain(policy: str, direction: str) -> str:
    """cali-pi-… (ingress) / cali-po-… (egress) of the Kubernetes NetworkPolicy ``ns/name``."""
    namespace, _, name = policy.partition("/")
    return limited("cali-pi-" if direction == "Ingress" else "cali-po-", f"default/{namespace}/knp.default.{name}")


def profile_chain(namespace: str) -> str:
    return word(limited("cali-pro-", f"kns.{namespace}"))


def peer_set(rule: RuleView) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha224(f"{rule.owner}#{rule.id}".encode()).digest()).decode()
    return "cali40s:" + digest[:MAX_SET - len("cali40s:") - 1]


def _policy_rules(rule: RuleView, local: set[str], selected: set[str], sets: list[str], names: set[str]) -> list[str]:
    """One rule of a policy chain: each port sets the accept mark, then the chain returns."""
    mine = sorted(ip for ip, _ in rule.applied if ip in local)
    if not mine or not rule.peers:
        return []
    egress = rule.direction == "Egress"
    targets: list[list[str]] = [[]]
    if set(mine) != selected & local:  # named ports resolved per pod: the rule holds for these
        targets = [["-s" if egress else "-d", f"{word(ip)}/32"] for ip in mine]
    peers: list[str] = []
    if ANY not in rule.peers:
        name = peer_set(rule)
        ipset_lines(sets, name, "hash:net", sorted(rule.peers))
        names.add(name)
        peers = ["-m", "set", "--match-set", name, "dst" if egress else "src"]
    out = [" ".join([*target, *peers, *ports, "-m", "comment", "--comment", quoted(rule.owner),
                     "-j", "MARK", "--set-xmark", ACCEPT_MARK])
           for target in targets for ports in port_matches(rule)]
    return out + [f"-m mark --mark {ACCEPT_MARK} -m comment --comment {quoted('Return if policy accepted')} -j RETURN"]


def _endpoint(chain: str, pod: PodView, direction: str, policies: list[str], host_ip: str) -> list[str]:
    """cali-fw-/cali-tw-<iface>: conntrack, the mark cleared, then the pod's policies or profile."""
    out = ["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-m conntrack --ctstate INVALID -j DROP",
           f"-j MARK --set-xmark {CLEAR_MARK}"]
    if direction == "Ingress":
        out.append(f"-s {word(host_ip)}/32 -m comment --comment {quoted('the node itself (kubelet probes)')} -j RETURN")
    if policies:
        for i, policy in enumerate(policies):
            start = f"-m comment --comment {quoted('Start of policies')} " if i == 0 else ""
            out += [f"{start}-j {policy_chain(policy, direction)}",
                    f"-m mark --mark {ACCEPT_MARK} -m comment --comment {quoted('Return if policy accepted')} -j RETURN"]
        out.append(f"-m comment --comment {quoted('Drop if no policies passed packet')} -j DROP")
    else:
        out += [f"-j {profile_chain(pod.namespace)}",
                f"-m mark --mark {ACCEPT_MARK} -m comment --comment {quoted('Return if profile accepted')} -j RETURN",
                f"-m comment --comment {quoted('Drop if no profiles matched')} -j DROP"]
    return [f"-A {chain} {line}" for line in out]


def render(policies: PolicyView, node: str, host_ip: str, pods: list[PodView]) -> NodePolicy:
    """The node's Felix-shaped policy state for its pods ``pods`` (those on cali veths)."""
    local = {p.ip for p in pods}
    sets: list[str] = []
    names: set[str] = set()
    chains: dict[str, list[str]] = {FORWARD: [], INPUT: [], TO_HOST: [], FROM_DISPATCH: [], TO_DISPATCH: []}
    chains[FORWARD] += [f"-A {FORWARD} -i cali+ -m comment --comment {quoted('From workload')} -j {FROM_DISPATCH}",
                        f"-A {FORWARD} -o cali+ -m comment --comment {quoted('To workload')} -j {TO_DISPATCH}"]
    chains[INPUT].append(f"-A {INPUT} -i cali+ -m comment --comment {quoted('From workload')} -g {TO_HOST}")
    chains[TO_HOST] += [f"-A {TO_HOST} -j {FROM_DISPATCH}",
                        f"-A {TO_HOST} -m comment --comment {quoted('Configured DefaultEndpointToHostAction')} -j RETURN"]
    selected: dict[tuple[str, str], set[str]] = {(s.policy, s.direction): set(s.pods) for s in policies.selections}
    profiles: set[str] = set()
    for pod in sorted(pods, key=lambda p: veth_name(p.namespace, p.name)):
        iface = veth_name(pod.namespace, pod.name)
        comment = quoted(f"{pod.namespace}/{pod.name}")
        for direction, dispatch, prefix, flag in (("Egress", FROM_DISPATCH, "cali-fw-", "-i"),
                                                  ("Ingress", TO_DISPATCH, "cali-tw-", "-o")):
            chain = prefix + iface
            chains[dispatch].append(f"-A {dispatch} {flag} {iface} -m comment --comment {comment} -g {chain}")
            mine = sorted(p for (p, d), ips in selected.items() if d == direction and pod.ip in ips)
            chains[chain] = _endpoint(chain, pod, direction, mine, host_ip)
            if not mine:
                profiles.add(pod.namespace)
    for dispatch in (FROM_DISPATCH, TO_DISPATCH):  # Felix drops here: see the module's docstring
        chains[dispatch].append(f"-A {dispatch} -m comment --comment {quoted('Unknown interface (not in the view yet)')}"
                                " -j RETURN")
    for (policy, direction), ips in sorted(selected.items()):
        if not ips & local:
            continue
        chain = policy_chain(policy, direction)
        lines = [line for rule in sorted(policies.rules, key=lambda r: r.id)
                 if rule.policy == policy and rule.direction == direction
                 for line in _policy_rules(rule, local, ips, sets, names)]
        chains[chain] = [f"-A {chain} {line}" for line in lines]
    for namespace in sorted(profiles):
        chain = profile_chain(namespace)
        chains[chain] = [f"-A {chain} -j MARK --set-xmark {ACCEPT_MARK}",
                         f"-A {chain} -m mark --mark {ACCEPT_MARK} -m comment --comment "
                         f"{quoted('Kubernetes namespace profile: allow')} -j RETURN"]
    rules = ["*filter"] + [f":{name} - [0:0]" for name in chains]
    for lines in chains.values():
        rules += lines
    rules.append("COMMIT")
    return NodePolicy("\n".join(sets) + "\n", "\n".join(rules) + "\n", frozenset(names), frozenset(chains))
