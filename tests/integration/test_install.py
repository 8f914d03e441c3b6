"""The install step the Dockerfile and make share: it runs (idempotently) and leaves a working
k8semu command. There is no Docker engine here, so this is how the image's build is checked."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_install_step_is_idempotent_and_installs_k8semu() -> None:
    done = subprocess.run(["bash", "scripts/install.sh"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "ready (/usr/local/bin/k8semu)" in done.stdout
    version = subprocess.run(["k8semu", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("k8semu ")
    for tool in ("ovs-vswitchd", "mnexec", "nginx", "dig", "iperf3", "tcpdump", "iptables-restore", "arping"):
        assert subprocess.run(["which", tool], capture_output=True).returncode == 0, tool
    assert subprocess.run(["k8semu", "ovs"], capture_output=True, text=True).stdout.startswith("Open vSwitch is running")
