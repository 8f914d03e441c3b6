"""k8semu's own endpoints, beside the Kubernetes API on the same server: what an emulator has
and a cluster does not (its status, the generation each switch confirmed, how to enter a pod's
namespaces, stopping the SDN controller, taking the cluster down) and the batch forms of
``k8semu apply`` and ``drain``. They are non-resource paths under ``/k8semu/v1/``,
as kube-apiserver serves ``/metrics`` and ``/debug/*`` beside its groups, for the cluster's
administrators only (``pki.ADMIN_GROUP``: a pod's ServiceAccount token may not take the cluster
down); ``emulator/client`` is their one caller.

One registry (``OPS``) names each endpoint, its HTTP method and the manager request it runs.
Arguments come from the query (GET) or a JSON object (POST) and are checked here; an error the
manager raises is a Status whose details carry the error itself (``errors.to_wire``), so the
client re-raises it unchanged: a spec problem keeps its file, line and column.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from emulator.api.backend import Backend
from emulator.api.status import ApiError, bad_request
from emulator.errors import (AlreadyExistsError, ForbiddenError, K8semuError, NoClusterError, NotFoundError, SpecError,
                             to_wire)
from emulator.model import components
from emulator.spec.loader import Document
from emulator.spec.manifests import parse_documents

PREFIX = "/k8semu/v1/"


@dataclass(frozen=True)
class Op:
    method: str
    run: Callable[[Backend, dict], Any]
    doc: str


def _text(args: dict, key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str):
        raise bad_request(f"{key}: a string is required")
    return value


def _flag(args: dict, key: str) -> bool:
    value = args.get(key, False)
    if isinstance(value, str) and value in ("0", "1", "false", "true"):  # as a query spells it
        value = value in ("1", "true")
    if not isinstance(value, bool):
        raise bad_request(f"{key}: true or false")
    return value


def _apply(backend: Backend, args: dict) -> dict:
    """Located documents (``Document.to_wire``), parsed and checked as ``k8semu apply`` parses
    files, then applied as one batch (one view published for all of them): kubectl's lines and
    the parser's warnings."""
    wires = args.get("documents")
    if not isinstance(wires, list):
        raise bad_request("documents: a list is required")
    try:
        docs = [Document.from_wire(w) for w in wires]
    except ValueError as exc:
        raise bad_request(f"documents: {exc}") from None
    mset = parse_documents(docs, _text(args, "namespace", "default"))
    return {"lines": backend.apply(mset.objects), "warnings": mset.warnings}


def _names(args: dict, key: str) -> list[str]:
    value = args.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{key}: a list of names is required")
    return value


def _impair(backend: Backend, args: dict) -> dict:
    values = args.get("values")
    if not isinstance(values, dict) or not all(isinstance(v, (str, int, float)) for v in values.values()):
        raise bad_request("values: an object of property -> value (e.g. {\"bandwidth\": \"50Mbit\"})")
    return {"line": backend.impair(_text(args, "link"), _text(args, "namespace", "default"), values)}


def _fault(backend: Backend, args: dict) -> dict:
    action, component, node = _text(args, "action"), _text(args, "component"), _text(args, "node", "")
    try:
        components.parse(action, component, node)  # 400 for a request that names nothing (the manager checks again)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return {"line": backend.component_fault(action, component, node)}


def _trace(backend: Backend, args: dict) -> dict:
    port = args.get("port")
    if isinstance(port, str) and port.isdigit():  # as a query spells it
        port = int(port)
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise bad_request("port: a number 1-65535")
    return backend.trace(_text(args, "source"), _text(args, "destination"), _text(args, "namespace", "default"),
                         _text(args, "protocol", ""), port, _text(args, "endpoint", ""), _flag(args, "live"))


def _pod(backend: Backend, args: dict) -> dict:
    namespace = args.get("namespace")
    return backend.pod_info(_text(args, "name"), _text(args, "namespace") if namespace is not None else None)


