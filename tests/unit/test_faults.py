"""Impairments and partitions as data (issue #16): quantities parsed as tc writes them, links
named as users name them, the spec section checked with the field named, the scenario steps,
and the tc/nft input that does them (golden files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import SpecError
from emulator.faults import render
from emulator.model.faults import (Impairment, LinkRef, Partition, format_rate, impairment, parse_duration, parse_link,
                                   parse_percent, parse_rate, partition)
from emulator.scenario.model import load_scenario
from emulator.spec.cluster import parse_cluster
from emulator.spec.loader import load_text

GOLDEN = Path("faults")
HOSTS = ["control-plane", "worker-1", "worker-2", "ext"]
MACS = {"control-plane": "0a:00:00:00:00:02", "worker-1": "0a:00:00:00:00:03", "worker-2": "0a:00:00:00:00:04",
        "ext": "0a:00:00:00:00:09"}


@pytest.mark.parametrize("text, bps", [("50Mbit", 50_000_000), ("50mbit", 50_000_000), ("50M", 50_000_000),
                                       ("500kbit", 500_000), ("1Gbit", 10**9), ("1.5Mbit", 1_500_000),
                                       (8000, 8000)])
def test_rates_are_read_as_tc_writes_them(text, bps) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["fast", "50 MB/s", "-1Mbit", "1bit", "200Gbit", True, None])
def test_a_rate_that_is_not_one_is_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_percentages_durations_and_the_rate_shown_back() -> None:
    assert (parse_percent("10%"), parse_percent(0.5), parse_percent("100")) == (10.0, 0.5, 100.0)
    for bad in ("0%", "101%", "ten", True):
        with pytest.raises(ValueError):
            parse_percent(bad)
    assert (parse_duration("100ms"), parse_duration("1s"), parse_duration("500us")) == (100.0, 1000.0, 0.5)
    for bad in ("100", 100, "2min", "61s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert (format_rate(50_000_000), format_rate(1_500_000), format_rate(10**9)) == ("50Mbit", "1500kbit", "1Gbit")


def test_links_are_named_as_users_name_them() -> None:
    assert parse_link("node/worker-1") == LinkRef("node", "worker-1")
    assert parse_link("external/ext") == LinkRef("external", "ext")
    assert parse_link("pod/web-1", "shop") == LinkRef("pod", "web-1", "shop")
    assert parse_link("pod/kube-system/coredns-x") == LinkRef("pod", "coredns-x", "kube-system")
    assert parse_link("worker-1") == LinkRef("", "worker-1")  # a node or external host: the cluster says which
    assert str(LinkRef("pod", "web-1", "shop")) == "pod/shop/web-1"
    for bad in ("svc/web", "node/Worker", "node/a/b", "pod/a/b/c", "", "node/$(reboot)", "pod/ns/a;b"):
        with pytest.raises(ValueError):
            parse_link(bad)


def test_an_impairment_holds_what_was_asked_and_refuses_the_rest() -> None:
    imp = impairment(LinkRef("node", "w"), {"bandwidth": "50Mbit", "loss": "10%", "mtu": 1400})
    assert (imp.bandwidth, imp.loss, imp.mtu, imp.needs_netem) == (50_000_000, 10.0, 1400, False)
    assert imp.describe() == "bandwidth 50Mbit, loss 10%, mtu 1400"
    assert impairment(LinkRef("node", "w"), {"delay": "100ms", "jitter": "10ms"}).needs_netem
    for values, word in (({}, "nothing to impair"), ({"speed": "1M"}, "speed: unknown"),
                         ({"jitter": "1ms"}, "jitter: needs a delay"), ({"mtu": 100}, "mtu: 100 is outside"),
                         ({"loss": "x"}, "loss:")):
        with pytest.raises(ValueError, match=word):
            impairment(LinkRef("node", "w"), values)


def test_a_partition_names_two_disjoint_sets_of_hosts() -> None:
    part = partition("split", "worker-1", ["worker-2", "ext"], False, HOSTS)
    assert (part.a, part.b, part.describe()) == (("worker-1",), ("worker-2", "ext"), "worker-1 <-> worker-2,ext dropped")
    for args, word in ((("Split", ["worker-1"], ["worker-2"]), "name"), (("s", [], ["worker-2"]), "from"),
                       (("s", ["worker-1"], ["nope"]), "not a node"), (("s", ["worker-1"], ["worker-1"]), "both sides")):
        with pytest.raises(ValueError, match=word):
            partition(*args, False, HOSTS)


def test_tc_commands_for_bandwidth_and_netem() -> None:
    imp = Impairment(LinkRef("node", "w"), bandwidth=50_000_000)
    assert render.qdisc_argv("eth0", imp) == [["tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "tbf",
                                               "rate", "50000000bit", "burst", "62500", "latency", "50ms"]]
    assert render.tbf_burst(10_000) == 4096  # never below a frame
    both = Impairment(LinkRef("node", "w"), bandwidth=10_000_000, delay=100.0, jitter=10.0, duplicate=1.0)
    assert render.qdisc_argv("k8s0u1", both) == [
        ["tc", "qdisc", "replace", "dev", "k8s0u1", "root", "handle", "1:", "netem", "delay", "100ms", "10ms",
         "duplicate", "1%"],
        ["tc", "qdisc", "replace", "dev", "k8s0u1", "parent", "1:1", "handle", "10:", "tbf", "rate", "10000000bit",
         "burst", "12500", "latency", "50ms"]]
    assert render.qdisc_argv("eth0", Impairment(LinkRef("node", "w"), loss=5.0)) == []  # loss is nft's
    assert render.clear_argv("eth0") == ["tc", "qdisc", "del", "dev", "eth0", "root"]


def test_a_nodes_table_for_loss_and_partitions(golden) -> None:
    rules = render.Rules()
    render.add_loss(rules, Impairment(LinkRef("node", "worker-1"), loss=12.5))
    render.add_partition(rules, Partition("split", ("worker-1",), ("worker-2", "ext")), "worker-1", MACS)
    render.add_partition(rules, Partition("one-way", ("control-plane",), ("worker-1",), True), "worker-1", MACS)
    golden(str(GOLDEN / "worker-1.nft"), render.nft_script(rules))
    # the sending side of a one-way partition drops on egress only, the receiving side on ingress only
    sender = render.Rules()
    render.add_partition(sender, Partition("one-way", ("control-plane",), ("worker-1",), True), "control-plane", MACS)
    assert (len(sender.ingress), len(sender.egress)) == (0, 1)


def test_no_rules_removes_the_table() -> None:
    assert render.nft_script(render.Rules()) == "table netdev k8semu_faults\ndelete table netdev k8semu_faults\n"


def test_the_renderer_checks_what_reaches_nft_again() -> None:
    with pytest.raises(ValueError):
        render.add_partition(render.Rules(), Partition("s", ("a",), ("b",)), "a", {"b": 'x" drop; add'})
    with pytest.raises(ValueError):
        render.add_partition(render.Rules(), Partition('s"; flush ruleset', ("a",), ("b",)), "a", {"b": MACS["ext"]})
    with pytest.raises(ValueError):
        render.nft_script(render.Rules(ingress=["drop"]), dev='eth0" ; x')


SPEC = """
apiVersion: k8semu.io/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  nodes: [{name: control-plane, role: control-plane}, {name: worker, count: 2}]
  externalHosts: [{name: ext}]
  impairments:
