"""kube-proxy's service health check server, per node.

A LoadBalancer Service with ``externalTrafficPolicy: Local`` gets a ``healthCheckNodePort``;
every node answers HTTP on it with the number of the Service's ready endpoints on that node:
200 when there is one, 503 when there is none, so a load balancer sends traffic only to nodes
that keep it (kube-proxy's pkg/proxy/healthcheck/service_health.go, whose body and headers
this copies).

Each listener is a socket made inside the node's network namespace (a short-lived thread
enters it with setns, so nothing listens in this machine's own namespace) and served by the
standard library's HTTP server on a thread of its own: a handful of listeners, each answering
a few probes a second, where a framework would add a dependency for nothing.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulator.model import naming
from emulator.model.netview import NetworkView
from emulator.runtime import linux

NETNS_DIR = "/run/netns"
Key = tuple[str, int]  # node, port


def response(namespace: str, name: str, local: int) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for a Service with ``local`` ready endpoints on this node."""
    body = (f'{{\n\t"service": {{\n\t\t"namespace": {json.dumps(namespace)},\n\t\t"name": {json.dumps(name)}\n\t}},'
            f'\n\t"localEndpoints": {local},\n\t"serviceProxyHealthy": true\n}}')
    headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff",
               "X-Load-Balancing-Endpoint-Weight": str(local)}
    return (200 if local else 503), headers, body.encode()


def wanted(view: NetworkView) -> dict[Key, tuple[str, str, int]]:
    """(node, port) -> (namespace, name, ready local endpoints) for every node and every
    Service with a health check port (its ports' endpoints counted once by address)."""
    out: dict[Key, tuple[str, str, int]] = {}
    checked = [s for s in view.services if s.health_check_node_port]
    for node in view.nodes:
        local: dict[tuple[str, str, int], set[str]] = {}
        for svc in checked:
            key = (svc.namespace, svc.name, svc.health_check_node_port)
            local.setdefault(key, set()).update(svc.ready_on(node.name))
        for (namespace, name, port), ips in local.items():
            out[(node.name, port)] = (namespace, name, len(ips))
    return out


def socket_in(netns: str) -> socket.socket:
    """A TCP socket of network namespace ``netns`` (made by a thread that entered it; the socket
    stays in that namespace whichever thread uses it: binds, connects, the API's port-forward)."""
    return socket_at(os.path.join(NETNS_DIR, netns))


def socket_at(ns_path: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket (TCP unless ``kind`` says otherwise) of the network namespace at ``ns_path`` (a
    named one, or ``/proc/PID/ns/net``)."""
    made: list = []

    def enter_and_make() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, linux.CLONE_NEWNET)  # this thread only; it ends here
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_INET, kind))
        except OSError as exc:
            made.append(exc)

    thread = threading.Thread(target=enter_and_make, name=f"socket in {ns_path}")
    thread.start()
    thread.join()
    if isinstance(made[0], OSError):
        raise made[0]
    return made[0]


def listen_in(netns: str, port: int) -> socket.socket:
    """A TCP socket listening on every address of ``netns``."""
    sock = socket_in(netns)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    return sock


Answer = Callable[[str], tuple[int, dict[str, str], bytes]]  # path -> status, headers, body


class _Handler(BaseHTTPRequestHandler):
    server: "AnswerServer"
    protocol_version = "HTTP/1.1"  # as Go's net/http answers (no Server header either)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        status, headers, body = self.server.answer(self.path.split("?", 1)[0])
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # probed every few seconds: not worth a log line
        pass


class AnswerServer(ThreadingHTTPServer):
    """An HTTP server on a listening socket made elsewhere (in a node's namespace), answering
    every GET with ``answer(path)`` (read whole per request: replacing it needs no lock);
    ``start`` serves it on a thread of its own."""
    daemon_threads = True

    def __init__(self, sock: socket.socket, answer: Answer) -> None:
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.answer = answer

    def start(self, name: str) -> "AnswerServer":
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.5}, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def stop_all(servers: list[AnswerServer]) -> None:
    """Stop every server at once: each ``shutdown`` waits for its loop's next poll (up to half a
    second), so twenty one after the other cost up to ten seconds of ``down``; side by side, one
    poll."""
    if servers:
        with ThreadPoolExecutor(len(servers), thread_name_prefix="http stop") as pool:
            list(pool.map(AnswerServer.stop, servers))


def _answer(state: tuple[str, str, int]) -> Answer:
    return lambda path: response(*state)


@dataclass
class HealthChecks:
    """The listeners of one cluster: opened, updated and closed to match each view."""
    scope: naming.Scope
    servers: dict[Key, AnswerServer] = field(default_factory=dict)
    failed: dict[Key, str] = field(default_factory=dict)  # why a listener could not be opened

    def sync(self, view: NetworkView) -> None:
        want = wanted(view)
        for key in [k for k in self.servers if k not in want]:
            self._close(key)
        for key, state in want.items():
            server = self.servers.get(key)
            if server is not None:
                server.answer = _answer(state)
                continue
            node, port = key
            try:
                sock = listen_in(naming.node_netns(self.scope, node), port)
            except OSError as exc:
                self.failed[key] = str(exc)
                continue
            self.failed.pop(key, None)
            self.servers[key] = AnswerServer(sock, _answer(state)).start(f"healthz {node}:{port}")

    def _close(self, key: Key, wait: bool = False) -> None:
        """Stop a listener. ``shutdown`` waits for the serving loop's next poll (up to half a
        second): from ``sync``, which runs under the manager's lock, that happens on a thread of
        its own (a listener opened again on the same port meanwhile fails, and the node agent
        tries it again every half second)."""
        server = self.servers.pop(key)
        if wait:
            server.stop()
        else:
            threading.Thread(target=server.stop, name=f"healthz stop {key[0]}:{key[1]}", daemon=True).start()

    def close(self) -> None:
        """Every listener, stopped side by side (``stop_all``)."""
        servers = list(self.servers.values())
        self.servers.clear()
        stop_all(servers)
