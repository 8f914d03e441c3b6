"""kube-proxy's rules (emulator/kubeproxy) loaded by the kernel: both modes' output for kube-proxy's
own test Services goes into an empty network namespace made for the test (a free name, deleted
after; the machine's own tables are not touched), and reads back as a student would list it."""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from emulator.kubeproxy import iptables, nftables
from tests.unit.test_kubeproxy import NFT_OPTIONS, UPSTREAM_SERVICES, without_endpoint

pytestmark = pytest.mark.requires_root


@pytest.fixture
def netns():
    name = f"k8semu-test-kp-{uuid.uuid4().hex[:8]}"
    assert not os.path.exists(f"/run/netns/{name}")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def inside(netns: str, *argv: str, text: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], input=text, capture_output=True, text=True,
                          timeout=30)


def test_the_iptables_rules_load_and_read_back_as_kube_proxys(netns):
    rules = iptables.render(UPSTREAM_SERVICES, iptables.Options("test-node", "10.0.0.0/8"))
    done = inside(netns, "iptables-restore", "--noflush", text=rules)
    assert done.returncode == 0, done.stderr
    saved = inside(netns, "iptables-save", "-t", "nat").stdout
    assert "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" " \
           "-j KUBE-SEP-SXIVWICOYRO3J4NJ" in saved
    assert "--probability 0.50000000000" in saved  # iptables-save prints the statistic match's 11 digits
    for table, chain, rule in iptables.JUMPS:  # kube-proxy's jumps from the built-in chains take too
        done = inside(netns, "sh", "-c", f"iptables -t {table} -I {chain} {rule}")
        assert done.returncode == 0, (chain, rule, done.stderr)


def test_the_nftables_rules_load_and_read_back_as_kube_proxys(netns):
    done = inside(netns, "nft", "-f", "-", text=nftables.render(UPSTREAM_SERVICES, NFT_OPTIONS))
    assert done.returncode == 0, done.stderr
    listed = inside(netns, "nft", "list", "map", "ip", "kube-proxy", "service-ips").stdout
    assert "172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80" in listed
    chain = inside(netns, "nft", "list", "chain", "ip", "kube-proxy", "service-LAUZTJTB-ns4/svc4/tcp/p80").stdout
    assert "numgen random mod 2 vmap" in chain


def test_partial_syncs_load_on_top_of_a_full_one(netns):
    """One endpoint gone: each mode's partial sync loads onto the full rules, and the endpoint's
    chain is gone while the other Services' chains stay."""
    new = without_endpoint(UPSTREAM_SERVICES, 3, "10.180.0.5")
    opts = iptables.Options("test-node", "10.0.0.0/8")
    assert inside(netns, "iptables-restore", "--noflush", text=iptables.render(UPSTREAM_SERVICES, opts)).returncode == 0
    done = inside(netns, "iptables-restore", "--noflush", text=iptables.render_update(UPSTREAM_SERVICES, new, opts))
    assert done.returncode == 0, done.stderr
    saved = inside(netns, "iptables-save", "-t", "nat").stdout
    assert "KUBE-SEP-C6EBXVWJJZMIWKLZ" not in saved and ":KUBE-SVC-XPGD46QRK7WJZT7O" in saved
    assert inside(netns, "nft", "-f", "-", text=nftables.render(UPSTREAM_SERVICES, NFT_OPTIONS)).returncode == 0
    done = inside(netns, "nft", "-f", "-", text=nftables.update(UPSTREAM_SERVICES, new, NFT_OPTIONS))
    assert done.returncode == 0, done.stderr
    chains = inside(netns, "nft", "list", "chains", "ip").stdout
    assert "endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80" not in chains
    assert "numgen random mod 1 vmap" in inside(netns, "nft", "list", "chain", "ip", "kube-proxy",
                                                "service-LAUZTJTB-ns4/svc4/tcp/p80").stdout
