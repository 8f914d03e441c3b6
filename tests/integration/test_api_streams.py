"""The API's streaming subresources of pods with the real kubectl: ``kubectl run -i/-t`` and
``kubectl attach`` (the streams the shim keeps for a container started with stdin or tty,
runtime/attach.py) and ``kubectl port-forward`` (SPDY in a WebSocket, api/portforward.py)."""
from __future__ import annotations

import fcntl
import json
import http.client
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cluster import KUBECONFIG, KUBECTL, k8semu, kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

READER = """apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: c
    image: busybox
    stdin: true
    command: [sh, -c, 'echo started; while read l; do echo got-$l; done']
"""


def gone(name: str) -> bool:
    return kubectl("get", "pod", name, "--ignore-not-found", "-o", "name").stdout == ""


def shim_fds(cluster) -> int:
    """How many descriptors the cluster's shim holds (it keeps the attach streams)."""
    manager = cluster.client.status()["pid"]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == manager and b"emulator.runtime.shim" in cmdline:
                return len(os.listdir(entry / "fd"))
    raise AssertionError("the shim is not running")


def reap(pid: int, timeout: float = 10) -> int:
    """kubectl's wait status once it has exited; killed (a failed test) if it has not by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, 9)
    return os.waitpid(pid, 0)[1]


def read_until(fd: int, token: bytes, timeout: float = 30) -> bytes:
    """What the terminal ``fd`` shows until ``token`` appears (or the deadline: then fail)."""
    out = b""
    deadline = time.monotonic() + timeout
    while token not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"{token!r} never came; the terminal showed {out!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: kubectl has exited
                data = b""
            assert data, f"kubectl ended before {token!r}; the terminal showed {out!r}"
            out += data
    return out


def test_run_i_rm_pipes_stdin_returns_the_exit_code_and_deletes_the_pod(cluster):
    done = subprocess.run([KUBECTL, "run", "-i", "--rm", "--restart=Never", "once", "--image=busybox", "--", "sh"],
                          input="echo hello-$((6*7))\nexit 3\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done
    assert "hello-42\n" in done.stdout and 'pod "once" deleted' in done.stdout
    poll(lambda: gone("once"), what="the pod to be gone")


def test_run_it_gives_a_terminal_of_the_clients_size(cluster):
    pid, fd = pty.fork()
    if pid == 0:  # kubectl on a terminal of 30 rows, 100 columns
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(KUBECTL, [KUBECTL, "run", "-it", "--rm", "term", "--image=busybox", "--", "sh"],
                  {**os.environ, "KUBECONFIG": str(KUBECONFIG)})
    try:
        read_until(fd, b"If you don't see a command prompt")
        # kubectl sends the terminal's size and the typed text on separate streams, in no set
        # order (a command may run before the resize arrives): the shell waits for a size first
        os.write(fd, b'while [ "$(stty size)" = "0 0" ]; do sleep 0.05; done; '
                     b"stty size; [ -t 0 ] && [ -t 1 ] && echo on-a-$((2*3))-tty\r")
        shown = read_until(fd, b"on-a-6-tty\r\n")
        assert b"30 100\r\n" in shown
        os.write(fd, b"exit\r")
        read_until(fd, b'pod "term" deleted')
    finally:
        status = reap(pid)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    # deleted: an interactive sh (restarted: restartPolicy Always) ignores SIGTERM, so the pod
    # stays Terminating for its grace period, as in Kubernetes
    shown = kubectl("get", "pod", "term", "--ignore-not-found", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout
    assert shown != "" or gone("term")


def test_attach_writes_stdin_reads_output_and_keeps_the_log(cluster):
    kubectl("apply", "-f", "-", input=READER)
    kubectl("wait", "--for=condition=Ready", "pod/reader", "--timeout=30s")
    before = shim_fds(cluster)
    for word in ("one", "two"):  # without stdinOnce, a client leaving does not close stdin
        attach = subprocess.Popen([KUBECTL, "attach", "-i", "reader"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            attach.stdin.write(f"{word}\n".encode())
            attach.stdin.flush()
            assert attach.stdout.readline() == f"got-{word}\n".encode()
        finally:
            attach.kill()
            attach.wait()
    poll(lambda: shim_fds(cluster) == before, what="the shim to let go of the clients that left")
    assert kubectl("logs", "reader").stdout == "started\ngot-one\ngot-two\n"
    assert kubectl("get", "pod", "reader", "-o", "jsonpath={.status.containerStatuses[0].restartCount}").stdout == "0"
    kubectl("delete", "pod", "reader", "--grace-period=0")


def test_attach_to_a_container_without_stdin_streams_its_output(cluster):
    kubectl("run", "ticker", "--image=busybox", "--", "sh", "-c",
            "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done")
    kubectl("wait", "--for=condition=Ready", "pod/ticker", "--timeout=30s")
    attach = subprocess.Popen([KUBECTL, "attach", "ticker"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first, second = attach.stdout.readline(), attach.stdout.readline()
    finally:
        attach.kill()
        attach.wait()
    assert first.startswith(b"tick-") and int(second[5:]) == int(first[5:]) + 1
    kubectl("delete", "pod", "ticker", "--grace-period=0")


WEB = """apiVersion: v1
kind: Pod
metadata: {name: pf-web, labels: {app: pf-web}}
spec:
  containers:
  - {name: web, image: nginx, ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: pf-web}
