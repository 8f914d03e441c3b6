"""NetworkPolicy in Felix's chains (``cni: calico``, issue #14): a node's chains and sets as a
golden file, the names Felix gives (interfaces, shortened policy names, profiles), a policy
without rules isolating all the same, named ports held to their pod, comments that cannot
break out, and the selections the cluster state compiles."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.calico.cniplugin import veth_name
from emulator.model.netview import PodView, PolicyView, RuleView, Selection
from emulator.netpolicy import felix

GOLDEN = Path("calico")
WEB, CLIENT, LONE = (PodView(1, "default", "web", "worker-1", "10.244.0.3", "", 0),
                     PodView(2, "default", "client", "worker-1", "10.244.0.9", "", 0),
                     PodView(3, "other", "lone", "worker-1", "10.244.0.4", "", 0))
POLICIES = PolicyView(
    rules=(RuleView(7, "default/web-allow ingress[0]", "Ingress", (("10.244.0.3", "worker-1"), ("10.244.0.67", "worker-2")),
                    ("10.244.0.66/32", "192.168.0.0/17"), (("TCP", 80, None), ("TCP", 8000, 8080), ("SCTP", 9, None)),
                    "default/web-allow"),
           RuleView(8, "default/client-out egress[0]", "Egress", (("10.244.0.9", "worker-1"),), ("0.0.0.0/0",),
                    (("UDP", 53, None),), "default/client-out")),
    isolated_ingress=("10.244.0.3", "10.244.0.4", "10.244.0.67"), isolated_egress=("10.244.0.9",),
    selections=(Selection("default/web-allow", "Ingress", ("10.244.0.3", "10.244.0.67")),
                Selection("default/client-out", "Egress", ("10.244.0.9",)),
                Selection("other/deny-all", "Ingress", ("10.244.0.4",))))


def test_felix_chains_golden(golden) -> None:
    """worker-1: a dispatch entry and two chains per pod, a policy chain per selecting policy
    (an empty one for a policy without rules), a profile for the directions no policy selects."""
    node = felix.render(POLICIES, "worker-1", "172.18.0.3", [WEB, CLIENT, LONE])
    golden(str(GOLDEN / "felix-policy.worker-1.ipset"), node.ipsets)
    golden(str(GOLDEN / "felix-policy.worker-1.iptables"), node.rules)
    assert node.sets == {felix.peer_set(POLICIES.rules[0])}
    iface = veth_name("default", "web")
    assert f"-A cali-to-wl-dispatch -o {iface} -m comment --comment \"default/web\" -g cali-tw-{iface}" in node.rules
    deny = felix.policy_chain("other/deny-all", "Ingress")
    lone = f"cali-tw-{veth_name('other', 'lone')}"
    assert f"-A {lone} -m comment --comment \"Start of policies\" -j {deny}" in node.rules
    assert f":{deny} - [0:0]" in node.rules and f"-A {deny} " not in node.rules  # no rule: nothing passes
    assert f"-A {lone} -m comment --comment \"Drop if no policies passed packet\" -j DROP" in node.rules
    assert {f"cali-fw-{iface}", f"cali-tw-{iface}", deny, "cali-pro-kns.default", "cali-FORWARD"} <= node.chains


def test_names_fit_iptables_and_ipset_and_are_shortened_as_felix_shortens_them() -> None:
    chain = felix.policy_chain("default/web-allow", "Ingress")
    assert re.fullmatch(r"cali-pi-_[A-Za-z0-9_-]{19}", chain) and len(chain) == 28
    assert felix.policy_chain("default/web-allow", "Egress").startswith("cali-po-_")
    assert felix.limited("cali-pro-", "kns.default") == "cali-pro-kns.default"
    assert re.fullmatch(r"cali-pro-_[A-Za-z0-9_-]+", felix.limited("cali-pro-", "_x"))  # a leading "_": hashed
    assert len(felix.profile_chain("a-namespace-name-that-is-long")) == 28
    assert len(felix.peer_set(POLICIES.rules[0])) <= 31 and felix.peer_set(POLICIES.rules[0]).startswith("cali40s:")


def test_a_named_port_rule_holds_for_its_pod_only() -> None:
    """An ingress rule whose named port resolved for one selected pod applies to that pod."""
    named = PolicyView((RuleView(3, "default/p ingress[0]", "Ingress", (("10.244.0.3", "worker-1"),), ("0.0.0.0/0",),
                                 (("TCP", 8080, None),), "default/p"),),
                       ("10.244.0.3", "10.244.0.9"), (), (Selection("default/p", "Ingress", ("10.244.0.3", "10.244.0.9")),))
    rules = felix.render(named, "worker-1", "172.18.0.3", [WEB, CLIENT]).rules
    chain = felix.policy_chain("default/p", "Ingress")
    assert f"-A {chain} -d 10.244.0.3/32 -p tcp -m tcp --dport 8080 -m comment --comment \"default/p ingress[0]\" " \
           "-j MARK --set-xmark 0x10000/0x10000" in rules


def test_comments_cannot_break_out() -> None:
    bad = PolicyView((RuleView(1, 'ns/p" -j ACCEPT ingress[0]', "Ingress", (("10.244.0.3", "worker-1"),),
                               ("0.0.0.0/0",), (), "default/p"),), ("10.244.0.3",), (),
                     (Selection("default/p", "Ingress", ("10.244.0.3",)),))
    with pytest.raises(ValueError):
        felix.render(bad, "worker-1", "172.18.0.3", [WEB])
