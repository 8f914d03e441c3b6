"""The teaching container for real (issue #15): built with podman from a debootstrapped Debian 12
base (no registry), run privileged as this machine needs, a lab's scenario passing inside it,
and the web view reached from the host on a port published on its loopback. Slow (the first
build installs everything: minutes): ``make slow``."""
from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.cluster import ROOT, poll

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "scripts" / "container.sh"
IMAGE = "localhost/k8semu:latest"


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {"CONTAINERS_CONF": str(ROOT / "scripts" / "container" / "containers.conf"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def image() -> str:
    done = subprocess.run(["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_lab_scenario_passes_inside_the_container(image: str) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "run", image, "scenario", "run", "scenarios/01-pod-network.yaml"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "1 passed, 0 failed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_the_web_view_is_reached_from_the_host_on_a_published_loopback_port(image: str) -> None:
    port, name = free_port(), f"k8semu-ui-test-{secrets.token_hex(4)}"
    assert podman("container", "exists", name).returncode != 0  # the name is free
    started = subprocess.run(["bash", str(SCRIPT), "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{port}",
                              image, "serve", "topologies/default.yaml", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        url = poll(lambda: (lambda m: m and m.group(1))(re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)",
                                                                  podman("logs", name).stdout)),
                   timeout=300, what="the web view's URL in the container's output")
        assert url.startswith(f"http://127.0.0.1:{port}/")
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and "k8semu" in page.read().decode()
        cookie = f"k8semu_ui={url.split('token=')[1]}"
        events = urllib.request.Request(f"http://127.0.0.1:{port}/events", headers={"Cookie": cookie})
        with urllib.request.urlopen(events, timeout=30) as stream:
            for raw in stream:
                line = raw.decode()
                if line.startswith("data: ") and '"svg"' in line:
                    assert json.loads(line[6:])["pods"] > 0
                    break
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)  # no token: refused
    finally:
        podman("stop", "-t", "30", name, timeout=90)  # by its name: ours, labelled io.k8semu=run
        podman("rm", "-f", "--ignore", name)
