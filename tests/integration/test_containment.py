"""Containment of what runs as root (issue #10), on a live cluster: name clashes never cost the
other owner its object, one bad object fails alone, the controller heals and no other user can
take its channel, pods are contained like containers, nothing of the emulation reaches the
machine (IPv6 included), and global Open vSwitch settings come back as they were."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from emulator.model import naming
from tests.cluster import Cluster, k8semu, module_cluster, poll

contained = module_cluster("topologies/default.yaml")


def pod_sh(cluster: Cluster, pod: str, script: str) -> subprocess.CompletedProcess:
    return cluster.exec(pod, "sh", "-c", script)


def as_nobody(code: str) -> str:
    return subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3",
                           "-c", code], capture_output=True, text=True, cwd="/").stdout.strip()


# -- pods are containers ----------------------------------------------------------------------
def test_a_pod_sees_only_its_own_processes_and_cannot_enter_other_namespaces(contained: Cluster) -> None:
    manager = contained.client.status()["pid"]
    assert int(pod_sh(contained, "client", "ls /proc | grep -c '^[0-9]'").stdout) < 10  # no host process
    assert "No such process" in pod_sh(contained, "client", f"kill -0 {manager} 2>&1").stdout
    assert pod_sh(contained, "client", "tr '\\0' ' ' < /proc/1/cmdline").stdout.startswith("/usr/bin/catatonit -P")
    for attempt in ("nsenter --net=/proc/1/ns/net true", "unshare -m true", "mount -t tmpfs x /mnt"):
        done = pod_sh(contained, "client", attempt + " 2>&1")
        assert done.returncode != 0 and ("not permitted" in done.stdout or "denied" in done.stdout), done.stdout
    status = dict(line.split(":\t") for line in pod_sh(contained, "client", "grep -E '^(NoNewPrivs|CapBnd)' "
                                                                                "/proc/self/status").stdout.splitlines())
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapBnd"], 16) & (1 << 21) == 0  # no CAP_SYS_ADMIN
    assert int(status["CapBnd"], 16) & (1 << 12) == 0  # no CAP_NET_ADMIN unless asked for


def test_a_pod_sees_the_machine_read_only_without_its_secrets_sockets_or_disks(contained: Cluster) -> None:
    out = pod_sh(contained, "client", "wc -c < /etc/shadow; touch /etc/x 2>&1; touch /usr/x 2>&1; ls /run; "
                                      "ls /var/run/openvswitch 2>&1; ls /run/netns 2>&1; ls /home /root | wc -l; "
                                      "ls /dev; ls /sys/fs/cgroup | wc -l; touch /tmp/ok && echo tmp-writable").stdout
    lines = out.splitlines()
    assert lines[0] == "0"
    assert "Read-only file system" in lines[1] and "Read-only file system" in lines[2]
    assert "k8semu" in out and "No such file or directory" in out  # no OVS socket folder, no netns files
    assert "vda" not in out and "sda" not in out and "null" in out
    assert "tmp-writable" in out
    assert not Path("/tmp/ok").exists()  # the pod's /tmp is its own


def test_net_admin_only_when_asked_and_privileged_pods_refused(contained: Cluster) -> None:
    contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: netadmin}\nspec:\n  containers:\n"
                    "  - {name: c, image: busybox, securityContext: {capabilities: {add: [NET_ADMIN]}}}\n")
    contained.wait_running()
    assert contained.exec("netadmin", "ip", "link", "set", "lo", "mtu", "1400").returncode == 0
    assert contained.exec("client", "ip", "link", "set", "lo", "mtu", "1400").returncode != 0
    refused = k8semu("--cluster", contained.name, "apply", "-f", "-", check=False, input=(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec:\n  containers:\n"
        "  - {name: c, image: busybox, securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}}\n"))
    assert refused.returncode == 3
    assert "privileged containers are not allowed" in refused.stderr and "adding SYS_ADMIN is not allowed" in refused.stderr
    k8semu("--cluster", contained.name, "delete", "pod", "netadmin")


def test_a_memory_limit_oom_kills_and_counts_the_restart(contained: Cluster) -> None:
    contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: hog}\nspec:\n  containers:\n"
                    "  - name: hog\n    image: python\n    command: [python3, -c, 'x = bytearray(300 << 20); import time; "
                    "time.sleep(60)']\n    resources: {limits: {memory: 64Mi}}\n")

    def oom():
        cs = contained.pod("hog")["status"]["containerStatuses"][0]
        last = cs.get("lastState", {}).get("terminated", {}) or cs["state"].get("terminated", {})
        return cs if last.get("reason") == "OOMKilled" and cs["restartCount"] >= 1 else None
    cs = poll(oom, timeout=30, what="the hog to be OOM-killed and restarted")
    last = cs.get("lastState", {}).get("terminated") or cs["state"]["terminated"]
    assert last["exitCode"] == 137
    events = k8semu("--cluster", contained.name, "describe", "pod", "hog").stdout
    assert "OOMKilled" in events
    k8semu("--cluster", contained.name, "delete", "pod", "hog")


def test_a_pod_that_cannot_start_fails_alone(contained: Cluster) -> None:
    long = "d" * 253
    contained.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: nulcmd}\nspec:\n"
        '  containers: [{name: c, image: busybox, command: ["sleep\\0x", "100"]}]\n---\n'
        "apiVersion: v1\nkind: Pod\nmetadata: {name: worker-1}\nspec:\n  containers: [{name: c, image: busybox}]\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ndots}\nspec:\n  dnsConfig: {options: [{name: ndots}]}\n"
        "  containers: [{name: c, image: busybox}]\n---\n"
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {long}}}\nspec:\n  selector: {{matchLabels: {{a: b}}}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: busybox}]}\n")
    poll(lambda: contained.pod("nulcmd")["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
         == "CreateContainerError", timeout=15, what="nulcmd to fail to start")
    for name in ("worker-1", "ndots", "client"):
        poll(lambda: contained.pod(name)["status"]["phase"] == "Running", timeout=15, what=f"{name} running")
    assert "options ndots" in contained.exec("ndots", "cat", "/etc/resolv.conf").stdout
    events = k8semu("--cluster", contained.name, "get", "events").stdout
    assert "embedded null" in events and "FailedCreate" in events
    contained.synced()
    for name in ("nulcmd", "worker-1", "ndots"):
        k8semu("--cluster", contained.name, "delete", "pod", name)
    k8semu("--cluster", contained.name, "delete", "deployment", long)


def test_a_pod_whose_interface_name_is_taken_fails_alone_and_the_owner_keeps_it(contained: Cluster) -> None:
    slot = contained.client.status()["slot"]
    name = naming.pod_port(naming.Scope(contained.name, slot), "default", "squatted")
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)  # someone else's
    try:
        contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: squatted}\nspec:\n"
                        "  containers: [{name: c, image: busybox}]\n")
        poll(lambda: f"interface {name} exists" in k8semu("--cluster", contained.name, "get", "events").stdout,
             timeout=15, what="the clash reported as the pod's event")
        assert contained.pod("squatted")["status"]["phase"] == "Pending"
        assert Path(f"/sys/class/net/{name}").exists() and not Path(f"/sys/class/net/{name}/ifalias").read_text().strip()
        assert "squatted" not in " ".join(os.listdir("/run/netns"))  # the failed sandbox left nothing
        contained.synced()
        assert contained.exec("client", "true").returncode == 0
    finally:
        k8semu("--cluster", contained.name, "delete", "pod", "squatted", check=False)
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_no_pod_holds_the_network_namespace_files_of_others(contained: Cluster) -> None:
    """Pods are copied from a mount namespace without /run/netns: deleting a pod frees its
    namespace at once, and a pod's mount table does not grow with the number of pods."""
    mounts = contained.exec("client", "cat", "/proc/self/mountinfo").stdout
    assert "/run/netns" not in mounts and "nsfs" not in mounts
    assert len(mounts.splitlines()) < 80


