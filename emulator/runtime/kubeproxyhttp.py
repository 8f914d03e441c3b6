"""kube-proxy's own HTTP servers on every node of a kernel data plane (``cni: flannel``).

As kube-proxy serves them (cmd/kube-proxy/app/server.go, pkg/proxy/healthcheck/proxier_health.go):

- the health server on every address of the node, port 10256: ``/healthz`` and ``/livez``
  answer 200 while the node's rules are current or the oldest change not loaded yet is younger
  than the health timeout (2 × syncPeriod, 60 s), else 503, with kube-proxy's JSON body
  (``{"lastUpdated": ..., "currentTime": ..., "nodeEligible": true}``, times as Go prints them);
  it is what a load balancer probes for ``externalTrafficPolicy: Cluster``;
- the metrics server on the node's loopback, port 10249: ``/proxyMode`` (``iptables`` or
  ``nftables``: the course's "which mode is kube-proxy in?"), ``/healthz`` (``ok``) and
  ``/metrics`` with the sync metrics k8semu measures: kubeproxy_sync_proxy_rules_duration_seconds
  and kubeproxy_sync_full_proxy_rules_duration_seconds (histograms, kube-proxy's buckets),
  kubeproxy_sync_proxy_rules_last_timestamp_seconds and the healthz/livez answer counters.
  Written with prometheus_client (one registry per node). Not served: kube-proxy's other
  metrics (rule counts, network programming latency, conntrack), ``/configz``, pprof.

Each listener is a socket made inside the node's network namespace (``healthcheck.socket_in``),
so nothing listens in this machine's own namespace, served by ``healthcheck.AnswerServer`` on a
thread of its own, as the Service health checks are.
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from emulator.model import naming
from emulator.runtime.healthcheck import AnswerServer, socket_in, stop_all

disable_created_metrics()  # kube-proxy's client_golang writes no ``_created`` series (this process's only registries)

HEALTHZ_PORT = 10256  # kube-proxy's --healthz-bind-address default 0.0.0.0:10256
METRICS_PORT = 10249  # --metrics-bind-address default 127.0.0.1:10249
HEALTH_TIMEOUT = 60.0  # 2 × syncPeriod (KubeProxyConfiguration's default 30 s)
BUCKETS = tuple(0.001 * 2 ** i for i in range(15))  # metrics.ExponentialBuckets(0.001, 2, 15)
GO_ZERO_TIME = "0001-01-01 00:00:00 +0000 UTC"  # never synced
Health = Callable[[], tuple[float, float]]  # -> (wall time the oldest unloaded change was queued or 0, last sync)


def go_time(wall: float, since_start: float) -> str:
    """A time as Go's ``time.Time.String()`` prints one read from the clock: UTC, nanoseconds
    without trailing zeros, and the monotonic reading (``m=+12.345678901``)."""
    moment = datetime.fromtimestamp(wall, timezone.utc)
    nanos = f"{int(round(wall % 1 * 1e9)) % 1_000_000_000:09d}".rstrip("0")
    return f"{moment:%Y-%m-%d %H:%M:%S}{'.' + nanos if nanos else ''} +0000 UTC m=+{since_start:.9f}"


@dataclass
class NodeMetrics:
    """One node's kube-proxy metrics (its own registry: each node's /metrics is its own)."""
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sync = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                              "[ALPHA] SyncProxyRules latency in seconds", buckets=BUCKETS, registry=r)
        self.full = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                              "[ALPHA] SyncProxyRules latency in seconds for full resyncs", buckets=BUCKETS, registry=r)
        self.last = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                          "[ALPHA] The last time proxy rules were successfully synced", registry=r)
        self.healthz = Counter("kubeproxy_proxy_healthz", "[ALPHA] Cumulative proxy healthz HTTP status",
                               ["code"], registry=r)
        self.livez = Counter("kubeproxy_proxy_livez", "[ALPHA] Cumulative proxy livez HTTP status", ["code"], registry=r)


NOT_FOUND = (404, {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
             b"404 page not found\n")


@dataclass
class NodeServers:
    """One node's two servers."""
    mode: str
    health: Health
    started: float = field(default_factory=time.monotonic)
    metrics: NodeMetrics = field(default_factory=NodeMetrics)

    def healthz(self, path: str) -> tuple[int, dict, bytes]:
        """/healthz and /livez of port 10256 (isHealthy: no change waiting longer than the timeout)."""
        if path not in ("/healthz", "/livez"):
            return NOT_FOUND
        queued, updated = self.health()
        now = time.time()
        healthy = not queued or now - queued < HEALTH_TIMEOUT
        if healthy:
            updated = now  # kube-proxy reports the current time while healthy (compatibility)
        since = time.monotonic() - self.started
        last = go_time(updated, since - (now - updated)) if updated else GO_ZERO_TIME
        text = f'{{"lastUpdated": {json.dumps(last)},"currentTime": {json.dumps(go_time(now, since))}'
        text += ', "nodeEligible": true}' if path == "/healthz" else "}"
        code = 200 if healthy else 503
        (self.metrics.healthz if path == "/healthz" else self.metrics.livez).labels(code=str(code)).inc()
        return code, {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}, text.encode()

    def metrics_port(self, path: str) -> tuple[int, dict, bytes]:
        """/proxyMode, /healthz and /metrics of port 10249."""
        plain = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
        if path == "/proxyMode":
            return 200, plain, self.mode.encode()
        if path == "/healthz":
            return 200, plain, b"ok"
        if path == "/metrics":
            return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, generate_latest(self.metrics.registry)
        return NOT_FOUND


@dataclass
class KubeProxyServers:
    """Every node's servers: opened with the proxier, closed with it."""
    scope: naming.Scope
    mode: str
    nodes: dict[str, NodeServers] = field(default_factory=dict)
    listening: list[AnswerServer] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # node -> why a listener could not be opened

    def open(self, node: str, health: Health) -> None:
        servers = self.nodes[node] = NodeServers(self.mode, health)
        netns = naming.node_netns(self.scope, node)
        for address, port, answer in (("0.0.0.0", HEALTHZ_PORT, servers.healthz),
                                      ("127.0.0.1", METRICS_PORT, servers.metrics_port)):
            sock = socket_in(netns)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(16)
            except OSError as exc:
                sock.close()
                self.failed[node] = f"kube-proxy's {address}:{port}: {exc}"
                continue
            self.listening.append(AnswerServer(sock, answer).start(f"kube-proxy http {node}:{port}"))

    def synced(self, node: str, seconds: float, full: bool) -> None:
        """A sync of the node's rules took ``seconds`` (kube-proxy observes every sync, and full
        ones in their own histogram too)."""
        metrics = self.nodes[node].metrics if node in self.nodes else None
        if metrics is None:
            return
        metrics.sync.observe(seconds)
        if full:
            metrics.full.observe(seconds)
        metrics.last.set(time.time())

    def close(self) -> None:
        stop_all(self.listening)
        self.listening.clear()
