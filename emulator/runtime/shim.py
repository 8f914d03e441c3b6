"""The shim: one small single-threaded process per cluster that creates pod sandboxes and starts
container processes, like containerd's shim or podman's conmon.

    python -m emulator.runtime.shim FD      (started by the manager; FD is its end of a socketpair)

Why a process of its own: a sandbox is made of system calls between fork and exec (unshare,
mount, setns, capability drops), and the manager is multi-threaded, where forking and running
Python before exec can deadlock. The shim is single-threaded, so it forks freely; it is also a
child subreaper, so every pod's PID 1 and every container process ends up as its child and their
exit statuses reach the kubelet.

A sandbox: a fork unshares the network, UTS and IPC namespaces, binds its network namespace at
/run/netns/<name> (the file created with O_EXCL: an existing name is refused, never reused),
sets the hostname and the network sysctls (no IPv6), then unshares mount and PID namespaces and
forks the pod's PID 1, which builds the pod's filesystem (``podfs``) and execs catatonit (a
pause process that reaps zombies). A container: a fork joins its cgroups, enters the pause's
namespaces and forks the process, which drops to the container's capabilities with
no_new_privs, changes user if asked, and execs the argv: never a shell.

A container with stdin or tty gets its streams from the shim (runtime/attach.py: pipes or a
pseudo-terminal, its log written by the shim, a socket for ``kubectl attach``); the select loop
serves them between requests and never waits on an attached client.

Protocol: JSON lines on the socket. Requests ``{"id", "op": "sandboxes"|"start", "items": [...]}``
get ``{"id", "results": [{"pid", "start", ...} | {"error"}]}``; every reaped child is reported as
``{"event": "exit", "pid", "status"}`` (status as ``subprocess`` returncode: -9 for SIGKILL).
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import traceback

from emulator.runtime import linux, netconf, podfs
from emulator.runtime.attach import Streams
from emulator.runtime.rtnl import Rtnl

NETNS_DIR = "/run/netns"
STREAMS = Streams()  # the attachable containers' streams (``attach``)
NS_ORDER = ("ipc", "uts", "net", "pid", "mnt")  # mnt last: after it, host paths are gone


def start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _child(report: int, work) -> None:
    """Run ``work`` in a forked child; send what it returns (or the error) on ``report``; exit."""
    try:
        result = work()
        data = json.dumps(result).encode()
    except BaseException as exc:  # noqa: B902 - everything becomes the request's error
        data = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
    try:
        os.write(report, data)
    finally:
        os._exit(0)


PARALLEL = (os.cpu_count() or 1) + 2  # helpers at work at once: the kernel's parts serialize, the rest not


def _parse(data: bytes) -> dict:
    try:
        return json.loads(data or b'{"error": "the helper process died"}')
    except ValueError:
        return {"error": "the helper process sent a bad report"}


def run_all(works: list) -> list[dict]:
    """Run each ``work`` in a forked helper, up to PARALLEL at once, and return their reports in
    order (a dict in place of a work is an answer already); a report with a ``pid`` gets that
    process's start time (read here: the helper's /proc may be a pod's)."""
    results: list[dict] = [{} for _ in works]
    todo = list(enumerate(works))[::-1]
    running: dict[int, tuple[int, int, list[bytes]]] = {}  # pipe fd -> (index, helper pid, chunks)
    while todo or running:
        while todo and len(running) < PARALLEL:
            index, work = todo.pop()
            if isinstance(work, dict):
                results[index] = work
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _child(w, work)
            os.close(w)
            running[r] = (index, pid, [])
        if not running:
            continue
        ready, _, _ = select.select(list(running), [], [])
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                running[fd][2].append(chunk)
                continue
            index, pid, chunks = running.pop(fd)
            os.close(fd)
            os.waitpid(pid, 0)
            results[index] = report = _parse(b"".join(chunks))
            if "pid" in report:
                report["start"] = start_time(report["pid"])
    return results


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