def test_a_pod_that_ignores_sigterm_costs_its_grace_period_not_the_clusters(contained: Cluster) -> None:
    contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: stubborn}\nspec:\n  terminationGracePeriodSeconds: 3\n"
                    "  containers: [{name: c, image: busybox, command: [sh, -c, 'trap \"\" TERM; while :; do sleep 1; done']}]\n")
    poll(lambda: contained.pod("stubborn")["status"]["phase"] == "Running", timeout=15, what="stubborn running")
    start = time.monotonic()
    k8semu("--cluster", contained.name, "delete", "pod", "stubborn", "--wait=false")
    listing = k8semu("--cluster", contained.name, "get", "pods").stdout
    assert "Terminating" in [line.split()[2] for line in listing.splitlines() if line.startswith("stubborn")]
    calls = []
    while any(p["metadata"]["name"] == "stubborn" for p in contained.get("pods")):
        t = time.monotonic()
        contained.client.status()
        calls.append(time.monotonic() - t)
        assert time.monotonic() - start < 15, "still there long after its grace period"
        time.sleep(0.1)
    assert 2.5 < time.monotonic() - start  # SIGTERM was ignored: SIGKILL after the grace period
    assert max(calls) < 0.5, f"the manager stalled while the pod terminated: {max(calls):.2f}s"
    contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: quick}\nspec:\n  containers: [{name: c, image: busybox}]\n")
    poll(lambda: contained.pod("quick")["status"]["phase"] == "Running", timeout=15, what="quick running")
    start = time.monotonic()
    k8semu("--cluster", contained.name, "delete", "pod", "quick")  # waits, as kubectl does
    assert time.monotonic() - start < 2.5 and not any(p["metadata"]["name"] == "quick" for p in contained.get("pods"))


