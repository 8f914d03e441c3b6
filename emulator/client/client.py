"""``Client``: typed calls over one kept-alive HTTPS connection per thread.

Standard library ``http.client`` rather than the ``kubernetes`` package or aiohttp: a verb makes
a handful of synchronous requests and exits, and importing either costs more (0.23 s and 0.14 s
on this machine) than all of its requests; tests poll ``generations`` from several threads, so
each thread keeps its own connection.
"""
from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from emulator.api import ops, pki, resources
from emulator.errors import (AlreadyExistsError, K8semuError, NoClusterError, NotFoundError, Problem, SpecError,
                             from_wire)
from emulator.runtime.healthcheck import socket_at
from emulator.runtime.records import Records
from emulator.spec.loader import Document

NO_CLUSTER = "no cluster is running (start one with: sudo k8semu up SPEC)"
RETRIED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class Applied:
    """What ``apply`` did: kubectl's lines, and the warnings the manifests drew."""

    lines: list[str]
    warnings: list[str] = field(default_factory=list)


def _error(code: int, body: Any) -> K8semuError:
    """The error a Status stands for: the manager's own when it sent it (k8semu's endpoints),
    else by reason, with kubectl's text."""
    if not isinstance(body, dict):
        return K8semuError(f"the API answered {code}: {str(body)[:500]}")
    details = body.get("details") or {}
    if isinstance(details.get("k8semu"), dict):
        return from_wire(details["k8semu"])
    message, reason = str(body.get("message", f"the API answered {code}")), body.get("reason")
    if reason == "NotFound":
        return NotFoundError(message)
    if reason == "AlreadyExists":
        return AlreadyExistsError(message)
    if reason == "Invalid" and details.get("causes"):
        return SpecError([Problem(None, str(c.get("field", "")), str(c.get("message", "")))
                          for c in details["causes"]])
    return K8semuError(message)


