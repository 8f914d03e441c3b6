"""Teardown leaves nothing: after ``down``, and after ``kill -9`` of the manager + ``cleanup``,
the machine has the same namespaces, interfaces, OVS bridges, /etc/netns entries and
processes as before ``up``."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.runtime import ovs
from tests.cluster import ROOT, Cluster, k8semu, poll


def snapshot() -> dict[str, set]:
    def lines(*argv: str) -> set[str]:
        out = subprocess.run(argv, capture_output=True, text=True).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}
    procs = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline:  # kernel threads have none
                procs.add(int(pid))
    return {"netns": lines("ip", "netns", "list"), "links": set(os.listdir("/sys/class/net")),
            "bridges": {name for name, _ in ovs.bridges()},  # from the database file too when OVS is down
            "etc_netns": set(os.listdir("/etc/netns")) if os.path.isdir("/etc/netns") else set(),
            "procs": procs}


def live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


ROOT_NETNS = os.stat("/proc/self/ns/net").st_ino


def ours(pid: int) -> bool:
    """A process the emulation could have left: it lives in another network namespace (a pod's,
    a node's) or runs k8semu's own code (manager, controller, images). Other processes that start
    on the machine meanwhile are not ours to count."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino != ROOT_NETNS:
            return True
        return b"emulator" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def leftovers(before: dict[str, set]) -> dict[str, set]:
    after = snapshot()
    out = {k: after[k] - before[k] for k in before if k != "procs"}
    new = after["procs"] - before["procs"]
    out["procs"] = {f"{p}: {describe(p)}" for p in new if live(p) and p != os.getpid() and ours(p)}
    return {k: v for k, v in out.items() if v}


def describe(pid: int) -> str:
    """A leftover's command line and parent, so a failure says what was left."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        return f"{cmd} (parent {ppid})"
    except OSError:
        return "(gone)"


# every data plane (issues #13, #14); calico's and openflow's with kube-proxy beside it in make
# slow (make test's budget: the CNI DEL from libcni's cache after a crash is the same code as
# flannel's, with its own plugin; kube-proxy's rules live in the nodes' namespaces)
SPECS = pytest.mark.parametrize("spec", ["topologies/default.yaml", "topologies/flannel.yaml",
                                         pytest.param("topologies/calico.yaml", marks=pytest.mark.slow),
                                         pytest.param("topologies/services-kube-proxy.yaml", marks=pytest.mark.slow)],
                                ids=["openflow", "flannel", "calico", "openflow-kube-proxy"])


@SPECS
def test_down_leaves_nothing_behind(spec: str) -> None:
    before = snapshot()
    cluster = Cluster(spec).up()
    during = snapshot()
    assert {f"{cluster.name}_{n}" for n in ("control-plane", "worker-1", "worker-2")} <= during["netns"]
    if cluster.cni == "openflow":
        assert {cluster.bridge(n) for n in ("control-plane", "worker-1", "worker-2")} <= during["bridges"]
        assert len(during["procs"] - before["procs"]) >= 3 + 4 + 1  # node shells, pods, controller
    else:  # no switch, no controller: flannel.1 and cni0, or the cali veths, live in the nodes
        assert during["bridges"] == before["bridges"]
        assert len(during["procs"] - before["procs"]) >= 3 + 4 + (3 if cluster.cni == "calico" else 0)  # + BIRDs
    assert "frozen" in k8semu("fault", "stop", "coredns").stdout  # a stopped process would not act on SIGTERM: thawed first
    cluster.down()
    assert leftovers(before) == {}
    assert not cluster.run.exists()


@SPECS
def test_cleanup_after_kill_9_leaves_nothing_behind(spec: str) -> None:
    before = snapshot()
    Cluster(spec).up()
    assert "frozen" in k8semu("fault", "stop", "coredns").stdout  # cleanup ends frozen processes too
    status = k8semu("status").stdout
    pid = int(status.split("manager pid ")[1].split(",")[0])
    os.kill(pid, signal.SIGKILL)
    poll(lambda: not Path(f"/proc/{pid}").exists() or
         Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z", what="the manager to die")
    assert k8semu("down", check=False).returncode != 0  # no live manager: down says so
    done = k8semu("cleanup")
    assert "removed" in done.stdout
    if "flannel" in spec or "calico" in spec:  # the pods' networks released by the plugins, from libcni's cache
        assert re.search(r"CNI DEL run for [1-9]\d* pod network", done.stdout), done.stdout
        assert "CNI DEL:" not in done.stdout  # no DEL failed
    assert leftovers(before) == {}
    again = k8semu("cleanup")
    assert again.stdout.strip() == "nothing to clean up"


def test_sigterm_to_the_manager_tears_down() -> None:
    before = snapshot()
    Cluster("topologies/default.yaml").up()
    pid = int(k8semu("status").stdout.split("manager pid ")[1].split(",")[0])
    os.kill(pid, signal.SIGTERM)
    poll(lambda: not live(pid), timeout=30, what="the manager to tear down and exit")
    assert leftovers(before) == {}


def test_foreground_shell_runs_verbs_and_tears_down_on_eof_and_ctrl_c() -> None:
    before = snapshot()
    shell = subprocess.Popen(["k8semu", "up", "topologies/default.yaml"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    out, err = shell.communicate("get nodes\nclient hostname\n", timeout=120)
    assert shell.returncode == 0, err
    assert "worker-2" in out and "> client\n" in out and "cluster 'default' is down" in out
    assert leftovers(before) == {}

    shell = subprocess.Popen(["k8semu", "up", "topologies/default.yaml"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    poll(lambda: Path("/run/k8semu/default/ready").exists(), timeout=60, what="the cluster to be up")
    poll(lambda: "13/13 running" in k8semu("status", check=False).stdout, timeout=60,
         what="pods running (6 of the spec, 4 of kubeadm's control plane, 3 of the data plane's agent)")
    shell.send_signal(signal.SIGINT)
    out, err = shell.communicate(timeout=120)
    assert "is down" in out, (out, err)
    assert leftovers(before) == {}


def test_up_that_cannot_write_the_kubeconfig_leaves_no_cluster() -> None:
    """As kind: a cluster whose context cannot be merged into the user's kubeconfig is taken down,
    not left running for a later ``up`` to trip over."""
    before = snapshot()
    env = dict(os.environ, KUBECONFIG="/proc/k8semu-nowhere/config")  # no directory can be made there
    done = subprocess.run([sys.executable, "-m", "emulator", "up", "topologies/default.yaml", "--detach"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert done.returncode != 0
    assert "was taken down: its context could not be written into the kubeconfig" in done.stderr
    assert k8semu("clusters").stdout.strip() == "No clusters."
    assert leftovers(before) == {}