# -- the controller ---------------------------------------------------------------------------
def test_a_killed_controller_is_restarted_and_a_new_pod_is_reachable(contained: Cluster) -> None:
    records = json.loads((contained.run / "records.json").read_text())
    pid = next(p[0] for p in records["processes"] if p[2] == "controller")
    os.kill(pid, signal.SIGKILL)
    contained.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: late, labels: {app: late}}\nspec:\n"
                    "  containers: [{name: c, image: nginx}]\n")
    contained.wait_running(timeout=30)
    ip = contained.pod("late")["status"]["podIP"]
    assert contained.curl("client", f"http://{ip}/").returncode == 0
    helpers = contained.client.status()["helpers"]["controller"]
    assert helpers["running"] and helpers["restarts"] >= 1
    k8semu("--cluster", contained.name, "delete", "pod", "late")


def test_no_other_user_can_reach_or_replace_the_controller(contained: Cluster) -> None:
    target = subprocess.run(["ovs-vsctl", "get-controller", contained.bridge("worker-1")], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert target.startswith("unix:/var/run/openvswitch/k8semu-")
    path = target.removeprefix("unix:")
    assert oct(os.stat(path).st_mode & 0o777) == "0o700" or os.stat(path).st_mode & 0o077 == 0
    code = (f"import socket\nfor op in ('connect', 'bind'):\n    s = socket.socket(socket.AF_UNIX)\n"
            f"    try:\n        getattr(s, op)({path!r} if op == 'connect' else '/var/run/openvswitch/evil.ofp')\n"
            f"        print(op, 'ok')\n    except OSError as e:\n        print(op, e.errno)\n")
    assert as_nobody(code).split("\n") == ["connect 13", "bind 13"]
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    assert "python" not in listening or "emulator.controller" not in listening


# -- one object, one failure ------------------------------------------------------------------
def test_an_allow_all_rule_beside_a_port_rule_keeps_every_switch_in_sync(contained: Cluster) -> None:
    contained.apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: all}\nspec:\n"
                    "  podSelector: {matchLabels: {app: web}}\n  ingress: [{}]\n---\n"
                    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: port}\nspec:\n"
                    "  podSelector: {matchLabels: {app: web}}\n  ingress: [{ports: [{port: 80}]}]\n")
    contained.synced()
    web = contained.get("pods", "default", "app=web")[0]["status"]["podIP"]
    assert contained.curl("client", f"http://{web}/").returncode == 0
    assert not contained.client.events("default") or not any(
        e["reason"] == "FailedToProgram" for e in contained.client.events("default"))
    for name in ("all", "port"):
        k8semu("--cluster", contained.name, "delete", "networkpolicy", name)


@pytest.mark.parametrize("manifest,message", [
    ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: leak}\nspec:\n  rules:\n  - http:\n"
     "      paths: [{path: '/leak { alias /etc/; autoindex on; } location /z', pathType: ImplementationSpecific,\n"
     "               backend: {service: {name: web, port: {number: 80}}}}]\n", "spec.rules[0].http.paths[0].path"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: dns}\nspec:\n  dnsConfig: {options: [{name: \"ndots:1\\nnameserver 6.6.6.6\"}]}\n"
     "  containers: [{name: c, image: busybox}]\n", "spec.dnsConfig.options[0].name"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: alias}\nspec:\n  hostAliases: [{ip: 10.1.1.1, hostnames: [\"a\\n6.6.6.6 b\"]}]\n"
     "  containers: [{name: c, image: busybox}]\n", "spec.hostAliases[0].hostnames[0]"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: env}\nspec:\n  containers: [{name: c, image: busybox, env: [{name: A=B}]}]\n",
     "spec.containers[0].env[0].name"),
])
def test_a_hostile_value_is_refused_before_it_reaches_a_file(contained: Cluster, manifest: str, message: str) -> None:
    done = k8semu("--cluster", contained.name, "apply", "-f", "-", check=False, input=manifest)
    assert done.returncode == 3 and message in done.stderr, done.stderr


def test_hostile_cluster_values_are_refused_by_plan(tmp_path: Path) -> None:
    spec = ("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: h}\nspec:\n  nodes: [{name: n}]\n"
            "  network: {clusterDomain: \"cluster.local\\nnameserver 6.6.6.6\"}\n"
            "  externalHosts: [{name: up, dns: {records: {\"x.com\\n}\\n. {\\n forward . 6.6.6.6\": 1.2.3.4}}}]\n")
    (tmp_path / "c.yaml").write_text(spec)
    done = k8semu("plan", str(tmp_path / "c.yaml"), check=False)
    assert done.returncode == 3
    assert "spec.network.clusterDomain" in done.stderr and "is not a valid DNS name" in done.stderr