spec:
  selector: {app: pf-web}
  ports: [{port: 8080, targetPort: 80}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forward(target: str, ports: str) -> subprocess.Popen:
    """``kubectl port-forward`` started, once it says it forwards (its listener is up)."""
    proc = subprocess.Popen([KUBECTL, "port-forward", "--address", "127.0.0.1", target, ports],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("Forwarding from 127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return response.read().decode()


def test_port_forward_to_a_service_and_a_pod(cluster):
    kubectl("apply", "-f", "-", input=WEB)
    kubectl("wait", "--for=condition=Ready", "pod/pf-web", "--timeout=30s")
    for target, remote in (("svc/pf-web", 8080), ("pod/pf-web", 80)):
        local = free_port()
        proc = forward(target, f"{local}:{remote}")
        try:
            for _ in range(3):  # each connection is a new pair of streams in the same session
                assert "Welcome to nginx" in fetch(local)
        finally:
            proc.terminate()
            proc.wait(10)


def test_port_forward_to_a_closed_port_reports_the_kubelets_error(cluster):
    kubectl("apply", "-f", "-", input=WEB)
    kubectl("wait", "--for=condition=Ready", "pod/pf-web", "--timeout=30s")
    local = free_port()
    proc = forward("pod/pf-web", f"{local}:81")
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            fetch(local)
        _, err = proc.communicate(timeout=20)  # kubectl ends the session on a remote error, as with a kubelet
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "error forwarding port 81 to pod pf-web" in err and "connection refused" in err.lower()


RESTARTER = """apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: data, mountPath: /data}]
    command: [sh, -c, 'n=$(( $(cat /data/n 2>/dev/null || echo 0) + 1 )); echo $n > /data/n; echo "run $n";
              if [ $n -ge 2 ]; then exec sleep 3600; fi; sleep 2; exit 3']
"""


def test_logs_show_the_running_instance_and_previous_the_one_before(cluster):
    """The kubelet keeps a log per container instance: after a restart ``kubectl logs`` shows
    the new instance's output only and ``--previous`` the terminated one's; ``logs -f`` ends
    with the instance it follows (all of its output sent); ``-p`` of a container that never
    restarted is the kubelet's 400. (The emptyDir counts the runs: it outlives a restart.)"""
    kubectl("apply", "-f", "-", input=RESTARTER)
    poll(lambda: kubectl("logs", "restarter", check=False).stdout == "run 1\n", timeout=30, what="first run's log")
    never = kubectl("logs", "restarter", "--previous", check=False)
    assert never.returncode == 1 and never.stderr.strip() == (
        'Error from server (BadRequest): previous terminated container "c" in pod "restarter" not found')
    followed = kubectl("logs", "-f", "restarter", timeout=20)  # returns when run 1 ends (2 s)
    assert followed.stdout == "run 1\n"

    def restarted():
        pod = json.loads(kubectl("get", "pod", "restarter", "-o", "json").stdout)
        status = pod["status"]["containerStatuses"][0]
        return status["restartCount"] == 1 and kubectl("logs", "restarter").stdout == "run 2\n" and status

    status = poll(restarted, timeout=30, what="the second run")
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert kubectl("logs", "restarter", "-p").stdout == "run 1\n"
    assert kubectl("logs", "restarter", "--previous", "-c", "c", "--tail=1").stdout == "run 1\n"
    assert k8semu("logs", "restarter", "-p").stdout == "run 1\n"
    assert k8semu("logs", "restarter").stdout == "run 2\n"
    kubectl("delete", "pod", "restarter", "--grace-period=0")