%s
"""


def spec(entries: str):
    return parse_cluster(load_text(SPEC % entries, "cluster.yaml")[0])


def test_the_spec_declares_impaired_links_and_partitions() -> None:
    cfg = spec("""  - {link: worker-1, bandwidth: 50Mbit, loss: 10%}
  - {link: external/ext, mtu: 1400}
  - partition: {name: split, from: [worker-1], to: [worker-2], oneWay: true}""")
    assert [(str(i.link), i.describe()) for i in cfg.impairments] == [
        ("node/worker-1", "bandwidth 50Mbit, loss 10%"), ("external/ext", "mtu 1400")]
    assert cfg.partitions == (Partition("split", ("worker-1",), ("worker-2",), True),)


@pytest.mark.parametrize("entry, where, word", [
    ("  - {link: worker-9, loss: 1%}", "spec.impairments[0].link", "not a node or external host"),
    ("  - {link: pod/web, loss: 1%}", "spec.impairments[0].link", "impair it live"),
    ("  - {link: worker-1, loss: 300%}", "spec.impairments[0].loss", "outside"),
    ("  - {link: worker-1, speed: 1M}", "spec.impairments[0]", "speed"),
    ("  - {link: worker-1}", "spec.impairments[0]", "nothing to impair"),
    ("  - {link: worker-1, loss: 1%}\n  - {link: node/worker-1, mtu: 1400}", "spec.impairments[1].link", "twice"),
    ("  - partition: {from: [worker-1], to: [worker-1]}", "spec.impairments[0].partition", "both sides"),
    ("  - partition: {from: [worker-1], to: [nope]}", "spec.impairments[0].partition.to", "not a node"),
    ("  - {partition: {from: [worker-1], to: [worker-2]}, link: worker-1}", "spec.impairments[0]", "either"),
])
def test_a_bad_impairment_is_refused_with_its_field(entry, where, word) -> None:
    with pytest.raises(SpecError) as info:
        spec(entry)
    text = str(info.value)
    assert where in text and word in text, text


def test_scenario_steps_are_checked_before_anything_runs(tmp_path) -> None:
    cluster = Path(__file__).resolve().parents[2] / "topologies" / "default.yaml"
    good = tmp_path / "good.yaml"
    good.write_text(f"""cluster: {cluster}
steps:
  - {{name: slow, impair: {{link: node/worker-1, bandwidth: 50Mbit, loss: 10%}}}}
  - {{name: split, partition: {{name: split, from: [worker-1], to: [worker-2]}}}}
  - {{name: mend, heal: {{partition: split}}}}
  - {{name: all, heal: {{all: true}}}}
""")
    assert [s.kind for s in load_scenario(good).steps] == ["impair", "partition", "heal", "heal"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""cluster: {cluster}
steps:
  - {{name: slow, impair: {{link: node/worker-1, bandwidth: fast}}}}
  - {{name: split, partition: {{name: split, from: worker-1}}}}
  - {{name: mend, heal: {{partition: split, all: true}}}}
""")
    with pytest.raises(SpecError) as info:
        load_scenario(bad)
    text = str(info.value)
    assert "bandwidth: 'fast' is not a rate" in text and "steps[1].partition.to" in text and "heal one thing" in text


def test_time_scale_is_a_fraction() -> None:
    text = SPEC.replace("  impairments:\n%s\n", "  timeScale: %s\n")
    assert parse_cluster(load_text(text % "0.1", "c.yaml")[0]).time_scale == 0.1
    assert parse_cluster(load_text(text.replace("  timeScale: %s\n", ""), "c.yaml")[0]).time_scale == 1.0
    for bad in ("2", "0", "fast", "true"):
        with pytest.raises(SpecError, match="spec.timeScale"):
            parse_cluster(load_text(text % bad, "c.yaml")[0])
