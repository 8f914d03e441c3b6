"""Taking a cluster down while clients still hold streams open on its API."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.cluster import KUBECONFIG, KUBECTL, Cluster, k8semu, poll

pytestmark = pytest.mark.requires_root


def test_down_with_watches_logs_and_exec_open_removes_everything():
    cluster = Cluster("topologies/default.yaml").up()
    context = ["--context", "k8semu-default"]
    streams = [subprocess.Popen([KUBECTL, *context, "get", "pods", "-A", "-w"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(5)]
    streams.append(subprocess.Popen([KUBECTL, *context, "logs", "-f", "client"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
    streams.append(subprocess.Popen([KUBECTL, *context, "exec", "client", "--", "sleep", "600"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        poll(lambda: cluster.exec("client", "pgrep", "-f", "sleep 600").returncode == 0, timeout=20,
             what="the exec's process in the pod")
    finally:
        cluster.down()
    assert "default" not in k8semu("clusters").stdout
    for proc in streams:
        assert proc.wait(timeout=30) is not None  # each client saw its stream end
    config = yaml.safe_load(KUBECONFIG.read_text()) or {}
    assert "k8semu-default" not in [c["name"] for c in config.get("contexts") or []]
