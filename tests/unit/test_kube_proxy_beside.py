"""kube-proxy beside the OpenFlow controller (``cni: openflow`` with ``kubeProxy.mode``, issue
#13), as Antrea runs with kube-proxy: the spec accepts it, kube-proxy's objects are there
beside the agent's, the node keeps only the CNI's chains of k8semu's own (no NodePort NAT of the
controller's, nothing flushed that kube-proxy wrote), and ``plan`` prints both."""
from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from emulator.cli import plan
from emulator.cli.plan import simulate
from emulator.cluster import nodedaemons
from emulator.cluster.admit import admit_cluster
from emulator.cluster.dataplane import network_view
from emulator.pipeline import hostrules

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
SPEC = TOPOLOGIES / "services-kube-proxy.yaml"


def test_openflow_with_a_kube_proxy_mode_runs_both() -> None:
    cfg = admit_cluster(SPEC)
    assert (cfg.cni, cfg.kube_proxy, cfg.kernel_dataplane, cfg.openflow_with_kube_proxy) == \
        ("openflow", "iptables", False, True)
    assert not admit_cluster(TOPOLOGIES / "services.yaml").openflow_with_kube_proxy


def test_kube_proxys_daemonset_is_there_beside_the_openflow_agent() -> None:
    names = [(type(o).__name__, o.meta.name) for o in nodedaemons.node_daemons(admit_cluster(SPEC))]
    assert names[:2] == [("ConfigMap", "kube-proxy"), ("DaemonSet", "kube-proxy")]
    plain = [o.meta.name for o in nodedaemons.node_daemons(admit_cluster(TOPOLOGIES / "services.yaml"))]
    assert "kube-proxy" not in plain and set(plain) <= {n for _, n in names}


def test_the_cni_part_alone_is_written_without_flushing_and_golden(golden) -> None:
    """No K8SEMU-SERVICES (kube-proxy's NodePort, load-balancer and external-IP chains do that
    part), no ``*filter``, no built-in chain declared (``--noflush`` would keep kube-proxy's
    jumps only if none is); the hostPorts and masquerades as without kube-proxy."""
    view = network_view(simulate(str(SPEC), seed=0))
    pods = tuple(replace(p, host_ports=(("TCP", "", 8080, 80),)) if p.name.startswith("web") else p for p in view.pods)
    view = replace(view, pods=pods)
    node = view.node("worker-1")
    text = hostrules.cni_nat(view, node, "10.244.0.0/16")
    golden("configs/iptables-nat.cni-beside-kube-proxy", text)
    assert "K8SEMU-SERVICES" not in text and "*filter" not in text
    assert not any(line.startswith((":PREROUTING", ":OUTPUT", ":POSTROUTING")) for line in text.splitlines())
    whole = hostrules.iptables_nat(view, node, "10.244.0.0/16")
    shared = [line for line in text.splitlines() if line.startswith("-A ")]
    assert shared and all(line in whole.splitlines() for line in shared)  # the same rules as without kube-proxy
    assert hostrules.CNI_JUMPS.count("-A ") == 3 and "*nat" in hostrules.CNI_JUMPS


def test_plan_prints_the_tables_and_each_nodes_kube_proxy_rules() -> None:
    out = io.StringIO()
    assert plan.plan(str(SPEC), "flows", out) == 0
    text = out.getvalue()
    assert "# node worker-1: bridge" in text and "# node worker-1: kube-proxy (iptables)" in text
    assert "-A KUBE-SERVICES" in text and "table=ServiceLB" in text
    summary = io.StringIO()
    assert plan.plan(str(SPEC), "", summary) == 0
    assert "cni openflow, kube-proxy iptables beside the controller" in summary.getvalue()
