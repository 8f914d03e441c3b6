"""What each API request does, apart from HTTP: routing a path to a resource, and get, list,
create, update, patch and delete through the manager's typed requests (``Backend``).

Writes go through the same parser and validation as manifests given to ``k8semu apply`` (the
spec layer), so the API refuses exactly what the spec loader refuses, with the same messages,
as 422 Invalid with one cause per field; fields accepted but not emulated come back as
``Warning`` headers, which kubectl prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import yaml

from emulator.api import authz, fieldmanager, nodewrites, patch, protobuf, resources, status, tables
from emulator.api.authz import User
from emulator.api.backend import Backend
from emulator.api.resources import Resource
from emulator.api.ownership import APPLY_TYPE, Ownership, without_server_meta
from emulator.api.status import ApiError
from emulator.api.watch import Hub
from emulator.cluster.apimeta import timestamp
from emulator.cluster import controllers
from emulator.errors import K8semuError, NotFoundError, SpecError, TooManyRequestsError
from emulator.model.labelquery import parse_label_query
from emulator.model.meta import RBAC_KINDS
from emulator.model.workload import SCALABLE
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object

FIELDS = {"metadata.name": lambda o: o["metadata"]["name"],
          "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
          "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
          "status.phase": lambda o: o.get("status", {}).get("phase", ""),
          "involvedObject.name": lambda o: o.get("involvedObject", {}).get("name", ""),
          "involvedObject.kind": lambda o: o.get("involvedObject", {}).get("kind", ""),
          "involvedObject.namespace": lambda o: o.get("involvedObject", {}).get("namespace", ""),
          "involvedObject.uid": lambda o: o.get("involvedObject", {}).get("uid", ""),
          "type": lambda o: o.get("type", ""),
          "reason": lambda o: o.get("reason", ""),  # the Event fields kube-apiserver selects by
          "reportingComponent": lambda o: o.get("reportingComponent", ""),
          "source": lambda o: o.get("source", {}).get("component", "")}


@dataclass(frozen=True)
class Target:
    """A request path, parsed: a discovery document, or a resource (and namespace, name); and
    who sent it, whose grants a Role or binding written may not exceed (authz.check_grant)."""

    group: str
    version: str
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    discovery: bool = False
    user: User | None = None


CALICO_READ_ONLY = ("k8semu writes Calico's IPPools, BGPConfigurations and BGPPeers; the blocks, affinities "
                    "and handles are its IPAM's, the other kinds what calico-node runs with")


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def parse_fields(query: str) -> list[tuple[str, bool, str]]:
    """``a=b,c!=d`` -> [(field, equal, value)].

    Raises:
        ApiError: a field this kind cannot be selected by (400, as the API server says it).
    """
    out = []
    for term in filter(None, query.split(",")):
        for op, equal in (("!=", False), ("==", True), ("=", True)):
            if op in term:
                key, value = term.split(op, 1)
                break
        else:
            raise status.bad_request(f'invalid selector: \'{query}\'; can\'t understand \'{term}\'')
        if key not in FIELDS:
            raise status.bad_request(f'field label not supported: {key}')
        out.append((key, equal, value))
    return out


def event_object(e: dict, index: int) -> dict:
    """An Event of the cluster as core/v1 shows it (``kubectl get events``)."""
    ns = e["namespace"] or "default"
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{e['name']}.{index:016x}", "namespace": ns,
                         "creationTimestamp": timestamp(e["first"])},
            "involvedObject": {"kind": e["kind"], "namespace": e["namespace"], "name": e["name"],
                               "uid": e.get("uid", "")},
            "reason": e["reason"], "message": e["message"], "type": e["type"], "count": e["count"],
            "firstTimestamp": timestamp(e["first"]), "lastTimestamp": timestamp(e["last"]),
            "source": {"component": e["source"]}, "reportingComponent": e["source"]}


class Handlers(Ownership):
    def __init__(self, backend: Backend, cni: str = "openflow") -> None:
        self.backend = backend
        self.cni = cni  # the cluster's data plane: which resources it serves (resources.served)
        self.fields = fieldmanager.Store()
        self.hub = Hub(self.render, self.render_one)

    def render(self, kind: str) -> list[dict]:
        """Every object of ``kind`` in every namespace, as the API shows it (the hub's source)."""
        if kind == "Event":
            return [event_object(e, i) for i, e in enumerate(self.backend.event_records(None))]
        return [self.fields.shown(kind, o) for o in self.backend.objects(kind, None)]

    def render_one(self, kind: str, namespace: str, name: str) -> dict | None:
        """One object as the API shows it (None: there is none), for a request that names it."""
        found = self.backend.objects(kind, namespace or None, name)
        return self.fields.shown(kind, found[0]) if found else None

    # -- routing ----------------------------------------------------------------------------
    def route(self, path: str) -> Target:
        """Raises: ApiError (404) for a path the API does not serve."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            group, rest = parts[1], parts[2:]
        else:
            raise _not_found()
        if not rest:
            raise _not_found()
        version, rest = rest[0], rest[1:]
        if not resources.in_group_version(group, version, self.cni):
            raise _not_found()
        if not rest:
            return Target(group, version, discovery=True)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = resources.find(group, version, rest[0], self.cni)
        if res is None or len(rest) > 3 or (namespace is not None and not res.namespaced):
            raise _not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return Target(group, version, res, namespace, name, sub)

    def discovery(self, target: Target) -> dict:
        gv = f"{target.group}/{target.version}" if target.group else target.version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [e for r in resources.in_group_version(target.group, target.version, self.cni)
                              for e in r.discovery()]}

    # -- verbs ------------------------------------------------------------------------------
    def serve(self, method: str, t: Target, query: dict, headers: Mapping[str, str],
              body: bytes) -> tuple[dict, int, list[str]]:
        """One request: (response body, HTTP code, warnings). Errors become Status bodies."""
        res = t.resource
        try:
            if t.subresource == "scale" and res.kind in SCALABLE:
                return self._scale(method, t, query, body, headers), 200, []
            if t.subresource == "eviction" and res.kind == "Pod":
                if method != "POST":
                    raise status.method_not_allowed("an eviction is created (POST)")
                return self._evict(t, self.decode(body, headers)), 201, []
            if res.kind == "Node" and t.name and method in ("PATCH", "PUT"):
                return self._node_write(method, t, body, headers), 200, []
            if t.subresource:
                raise status.method_not_allowed(f"the subresource {t.subresource!r} is not served yet")
            if method == "GET":
                return self._get(t, query, headers.get("Accept", "")), 200, []
            if method not in res.verbs_http():
                why = f": {CALICO_READ_ONLY}" if res.cni == "calico" else ""
                raise status.method_not_allowed(f"the server does not allow this method on the requested "
                                                f"resource ({res.plural}){why}")
            if method == "DELETE":
                return self._delete(t, query, body, headers), 200, []
            dry = query.get("dryRun") == "All"
            if method == "POST":
                return self._record(t, None, self.decode(body, headers), query, headers, create=True, dry=dry)
            if method == "PUT":
                return self._record(t, self._one(t), self.decode(body, headers), query, headers, create=False,
                                    dry=dry)
            if method == "PATCH" and headers.get("Content-Type", "").split(";")[0].strip() == APPLY_TYPE:
                return self._server_side_apply(t, query, headers, body, dry)
            if method == "PATCH":
                return self._patch(t, query, body, headers, dry=dry)
            raise status.method_not_allowed(f"method {method} is not served")
        except ApiError as exc:
            return exc.body(), exc.code, []

    def _items(self, t: Target, namespace: str | None) -> tuple[list[dict], str]:
        """The target kind's objects (in ``namespace``, or all) and the list's resourceVersion."""
        items, rv = self.hub.list(t.resource.kind)
        if namespace is not None:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        return items, rv

    def selector(self, t: Target, query: dict) -> Callable[[dict], bool]:
        """What a list or watch request selects: namespace, label and field selectors.

        Raises:
            ApiError: a selector the API server would refuse (400).
        """
        try:
            labels = parse_label_query(query.get("labelSelector", ""))
        except ValueError as exc:
            raise status.bad_request(f"unable to parse requirement: {exc}") from None
        fields = parse_fields(query.get("fieldSelector", ""))
        namespace = t.namespace if t.resource.namespaced else None
        if t.name:
            fields.append(("metadata.name", True, t.name))
        return lambda o: ((namespace is None or o["metadata"].get("namespace") == namespace)
                          and labels.matches(o["metadata"].get("labels", {}))
                          and all((FIELDS[k](o) == v) == eq for k, eq, v in fields))

    def _one(self, t: Target) -> dict:
        res = t.resource
        ns = t.namespace if res.namespaced else ""
        found = self.hub.get(res.kind, ns or "", t.name)
        if found is None:
            raise status.not_found(res.plural, t.name, res.group)
        return found

    def _get(self, t: Target, query: dict, accept: str) -> dict:
        res = t.resource
        table = "as=Table" in accept
        include = query.get("includeObject", "Metadata")
        if t.name:
            obj = self._one(t)
            return tables.as_table(res.kind, [obj], include) if table else obj
        selected = self.selector(t, query)
        items, rv = self._items(t, t.namespace if res.namespaced else None)
        items = [o for o in items if selected(o)]
        if table:
            out = tables.as_table(res.kind, items, include)
            out["metadata"]["resourceVersion"] = rv
            return out
        return {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": {"resourceVersion": rv},
                "items": items}

    def _delete_options(self, query: dict, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str, bool]:
        """(gracePeriodSeconds or None, propagationPolicy, dry run) from the DeleteOptions a
        DELETE carries in its body or its query (kubectl sends the body).

        Raises:
            ApiError: options the API server refuses (400, 422).
        """
        options = self.decode(body, headers) if body.strip() else {}
        if not isinstance(options, dict):
            raise status.bad_request("the body of a delete must be DeleteOptions")
        grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = options.get("propagationPolicy", query.get("propagationPolicy")) or "Background"
        dry = options.get("dryRun") == ["All"] or query.get("dryRun") == "All"
        if options.get("orphanDependents") is True:  # the deprecated spelling of Orphan
            policy = "Orphan"
        try:
            grace = None if grace is None else int(grace)
        except (TypeError, ValueError):
            raise status.bad_request(f"gracePeriodSeconds: not an integer: {grace!r}") from None
        if grace is not None and grace < 0:
            grace = 1  # the API server turns a negative grace period into 1 second
        if policy not in controllers.PROPAGATION:
            why = f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
            raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: {why}',
                           {"kind": "DeleteOptions", "group": "meta.k8s.io", "causes": [
                               {"reason": "FieldValueNotSupported", "field": "propagationPolicy", "message": why}]})
        return grace, policy, dry

    def _delete(self, t: Target, query: dict, body: bytes, headers: Mapping[str, str]) -> dict:
        """One object, with what it owns unless Orphan; or, on a collection, every object the
        selectors pick (deletecollection), answered as a list of them."""
        res = t.resource
        grace, policy, dry = self._delete_options(query, body, headers)
        if not t.name:
            if res.namespaced and not t.namespace:  # kube-apiserver serves it per namespace only
                raise status.method_not_allowed(f"the server does not allow this method on the requested "
                                                f"resource ({res.plural})")
            selected = self.selector(t, query)
            items = [o for o in self._items(t, t.namespace if res.namespaced else None)[0] if selected(o)]
            for obj in items if not dry else ():
                try:
                    self.backend.delete(res.kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"],
                                        grace, policy)
                except NotFoundError:  # gone with an owner deleted before it
                    continue
            return {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": {}, "items": items}
        obj = self._one(t)
        if dry:
            return obj
        try:
            self.backend.delete(res.kind, t.namespace or "", t.name, grace, policy)
        except K8semuError as exc:
            raise status.from_error(exc, res.kind, res.plural, t.name, res.group) from None
        try:  # still there (a terminating pod, an owner deleted in the foreground): as it is now
            return self._one(t)
        except ApiError:
            return obj

    @staticmethod
    def decode(body: bytes, headers: Mapping[str, str]) -> Any:
        if headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            try:
                return protobuf.read_object(body)
            except protobuf.ProtobufError as exc:
                raise ApiError(415, "UnsupportedMediaType", f"the protobuf body cannot be read: {exc}") from None
        try:
            text = body.decode("utf-8")
            if "yaml" in headers.get("Content-Type", ""):
                return yaml.safe_load(text)
            return json.loads(text)
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise status.bad_request(f"the body of the request was in an unknown format: {exc}") from None

    def _without_current_owners(self, t: Target, name: Any, data: dict) -> dict:
        """``data`` without ``metadata.ownerReferences`` when they are the stored object's: what
        the controllers wrote, sent back by a client that read the object (``kubectl replace``
        of a ReplicaSet's pod, ``kubectl label``'s patch), changes nothing and is not warned of.
        Other owner references are the user's: accepted with the not-emulated warning."""
        meta = data.get("metadata")
        if not isinstance(meta, dict) or "ownerReferences" not in meta or not isinstance(name, str):
            return data
        try:
            current = self._one(Target(t.group, t.version, t.resource, t.namespace, name))
        except ApiError:
            return data
        if current["metadata"].get("ownerReferences") != meta["ownerReferences"]:
            return data
        return {**data, "metadata": {k: v for k, v in meta.items() if k != "ownerReferences"}}

    def _parse(self, t: Target, data: Any) -> tuple[Any, list[str]]:
        """The request body as one model object of the target's kind.

        Raises:
            ApiError: not a mapping (400), another kind or namespace than the URL's (400), or
                invalid (422, with the spec layer's problems as causes).
        """
        res = t.resource
        if not isinstance(data, dict):
            raise status.bad_request("the body of the request must be a JSON object")
        name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
        data = {"apiVersion": res.group_version, "kind": res.kind, **data}  # the URL's, when the body has none
        data.pop("status", None)  # the API server ignores the status a create or update carries
        data = without_server_meta(data)
        data = self._without_current_owners(t, name, data)
        if data.get("kind") != res.kind or data.get("apiVersion") != res.group_version:
            raise status.bad_request(f"the API version in the data ({data.get('apiVersion')}) does not match "
                                     f"the expected API version ({res.group_version}) or kind "
                                     f"({data.get('kind')} is not {res.kind})")
        body_ns = (data.get("metadata") or {}).get("namespace")
        if res.namespaced and body_ns and t.namespace and body_ns != t.namespace:
            raise status.bad_request("the namespace of the provided object does not match the namespace "
                                     "sent on the request")
        text = json.dumps(data, indent=1)  # one field per line: problems point at their field
        try:
            docs = load_text(text, "<request>")
            objs, problems, warnings = parse_object(docs[0], t.namespace or "default")
        except SpecError as exc:
            raise status.invalid(res.kind, str(name), res.group, exc) from None
        if problems:
            raise status.invalid(res.kind, str(name), res.group, SpecError(problems))
        if len(objs) != 1:
            raise status.bad_request(f"{res.kind} is not stored by this cluster")
        return objs[0], [w.split(": ", 1)[-1] for w in warnings]

    def _write(self, t: Target, data: Any, create: bool, dry: bool = False,
               before_store: Callable[[], None] | None = None) -> tuple[dict, int, list[str]]:
        """Create or update from a request body: validated by the spec layer, refused with 409
        when it names a resourceVersion that is no longer the object's (optimistic concurrency),
        and with ``dry`` (``dryRun=All``) checked but not stored (the answer is what was sent).
        ``before_store`` runs once every check has passed, just before the object is stored."""
        res = t.resource
        obj, warnings = self._parse(t, data)
        if not create and obj.meta.name != t.name:
            raise status.bad_request("the name of the object does not match the name on the URL")
        if t.user is not None and res.kind in RBAC_KINDS:
            authz.check_grant(self.backend, t.user, obj)
        sent_rv = (data.get("metadata") or {}).get("resourceVersion") if isinstance(data, dict) else None
        if sent_rv or (create and dry):
            here = Target(t.group, t.version, res, obj.meta.namespace or None, obj.meta.name)
            try:
                current = self._one(here)
            except ApiError:
                current = None
            if create and current is not None:
                raise status.already_exists(res.plural, obj.meta.name, res.group)
            if sent_rv and current is not None and sent_rv != current["metadata"]["resourceVersion"]:
                raise status.conflict(res.plural, obj.meta.name, res.group)
        if dry:
            shown = json.loads(json.dumps(data))
            if res.namespaced:
                shown.setdefault("metadata", {})["namespace"] = obj.meta.namespace
            return shown, 201 if create else 200, warnings
        if before_store is not None:
            before_store()
        try:
            (self.backend.create if create else self.backend.apply)([obj])
        except K8semuError as exc:
            raise status.from_error(exc, res.kind, res.plural, obj.meta.name, res.group) from None
        made = Target(t.group, t.version, res, obj.meta.namespace or None, obj.meta.name)
        return self._one(made), 201 if create else 200, warnings

    def _scale(self, method: str, t: Target, query: dict, body: bytes, headers: Mapping[str, str]) -> dict:
        """The ``scale`` subresource (``kubectl scale``): an autoscaling/v1 Scale."""
        obj = self._one(t)
        scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
                 "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                              "creationTimestamp") if k in obj["metadata"]},
                 "spec": {"replicas": obj["spec"]["replicas"]},
                 "status": {"replicas": obj["status"].get("replicas", 0),
                            "selector": ",".join(f"{k}={v}" for k, v in
                                                 obj["spec"]["selector"].get("matchLabels", {}).items())}}
        if method == "GET":
            return scale
        data = self.decode(body, headers if method == "PUT" else {"Content-Type": "application/json"})
        kind = headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if method == "PUT":
                wanted = data
            elif kind == "application/json-patch+json":
                wanted = patch.json_patch(scale, data)
            else:
                wanted = patch.merge_patch(scale, data)
        except patch.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        replicas = (wanted.get("spec") or {}).get("replicas") if isinstance(wanted, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
                                           f'{replicas!r}: must be greater than or equal to 0')
        before = self.fields.put(t.resource.kind, t.namespace or "default", t.name, obj["metadata"].get("uid"),
                                 self._record_scale(t, obj, replicas, query, headers))
        try:
            self.backend.scale(t.resource.kind, t.namespace, t.name, replicas)
        except K8semuError as exc:
            self.fields.restore(t.resource.kind, t.namespace or "default", t.name, before)
            raise status.from_error(exc, t.resource.kind, t.resource.plural, t.name, t.resource.group) from None
        scale["spec"]["replicas"] = replicas
        return scale

    def _patch(self, t: Target, query: dict, body: bytes, headers: Mapping[str, str],
               dry: bool = False) -> tuple[dict, int, list[str]]:
        current = self._one(t)
        base = without_server_meta({k: v for k, v in current.items() if k != "status"})
        return self._record(t, current, self._patched(base, body, headers), query, headers, create=False, dry=dry)

    def _patched(self, base: dict, body: bytes, headers: Mapping[str, str]) -> Any:
        """``base`` with the request's patch applied, by the patch type its Content-Type names.

        Raises:
            ApiError: an unknown patch type (415) or a patch that does not apply (422).
        """
        kind = headers.get("Content-Type", "").split(";")[0].strip()
        data = self.decode(body, {"Content-Type": "application/json"})
        try:
            if kind == "application/json-patch+json":
                merged = patch.json_patch(base, data)
            elif kind == "application/merge-patch+json":
                merged = patch.merge_patch(base, data)
            elif kind == "application/strategic-merge-patch+json":
                merged = patch.strategic_merge(base, data)
            else:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                                                            "format - accepted media types include: "
                                                            "application/json-patch+json, "
                                                            "application/merge-patch+json, "
                                                            "application/strategic-merge-patch+json, "
                                                            "application/apply-patch+yaml")
        except patch.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        return merged

    def _evict(self, t: Target, data: Any) -> dict:
        """``POST pods/NAME/eviction`` (policy/v1 Eviction): 201 and a Success Status, or 429
        with the budget's refusal (kubectl drain retries it every 5 s)."""
        if not isinstance(data, dict) or data.get("kind", "Eviction") != "Eviction":
            raise status.bad_request("the body of an eviction must be a policy/v1 Eviction")
        named = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
        if named not in (None, t.name):
            raise status.bad_request(f'name in URL does not match name in Eviction object: {named} != {t.name}')
        try:
            self.backend.evict(t.namespace or "default", t.name)
        except TooManyRequestsError as exc:
            raise ApiError(429, "TooManyRequests", str(exc),
                           {"causes": [{"reason": "DisruptionBudget", "message": str(exc)}]}) from None
        except K8semuError as exc:
            raise status.from_error(exc, "Pod", "pods", t.name) from None
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _node_write(self, method: str, t: Target, body: bytes, headers: Mapping[str, str]) -> dict:
        """A change to a Node: ``kubectl cordon``/``uncordon`` (``spec.unschedulable``), ``kubectl
        label``/``annotate`` (its labels and annotations). The nodes come from the cluster spec,
        so nothing else of them may change: such a request is 422 and changes nothing."""
        current = self._one(t)
        base = without_server_meta({k: v for k, v in current.items() if k != "status"})
        wanted = self.decode(body, headers) if method == "PUT" else self._patched(base, body, headers)
        unschedulable, labels, annotations = nodewrites.change(t.name, base, wanted)
        try:
            if (labels, annotations) != (base["metadata"].get("labels") or {}, base["metadata"].get("annotations") or {}):
                self.backend.node_metadata(t.name, labels, annotations)
            self.backend.cordon(t.name, unschedulable)
        except K8semuError as exc:
            raise status.from_error(exc, "Node", "nodes", t.name) from None
        return self._one(t)