def _netns(pid: int | str) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class _Connection(http.client.HTTPSConnection):
    """A connection whose socket is made in the manager's network namespace (the machine's),
    where the API listens on 127.0.0.1, so a verb run inside a node (``control-plane k8semu get
    svc`` in the shell, a scenario's ``exec in: control-plane``) reaches it as one run outside
    does."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext, timeout: float, netns: str) -> None:
        super().__init__(host, port, context=tls, timeout=timeout)
        self.tls, self.netns = tls, netns

    def connect(self) -> None:
        sock = socket_at(self.netns)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class Client:
    """One cluster's API, as its administrator (root) reaches it."""

    def __init__(self, run: Path, timeout: float = 120) -> None:
        self.run = run
        self.timeout = timeout
        self._local = threading.local()
        self._address: tuple[str, int] | None = None
        self._tls: ssl.SSLContext | None = None
        self._netns: str | None = None  # the manager's, when it is not this process's

    # -- transport --------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPSConnection:
        if self._address is None or self._tls is None:
            try:
                config = yaml.safe_load((self.run / "kubeconfig").read_text())
                url = urlsplit(config["clusters"][0]["cluster"]["server"])
            except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
                raise NoClusterError(NO_CLUSTER) from None
            paths = pki.Paths(self.run / "pki")
            tls = ssl.create_default_context(cafile=str(paths.ca))
            tls.load_cert_chain(paths.admin_cert, paths.admin_key)
            self._address, self._tls = (url.hostname or "127.0.0.1", url.port or 443), tls
            records = Records.load(self.run)
            manager = records.manager() if records else None
            try:
                if manager and _netns(manager[0]) != _netns("thread-self"):
                    self._netns = f"/proc/{manager[0]}/ns/net"
            except OSError:  # it is gone: connecting says so
                pass
        if self._netns:
            return _Connection(*self._address, self._tls, self.timeout, self._netns)
        return http.client.HTTPSConnection(*self._address, context=self._tls, timeout=self.timeout)

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None,
                content_type: str = "application/json", timeout: float | None = None) -> Any:
        """One request; its JSON answer.

        Raises:
            NoClusterError: nothing answers (no cluster, or its manager is exiting).
            K8semuError: the answer was an error (the manager's own error where it sent one).
        """
        url = path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **({"Content-Type": content_type} if data is not None else {})}
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self._local.conn = self._connect()
            try:
                conn.timeout = timeout or self.timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                conn.request(method, url, data, headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except RETRIED:
                self.close()
                if reused and attempt == 1:  # the server closed an idle connection: once more, afresh
                    continue
                raise NoClusterError(NO_CLUSTER) from None
            except ConnectionRefusedError:
                self.close()
                raise NoClusterError(NO_CLUSTER) from None
            except TimeoutError:
                self.close()
                raise K8semuError(f"the cluster's API did not answer {method} {path} within "
                                  f"{timeout or self.timeout:g}s") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise K8semuError(f"the cluster's API failed: {exc!r}") from None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        if response.status >= 400:
            raise _error(response.status, answer)
        return answer

    def close(self) -> None:
        """Close this thread's connection (the next request opens another)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _op(self, endpoint: str, timeout: float | None = None, /, **args: Any) -> Any:
        """One of k8semu's own endpoints (``ops.OPS``), with its arguments."""
        op = ops.OPS[endpoint]
        if op.method == "GET":
            return self.request("GET", ops.PREFIX + endpoint, query={k: v for k, v in args.items() if v is not None},
                                timeout=timeout)
        return self.request("POST", ops.PREFIX + endpoint, args, timeout=timeout)

    # -- the emulator ----------------------------------------------------------------------
    def status(self) -> dict:
        return self._op("status")

    def generations(self) -> dict:
        """{"published": the latest view's generation, "switches": {node: generation confirmed}},
        answered at once, even while the manager is busy."""
        return self._op("generations")

    def ipam(self) -> dict:
        """cni: calico: pools, blocks (affinity, usage, allocations) and borrowed addresses."""
        return self._op("ipam")

    def pod(self, name: str, namespace: str | None = None) -> dict:
        """Where a pod's containers run (pids, namespaces, cgroups, directory), to enter it.

        Raises:
            NotFoundError: no such pod, or it has no sandbox yet.
        """
        return self._op("pod", name=name, namespace=namespace)

    def impair(self, link: str, values: dict, namespace: str = "default") -> str:
        """Give ``link`` (node/NAME, external/NAME, pod/NAME or a host's name) exactly ``values``
        (``{"bandwidth": "50Mbit", "loss": "10%"}``); the line says what it now suffers.

        Raises:
            K8semuError: a bad value, a missing kernel feature (one line) or no such link.
        """
        return self._op("impair", link=link, namespace=namespace, values=values)["line"]

    def partition(self, name: str, a: list[str], b: list[str], one_way: bool = False) -> str:
        """Drop every frame between the nodes or external hosts of ``a`` and ``b`` (or only from
        ``a`` to ``b``)."""
        return self._op("partition", name=name, **{"from": a, "to": b}, oneWay=one_way)["line"]

    def heal(self, what: str = "all", namespace: str = "default") -> list[str]:
        """Undo the impairment of a link, a partition (``partition/NAME``) or ``all``."""
        return self._op("heal", what=what, namespace=namespace)["lines"]

    def impairments(self) -> dict:
        """{"links": [...], "partitions": [...]}: what is in force."""
        return self._op("impairments")

    def trace(self, source: str, destination: str, namespace: str = "default", protocol: str = "",
              port: int | None = None, endpoint: str = "", live: bool = False) -> dict:
        """Follow one packet of a new connection from ``source`` (a pod, node/NAME or
        external/NAME) to ``destination`` (a pod, Service, node, address or DNS name) through
        the switches: {"verdict", "where", "endpoint", "hops": [...]}; ``live``: also send one real
        attempt and add where it was seen and whether that agrees ({"live": {...}}).

        Raises:
            NotFoundError: no such source or destination; K8semuError: cannot be traced.
        """
        args = {"source": source, "destination": destination, "namespace": namespace, "protocol": protocol,
                "endpoint": endpoint, "live": "true" if live else "false"}
        return self._op("trace", **args, **({"port": str(port)} if port else {}))

    def counters(self) -> dict:
        """{"tables": {node: {table: packets matched so far}}} (empty on a kernel data plane)."""
        return self._op("counters")

    def node_stop(self, name: str) -> str:
        """The node's eth0 down, its kubelet gone, its pods' processes frozen; Kubernetes
        reacts as to a lost node (``cluster.nodelifecycle``)."""
        return self._op("node/stop", node=name)["line"]

    def node_start(self, name: str) -> str:
        return self._op("node/start", node=name)["line"]

    def fault(self, action: str, component: str, node: str = "") -> str:
        """``kill``, ``stop`` or ``start`` a component of the cluster (``emulator.model.components``);
        the line saying what was done."""
        return self._op("fault", 60, action=action, component=component, node=node)["line"]

    def component_faults(self) -> list[dict]:
        """The component stops in force: [{"component", "node", "target", "stopped"}]."""
        return self._op("faults")["stopped"]

    def controller_stop(self) -> str:
        return self._op("controller/stop")

    def controller_start(self) -> str:
        return self._op("controller/start", 60)

    def down(self) -> str:
        return self._op("down", 10)

    # -- objects ---------------------------------------------------------------------------
    @staticmethod
    def _resource(kind: str) -> resources.Resource:
        found = resources.by_kind(kind)
        if found is None:
            raise K8semuError(f'the server doesn\'t have a resource type "{kind}"')
        return found

    def get(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Every object of ``kind`` (in ``namespace``, or in all), as the API lists them."""
        return self.request("GET", self._resource(kind).path(namespace))["items"]

    def collection_version(self, kind: str) -> str:
        """The resourceVersion a list of ``kind`` has now, without its objects (a field selector
        no object matches: no name is "-"): what a poller asks before it lists everything."""
        return self.request("GET", self._resource(kind).path(), query={"fieldSelector": "metadata.name=-"}
                            )["metadata"]["resourceVersion"]

    def events(self, namespace: str | None = None) -> list[dict]:
        """core/v1 Events (in ``namespace``, or in all), oldest first."""
        return self.get("Event", namespace)

    def apply(self, documents: list[Document], namespace: str = "default") -> Applied:
        """``kubectl apply`` of parsed manifest documents, as one batch.

        Raises:
            SpecError: the manifests are invalid or cannot be applied here (located in the files).
        """
        done = self._op("apply", documents=[d.to_wire() for d in documents], namespace=namespace)
        return Applied(done["lines"], done["warnings"])

    def delete(self, kind: str, namespace: str, name: str, grace: int | None = None,
               propagation: str | None = None) -> str:
        """Delete one object (and what it owns, unless ``propagation`` is Orphan; a pod within
        ``grace`` seconds if given, else its own grace period); kubectl's line.

        Raises:
            NotFoundError: no such object. SpecError: options the API refuses.
        """
        res = self._resource(kind)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if propagation is not None:
            options["propagationPolicy"] = propagation
        self.request("DELETE", res.path(namespace, name), options)
        where = f" from {namespace} namespace" if res.namespaced else ""  # kubectl 1.37's wording
        return f'{res.singular}{"." + res.group if res.group else ""} "{name}" deleted{where}'

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        """The ``scale`` subresource, as ``kubectl scale``; kubectl's line.

        Raises:
            NotFoundError: no such object. SpecError: a count that cannot be.
        """
        res = self._resource(kind)
        self.request("PATCH", res.path(namespace, name, "scale"), {"spec": {"replicas": replicas}},
                     content_type="application/merge-patch+json")
        return f'{res.singular}{"." + res.group if res.group else ""}/{name} scaled'

    def cordon(self, node: str, unschedulable: bool = True) -> str:
        """``kubectl cordon``/``uncordon``: the Node's ``spec.unschedulable``, patched as kubectl
        patches it; kubectl's line. Raises: NotFoundError."""
        path = self._resource("Node").path(None, node)
        word = "cordoned" if unschedulable else "uncordoned"
        if bool(self.request("GET", path)["spec"].get("unschedulable")) == unschedulable:
            return f"node/{node} already {word}"
        self.request("PATCH", path, {"spec": {"unschedulable": True if unschedulable else None}},
                     content_type="application/strategic-merge-patch+json")
        return f"node/{node} {word}"

    def drain(self, node: str, force: bool = False, timeout: float = 300, retry: float = 5.0,
              pod_selector: str = "", ignore_daemonsets: bool = False) -> list[str]:
        """Cordon the node and evict its pods (those ``pod_selector`` matches, if given),
        retrying every ``retry`` seconds those a PodDisruptionBudget holds back, then wait
        until the evicted ones are gone, after their grace periods (kubectl drain); returns
        kubectl's lines.

        Raises:
            K8semuError: ``pod_selector`` is not a label query, the node holds pods no
                controller would replace (without ``force``) or DaemonSet pods (without
                ``ignore_daemonsets``), or pods are still there after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        flags = {"force": force, "podSelector": pod_selector, "ignoreDaemonsets": ignore_daemonsets}
        done = self._op("drain", node=node, **flags)
        lines, evicted = list(done["lines"]), list(done["evicted"])
        while done["refused"]:
            if time.monotonic() + retry > deadline:
                raise K8semuError(f'unable to drain node "{node}": global timeout reached: {timeout:g}s; '
                                  "still held by their PodDisruptionBudget: " + ", ".join(done["refused"]))
            time.sleep(retry)
            done = self._op("drain", node=node, **flags)
            lines += done["lines"][1:]  # without the second "already cordoned"
            evicted += done["evicted"]
        for ns, name in (key.split("/", 1) for key in evicted):
            self.wait_gone("Pod", ns, name, deadline)
        return lines + [f"node/{node} drained"]

    def wait_gone(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        """Return once the object being deleted is gone (a pod: after its grace period), as
        kubectl waits: by uid, so a successor of the same name (a StatefulSet's pod, made again as
        soon as the old one has gone) is not waited for.

        Raises:
            K8semuError: still there at ``deadline`` (time.monotonic()).
        """
        path = self._resource(kind).path(namespace, name)
        uid = None
        while True:
            try:
                meta = (self.request("GET", path) or {}).get("metadata", {})
            except NotFoundError:
                return
            if uid is None:
                if not meta.get("deletionTimestamp"):
                    return  # what has this name now is not being deleted: the deleted one has gone
                uid = meta.get("uid")
            elif meta.get("uid") != uid:
                return
            if time.monotonic() > deadline:
                raise K8semuError(f"timed out waiting for {kind.lower()} {name!r} to be deleted")
            time.sleep(0.05)