TEMPLATE: dict[str, int] = {}  # "mnt" -> fd of the mount namespace pods are copied from


def make_template() -> int | None:
    """A mount namespace to copy pods' from: the machine's mounts, private (nothing propagates
    into pods, nothing out), without /run/netns's namespace files. Copying the machine's own
    namespace instead would copy every pod's and node's netns mount (a copy per pod per pod, and
    each copy keeps its namespace alive). Held by an fd once its maker exits; None if the kernel
    refuses (pods then copy the machine's namespace, as before)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(done_w)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            try:
                linux.umount(NETNS_DIR, linux.MNT_DETACH)
            except OSError:
                pass  # not a mount point: no namespace files are mounted under it either
            os.write(ready_w, b"ok")
        except BaseException:  # noqa: B902 - no template: say so by silence
            pass
        finally:
            os.read(done_r, 1)
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    ok = os.read(ready_r, 16) == b"ok"
    os.close(ready_r)
    fd = None
    if ok:
        try:
            fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
    os.close(done_w)
    os.waitpid(pid, 0)
    return fd


def make_sandbox(item: dict):
    """The work of a helper that makes the pod's namespaces, its network interface and its PID 1;
    it reports {"pid", "netns_ino"}."""
    netns = os.path.join(NETNS_DIR, item["netns"])

    def work() -> dict:
        for procs in item.get("cgroups", ()):  # the pod's cgroups: its PID 1 and everything after
            _write(procs, str(os.getpid()))
        if item.get("join_netns"):  # hostNetwork: the node's namespace, which is the node's to keep
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, linux.CLONE_NEWNET)
                ino = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            linux.unshare(linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
            linux.sethostname(item["hostname"])
            return _pause(item, {"netns_ino": ino})
        root_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        root_nl = Rtnl() if item.get("link") else None  # bound to the root namespace
        linux.unshare(linux.CLONE_NEWNET | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
        fd = os.open(netns, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)  # refuses a taken name
        os.close(fd)
        try:
            linux.mount("/proc/self/ns/net", netns, None, linux.MS_BIND)
        except OSError:
            os.unlink(netns)
            raise
        try:
            ino = os.stat(netns).st_ino
            linux.sethostname(item["hostname"])
            for key, value in item.get("sysctls", {}).items():  # /proc/sys/net follows this netns
                _write("/proc/sys/" + key.replace(".", "/"), value)
            if root_nl is not None:  # after the sysctls: no IPv6 address ever appears on it
                netconf.create(root_nl, root_netns, netconf.PodLink.from_dict(item["link"]))
                root_nl.close()
        except BaseException:
            linux.umount(netns, linux.MNT_DETACH)
            os.unlink(netns)
            raise
        os.close(root_netns)
        return _pause(item, {"netns_ino": ino})

    return work


def _pause(item: dict, report: dict) -> dict:
    """The rest of a sandbox, once its network namespace is set: its mount and PID namespaces
    and its PID 1 (catatonit), which holds them."""
    catatonit = item["pause"]
    if "mnt" in TEMPLATE:
        linux.setns(TEMPLATE["mnt"], linux.CLONE_NEWNS)
    linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWPID)
    view = podfs.PodView(item["pod_dir"], item["etc"], item.get("shared", {}), tuple(item.get("keep", ())),
                         tuple(item.get("volumes", ())))
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the pod's PID 1
        os.close(r)
        try:
            os.setsid()
            podfs.setup(view)
            linux.keep_only_capabilities(set())
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            devnull = os.open("/dev/null", os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(devnull, target)
            os.execv(catatonit, [catatonit, "-P"])
        except BaseException as exc:  # noqa: B902
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        os._exit(127)
    os.close(w)
    failure = os.read(r, 4096)
    os.close(r)
    if failure:
        raise OSError(f"pod sandbox: {failure.decode(errors='replace')}")
    return {"pid": pid, **report}


def start_process(item: dict):
    """The work of a helper that forks a process inside a sandbox (cgroups, namespaces,
    capabilities, user, argv) and reports {"pid"}; or the error at once."""
    pause, expected = item["pause_pid"], item["pause_start"]
    if start_time(pause) != expected:
        return {"error": f"the pod sandbox (pid {pause}) is gone"}
    log = item.get("log")
    # stdin or tty: the shim keeps the container's streams for attach and writes its log itself
    stream = STREAMS.prepare(item["attach"], log, bool(item.get("tty")), bool(item.get("stdin_once"))) \
        if item.get("attach") else None

    def work() -> dict:
        out = os.open(log if log and not stream else "/dev/null", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                      0o600)
        devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        for procs in item.get("cgroups", ()):
            _write(procs, str(os.getpid()))
        fds = [(os.open(f"/proc/{pause}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), kind) for kind in NS_ORDER]
        if start_time(pause) != expected:  # the pid could have been reused between check and open
            raise OSError("the pod sandbox is gone")
        for fd, _ in fds:
            linux.setns(fd)
            os.close(fd)
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the container's process, in the pod's PID namespace
            os.close(r)
            try:
                os.setsid()
                if stream:
                    stream.become_stdio()
                else:
                    os.dup2(devnull, 0)
                    os.dup2(out, 1)
                    os.dup2(out, 2)
                try:
                    os.chdir(item.get("cwd") or "/")
                except OSError:  # a workingDir the read-only host lacks: the container's own folder
                    os.chdir(item.get("cwd_fallback") or "/")
                linux.keep_only_capabilities(set(item.get("caps", ())))
                linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
                if item.get("gid") is not None:
                    os.setgroups([])
                    os.setgid(item["gid"])
                if item.get("uid") is not None:
                    os.setuid(item["uid"])
                os.execvpe(item["argv"][0], item["argv"], item["env"])
            except BaseException as exc:  # noqa: B902 - exec failed: say why, as runc does
                try:
                    os.write(w, f"{type(exc).__name__}: {exc}".encode()[:4000])
                finally:
                    os._exit(127)
        os.close(w)
        failure = os.read(r, 4096)  # EOF when exec succeeded (the pipe is close-on-exec)
        os.close(r)
        if failure:
            raise OSError(failure.decode(errors="replace"))
        return {"pid": pid}

    work.stream = stream  # the answer hands the stream over to the container, or forgets it
    return work


OPS = {"sandboxes": make_sandbox, "start": start_process}


def serve(sock: socket.socket) -> int:
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    template = make_template()
    if template is not None:
        TEMPLATE["mnt"] = template
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    buffer = b""
    while True:
        ready, _, _ = select.select([sock, wake_r, *STREAMS.readers()], [], [])
        STREAMS.ready(ready)
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            _reap(sock)
        if sock in ready:
            data = sock.recv(1 << 20)
            if not data:
                return 0  # the manager is gone
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                _answer(sock, line)
            _reap(sock)


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _answer(sock: socket.socket, line: bytes) -> None:
    try:
        request = json.loads(line)
        op = OPS[request["op"]]
        works: list = []
        for item in request["items"]:
            try:
                works.append(op(item))
            except Exception as exc:  # one item fails alone
                works.append({"error": f"{type(exc).__name__}: {exc}"})
        results = run_all(works)
        for work, result in zip(works, results):
            stream = getattr(work, "stream", None)
            if stream is not None and "pid" in result:
                stream.started()
            elif stream is not None:
                STREAMS.forget(stream)
        _send(sock, {"id": request["id"], "results": results})
    except Exception:
        _send(sock, {"id": None, "error": traceback.format_exc()})


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"event": "exit", "pid": pid, "status": os.waitstatus_to_exitcode(status)})


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[0]))
    try:
        return serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
