"""The writes of the API with field ownership: every create, update and patch records its field
manager in ``metadata.managedFields``, and ``PATCH`` with ``application/apply-patch+yaml`` is
server-side apply (``kubectl apply --server-side``, client-go's and the Python client's Apply).

A mixin of ``Handlers`` (emulator/api/handlers.py), which keeps the reads, routing and the
validated write (``_write``) that every operation here ends in.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import yaml

from emulator.api import fieldmanager, status
from emulator.api.patch import PatchError
from emulator.api.status import ApiError
from emulator.cluster.apimeta import timestamp

APPLY_TYPE = "application/apply-patch+yaml"
MAX_MANAGER = 128  # kube-apiserver's limit on a fieldManager's length


def manager_name(query: Mapping[str, str], headers: Mapping[str, str], required: bool = False) -> str:
    """The request's field manager: ``?fieldManager=``, else what kube-apiserver derives from
    the User-Agent (its part before the first ``/``: ``kubectl``, ``OpenAPI-Generator``).

    Raises:
        ApiError: no manager on an apply, or one the API server refuses (422).
    """
    name = query.get("fieldManager", "")
    if not name:
        if required:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                           "is required for apply patch",
                           {"kind": "PatchOptions", "group": "meta.k8s.io", "causes": [
                               {"reason": "FieldValueRequired", "message": "Required value: is required for "
                                                                           "apply patch", "field": "fieldManager"}]})
        name = headers.get("User-Agent", "").split("/")[0][:MAX_MANAGER]
    if len(name) > MAX_MANAGER or not name.isprintable():
        raise ApiError(422, "Invalid", f"fieldManager: Invalid value: {name[:MAX_MANAGER]!r}: must be at most "
                                       f"{MAX_MANAGER} printable characters")
    return name


def without_server_meta(obj: dict) -> dict:
    """``obj`` without the metadata the API server sets itself (uid, resourceVersion,
    creationTimestamp…), in the object and in its pod template: a write's values for them are
    ignored, as kube-apiserver ignores them (clients send them back, e.g. ``creationTimestamp:
    null`` in a template that ``kubectl rollout undo`` copies from a ReplicaSet)."""
    def clean(meta: Any) -> Any:
        return {k: v for k, v in meta.items() if k not in fieldmanager.SERVER_META} if isinstance(meta, dict) else meta
    out = {**obj, "metadata": clean(obj.get("metadata"))} if "metadata" in obj else dict(obj)
    spec = out.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("template"), dict) and "metadata" in spec["template"]:
        out["spec"] = {**spec, "template": {**spec["template"], "metadata": clean(spec["template"]["metadata"])}}
    return out


def _cleaned(obj: dict) -> dict:
    """An object as a write carries it: no status, no metadata the server sets (name and
    namespace stay: they say which object; ``fieldmanager`` does not count them as owned)."""
    return without_server_meta({k: v for k, v in obj.items() if k != "status"})


class Ownership:
    """Requires of the class it is mixed into: ``fields`` (a ``fieldmanager.Store``),
    ``_one``, ``_write`` and ``decode``."""

    fields: fieldmanager.Store

    def _owned_write(self, t: Any, current: dict | None, desired: Any, entries: list, create: bool,
                     dry: bool) -> tuple[dict, int, list[str]]:
        """``_write`` with ``entries`` as the object's managedFields from this write on: put once
        its checks have passed (before, they would change the object's resourceVersion under
        the optimistic-concurrency check) and before it is stored, so the rendering that shows
        the change carries them; taken back if the store refuses it."""
        if dry or not isinstance(desired, dict):
            return self._write(t, desired, create=create, dry=dry)
        res = t.resource
        meta = desired.get("metadata") if isinstance(desired.get("metadata"), dict) else {}
        name = t.name or meta.get("name")
        if not isinstance(name, str) or not name:  # generateName: the name is known afterwards
            return self._write(t, desired, create=create, dry=dry)
        namespace = (t.namespace or meta.get("namespace") or "default") if res.namespaced else ""
        uid = current["metadata"].get("uid") if current is not None else None
        saved: list = []

        def put() -> None:
            saved.append(self.fields.put(res.kind, namespace, name, uid, entries))
        try:
            return self._write(t, desired, create=create, dry=dry, before_store=put)
        except BaseException:
            if saved:
                self.fields.restore(res.kind, namespace, name, saved[0])
            raise

    def _record(self, t: Any, current: dict | None, desired: Any, query: Mapping[str, str],
                headers: Mapping[str, str], create: bool, dry: bool) -> tuple[dict, int, list[str]]:
        """A create, update or non-apply patch: its manager takes the fields it changed."""
        if not isinstance(desired, dict):
            return self._write(t, desired, create=create, dry=dry)
        manager = manager_name(query, headers)
        old = _cleaned(current) if current is not None else None
        entries = fieldmanager.record_update(self.fields.get(t.resource.kind, current) if current else [],
                                             old, _cleaned(desired), manager, t.resource.group_version,
                                             timestamp(time.time()))
        return self._owned_write(t, current, desired, entries, create, dry)

    def _server_side_apply(self, t: Any, query: Mapping[str, str], headers: Mapping[str, str],
                           body: bytes, dry: bool) -> tuple[dict, int, list[str]]:
        """``PATCH`` with ``application/apply-patch+yaml``: creates the object when it does not
        exist, else merges the applier's intent (see ``fieldmanager.apply``); 409 with the
        conflicting fields and their managers unless ``force=true``."""
        manager = manager_name(query, headers, required=True)
        try:
            applied = yaml.safe_load(body.decode())
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise status.bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(applied, dict):
            raise status.bad_request("the body of an apply patch must be an object")
        res = t.resource
        applied = _cleaned({"apiVersion": res.group_version, "kind": res.kind, **applied})
        try:
            current = self._one(t)
        except ApiError as exc:
            if exc.code != 404:
                raise
            current = None
        live = _cleaned(current) if current is not None else None
        entries = self.fields.get(res.kind, current) if current is not None else []
        try:
            merged, entries = fieldmanager.apply(entries, live, applied, manager, res.group_version,
                                                 timestamp(time.time()), force=query.get("force") == "true")
        except fieldmanager.ApplyConflict as exc:
            raise ApiError(409, "Conflict", str(exc), {"causes": exc.causes()}) from None
        except PatchError as exc:  # e.g. a container without its name, which the merge keys on
            raise ApiError(422, "Invalid", str(exc)) from None
        return self._owned_write(t, current, merged, entries, create=current is None, dry=dry)

    def _record_scale(self, t: Any, current: dict, replicas: int, query: Mapping[str, str],
                      headers: Mapping[str, str]) -> list:
        """The entries after a write through the scale subresource (``kubectl scale``): its
        manager owns ``spec.replicas`` with subresource ``scale``."""
        after = _cleaned(current)
        after["spec"] = dict(after.get("spec", {}), replicas=replicas)
        return fieldmanager.record_update(self.fields.get(t.resource.kind, current), _cleaned(current), after,
                                          manager_name(query, headers), t.resource.group_version,
                                          timestamp(time.time()), subresource="scale")