OPS: dict[str, Op] = {
    "status": Op("GET", lambda b, a: b.status_report(), "the cluster at a glance"),
    "generations": Op("GET", lambda b, a: b.generation_report(),
                      "the view's generation and the one each switch confirmed (no lock taken)"),
    "ipam": Op("GET", lambda b, a: b.ipam_report(),
               "cni: calico: the IP pools' blocks, their affinities and the addresses in use"),
    "pod": Op("GET", _pod, "where a pod's containers run: pids, namespaces, cgroups (name, namespace)"),
    "apply": Op("POST", _apply, "apply located manifests as one batch (documents, namespace)"),
    "drain": Op("POST", lambda b, a: b.drain(_text(a, "node"), _flag(a, "force"), _text(a, "podSelector", ""),
                                             _flag(a, "ignoreDaemonsets")),
                "one eviction pass over a node's pods (node, force, podSelector)"),
    "impairments": Op("GET", lambda b, a: b.impairments(), "the impairments and partitions in force"),
    "impair": Op("POST", _impair, "give a link exactly these impairments (link, namespace, values)"),
    "partition": Op("POST", lambda b, a: {"line": b.partition(_text(a, "name"), _names(a, "from"),
                                                              _names(a, "to"), _flag(a, "oneWay"))},
                    "drop everything between two sets of nodes or external hosts (name, from, to, oneWay)"),
    "heal": Op("POST", lambda b, a: {"lines": b.heal(_text(a, "what"), _text(a, "namespace", "default"))},
               "undo an impairment (a link), a partition (partition/NAME) or all"),
    "node/stop": Op("POST", lambda b, a: {"line": b.node_power(_text(a, "node"), True)},
                    "stop a node: eth0 down, kubelet gone, its pods frozen (node)"),
    "node/start": Op("POST", lambda b, a: {"line": b.node_power(_text(a, "node"), False)}, "start it again (node)"),
    "trace": Op("GET", _trace, "follow one packet of a new connection through the switches (source, destination, "
                "namespace, protocol, port, endpoint, live)"),
    "counters": Op("GET", lambda b, a: b.counters(), "packets each OpenFlow table of each switch matched so far"),
    "faults": Op("GET", lambda b, a: {"stopped": b.component_faults()}, "the component stops in force"),
    "fault": Op("POST", _fault,
                "kill, stop or start a component: coredns, ingress-nginx, controller, kube-proxy, bird, dns/NAME "
                "(action, component, node)"),
    "controller/stop": Op("POST", lambda b, a: b.controller_stop(), "stop the SDN controller"),
    "controller/start": Op("POST", lambda b, a: b.controller_start(),
                           "start it again; answers once every switch is in sync"),
    "down": Op("POST", lambda b, a: b.down(), "take the cluster down"),
}

CODES = ((NotFoundError, 404, "NotFound"), (AlreadyExistsError, 409, "AlreadyExists"), (SpecError, 422, "Invalid"),
         (ForbiddenError, 403, "Forbidden"), (NoClusterError, 503, "ServiceUnavailable"))


def failure(exc: K8semuError) -> ApiError:
    """The Status for an error the manager raised, with the error itself in its details."""
    code, reason = next(((c, r) for cls, c, r in CODES if isinstance(exc, cls)), (500, "InternalError"))
    return ApiError(code, reason, str(exc), {"k8semu": to_wire(exc)})


def serve(backend: Backend, name: str, method: str, query: dict, body: bytes) -> Any:
    """Run one of k8semu's endpoints (on a worker thread); its answer is JSON.

    Raises:
        ApiError: no such endpoint (404), another method (405), bad arguments (400), or the
            manager's error as a Status (``failure``).
    """
    op = OPS.get(name)
    if op is None:
        raise ApiError(404, "NotFound", f"k8semu has no endpoint {name!r} (it has: {', '.join(OPS)})")
    if method != op.method:
        raise ApiError(405, "MethodNotAllowed", f"{PREFIX}{name} takes {op.method}")
    args: Any = query
    if method == "POST":
        try:
            args = json.loads(body or b"{}")
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"the body of the request is not JSON: {exc}") from None
        if not isinstance(args, dict):
            raise bad_request("the body of the request must be a JSON object")
    try:
        return op.run(backend, args)
    except K8semuError as exc:
        raise failure(exc) from None
