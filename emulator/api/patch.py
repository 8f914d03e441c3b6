"""PATCH bodies applied to an object: JSON patch (RFC 6902, the ``jsonpatch`` library), JSON
merge patch (RFC 7386) and Kubernetes' strategic merge patch.

The strategic merge patch is written here because no maintained Python library implements it:
it follows k8s.io/apimachinery/pkg/util/strategicpatch for what kubectl sends (``kubectl
apply``, ``set image``, ``scale``, ``label``): maps merge, ``null`` deletes, lists with a patch
merge key (``MERGE_KEYS``, the ``patchMergeKey`` tags of core/v1 and apps/v1) merge element by
element, other lists are replaced, and the directives ``$patch: replace|delete|merge``,
``$retainKeys``, ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>`` are obeyed.
"""
from __future__ import annotations

import copy
from typing import Any

import jsonpatch

# list field name -> the key its elements merge on (patchStrategy=merge in the Go types)
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "env": "name", "imagePullSecrets": "name", "hostAliases": "ip",
    "conditions": "type", "ownerReferences": "uid", "topologySpreadConstraints": "topologyKey",
    "ports": None,  # containers' ports merge on containerPort, Services' on port: see _port_key
    "finalizers": "",  # a set of strings (patchStrategy=merge on a primitive list)
}


class PatchError(ValueError):
    """The patch cannot be applied (the API server answers 422 or 400 with this message)."""


def json_patch(obj: dict, ops: Any) -> dict:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(obj, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _port_key(items: list) -> str:
    sample = next((i for i in items if isinstance(i, dict)), {})
    return "containerPort" if "containerPort" in sample else "port"


def strategic_merge(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch to ``target`` (neither is modified).

    Raises:
        PatchError: a directive or a list element the patch cannot apply.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}")
    out = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [x for x in out[field] if x not in value]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(out.get(key), list):
            out[key] = _merge_list(out[key], value, key)
        else:
            out[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(current: list, patch: list, field: str) -> list:
    key = MERGE_KEYS[field]
    if key == "":  # a set of primitives: union, in order
        return list(current) + [x for x in patch if x not in current]
    if key is None:
        key = _port_key(current + patch)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = [copy.deepcopy(c) for c in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"{field}: every element of a merged list needs the merge key {key!r}")
        at = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if at is not None:
                del out[at]
            continue
        if at is None:
            out.append(strategic_merge({}, item))
        else:
            out[at] = strategic_merge(out[at], item)
    return out
