"""How the CLI talks to the manager: ``multiprocessing.connection`` over a Unix socket in the
run directory (root-only, with an authentication key), carrying small request dicts and
replies. Standard library only; pickling is safe here because both ends are this package run
by root on one machine.

The key handshake runs on each connection's own thread, both ways under a time limit
(``HANDSHAKE_LIMIT``), not inside ``Listener.accept``: there one client that connects and
never answers (a CLI interrupted mid-handshake, whose socket its traceback keeps open) blocks
every later client, and the CLI waiting for the manager would wait for ever.
"""
from __future__ import annotations

import secrets
import socket
import struct
import threading
import time
import traceback
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client as connect, Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any, Callable

from emulator.errors import K8semuError, NoClusterError


def socket_path(run: Path) -> Path:
    return run / "api.sock"


HANDSHAKE_LIMIT = 10.0  # seconds either end waits for the other's part of the key handshake


def make_listener(run: Path) -> tuple[Listener, bytes]:
    """The manager's socket and its key. The listener does no handshake itself: ``accept``
    returns at once and ``authenticate`` runs on the connection's thread."""
    key = secrets.token_bytes(32)
    key_file = run / "api.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)
    sock = socket_path(run)
    sock.unlink(missing_ok=True)
    return Listener(str(sock), family="AF_UNIX"), key


def _limit(conn: Connection, seconds: float) -> None:
    """Blocking reads and writes on ``conn`` fail (OSError) after ``seconds``; 0: no limit."""
    with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # a dup: same socket
        value = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def authenticate(conn: Connection, key: bytes) -> dict | None:
    """The manager's side: the key handshake and the request, within ``HANDSHAKE_LIMIT``;
    None when the peer does not know the key or does not answer in time."""
    try:
        _limit(conn, HANDSHAKE_LIMIT)
        deliver_challenge(conn, key)
        answer_challenge(conn, key)
        request = conn.recv()
        _limit(conn, 0)
    except (OSError, EOFError, AuthenticationError):
        return None
    return request if isinstance(request, dict) else None


def serve(listener: Listener, key: bytes, dispatch: Callable[[dict], Any], stopping: threading.Event) -> None:
    """The manager's accept loop, until ``stopping``: each connection gets its own thread for
    the handshake, its one request and the reply."""
    while not stopping.is_set():
        try:
            conn = listener.accept()
        except (OSError, EOFError):
            continue
        threading.Thread(target=_answer, args=(conn, key, dispatch), daemon=True).start()


def _answer(conn: Connection, key: bytes, dispatch: Callable[[dict], Any]) -> None:
    with conn:
        request = authenticate(conn, key)
        if request is None:
            return
        try:
            reply = {"result": dispatch(request)}
        except K8semuError as exc:
            reply = {"error": exc}
        except Exception as exc:  # noqa: BLE001 - a bug: report it to the CLI rather than hang it
            reply = {"error": K8semuError(f"manager error: {exc!r}\n{traceback.format_exc()}")}
        try:
            conn.send(reply)
        except OSError:  # the CLI went away (Ctrl-C): nothing to tell
            pass


def call(run: Path, op: str, timeout: float = 120, **args: Any) -> Any:
    """Send one request; re-raise the manager's K8semuError here.

    Raises:
        NoClusterError: no manager is listening.
        K8semuError: whatever the manager raised for this request.
    """
    try:
        key = (run / "api.key").read_bytes()
        conn = connect(str(socket_path(run)), family="AF_UNIX")
    except (OSError, EOFError):
        raise NoClusterError("no cluster is running (start one with: sudo k8semu up SPEC)") from None
    with conn:
        try:
            _limit(conn, HANDSHAKE_LIMIT)
            answer_challenge(conn, key)
            deliver_challenge(conn, key)
            _limit(conn, 0)
        except EOFError:  # it closed the socket: it is exiting
            raise NoClusterError("no cluster is running (start one with: sudo k8semu up SPEC)") from None
        except (OSError, AuthenticationError) as exc:
            raise K8semuError(f"the cluster manager did not complete the handshake within {HANDSHAKE_LIMIT:.0f}s "
                              f"({exc!r})") from None
        conn.send({"op": op, **args})
        if not conn.poll(timeout):
            raise K8semuError(f"the cluster manager did not answer {op!r} within {timeout}s")
        reply = conn.recv()
    if "error" in reply:
        raise reply["error"]
    return reply["result"]


class Client:
    """The manager of one cluster, as the CLI and the scenario runner talk to it."""

    def __init__(self, run: Path) -> None:
        self.run = run

    def call(self, op: str, timeout: float = 120, **args: Any) -> Any:
        return call(self.run, op, timeout, **args)

    def status(self) -> dict:
        return self.call("status")

    def get(self, kind: str, namespace: str | None = None) -> list[dict]:
        return self.call("get", kind=kind, namespace=namespace)

    def pod(self, name: str, namespace: str | None = None) -> dict:
        return self.call("pod", name=name, namespace=namespace)

    def apply(self, objects: list) -> list[str]:
        return self.call("apply", objects=objects)

    def delete(self, kind: str, namespace: str, name: str) -> str:
        return self.call("delete", kind=kind, namespace=namespace, name=name)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        return self.call("scale", kind=kind, namespace=namespace, name=name, replicas=replicas)

    def cordon(self, node: str, unschedulable: bool = True) -> str:
        return self.call("cordon", node=node, unschedulable=unschedulable)

    def drain(self, node: str, force: bool = False, timeout: float = 300, retry: float = 5.0,
              pod_selector: str = "") -> list[str]:
        """Cordon the node and evict its pods (those ``pod_selector`` matches, if given), retrying every ``retry`` seconds those a
        PodDisruptionBudget holds back, then wait until the evicted ones are gone, after their
        grace periods (kubectl drain); returns kubectl's lines.

        Raises:
            K8semuError: ``pod_selector`` is not a label query, the node holds pods no controller would replace (without ``force``),
                or pods are still there after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        done = self.call("drain", node=node, force=force, pod_selector=pod_selector)
        lines, evicted = list(done["lines"]), list(done["evicted"])
        while done["refused"]:
            if time.monotonic() + retry > deadline:
                raise K8semuError(f'unable to drain node "{node}": global timeout reached: {timeout:g}s; '
                                  "still held by their PodDisruptionBudget: " + ", ".join(done["refused"]))
            time.sleep(retry)
            done = self.call("drain", node=node, force=force, pod_selector=pod_selector)
            lines += done["lines"][1:]  # without the second "already cordoned"
            evicted += done["evicted"]
        for ns, name in (key.split("/", 1) for key in evicted):
            self.wait_gone("Pod", ns, name, deadline)
        return lines + [f"node/{node} drained"]

    def wait_gone(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        """Return once the object is gone (a pod: after its grace period), as kubectl waits.

        Raises:
            K8semuError: still there at ``deadline`` (time.monotonic()).
        """
        while any(o["metadata"]["name"] == name for o in self.get(kind, namespace)):
            if time.monotonic() > deadline:
                raise K8semuError(f"timed out waiting for {kind.lower()} {name!r} to be deleted")
            time.sleep(0.05)

    def generations(self) -> dict:
        """{"published": the latest view's generation, "switches": {node: generation confirmed}},
        answered at once, even while the manager is busy."""
        return self.call("generations")

    def events(self, namespace: str | None = None) -> list[dict]:
        return self.call("events", namespace=namespace)
