"""Field ownership (``metadata.managedFields``) and server-side apply, as kube-apiserver's field
manager does them with sigs.k8s.io/structured-merge-diff: every write records which manager set
which fields; an apply merges the applier's fields into the object, removes the fields it applied
before and no longer applies (when no other manager owns them), and refuses with 409 to change a
field another manager owns unless forced.

Written here because no Python library implements structured-merge-diff. The schema it needs is
the one ``patch`` already keeps for strategic merge: which lists are associative (merge keys)
and which are sets; label selectors are atomic. Paths are tuples of fieldsV1 elements
(``f:name``, ``k:{"name":"web"}``, ``v:"x"``), so managedFields serialise as the API server's.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from emulator.api.patch import MERGE_KEYS, _port_key, strategic_merge

Path = tuple[str, ...]
MISSING = object()
# not fields anyone manages: identity, server-set metadata, and status (set through /status)
# the metadata the API server sets itself (a write's values are ignored), and what names the object
SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
               "deletionTimestamp", "deletionGracePeriodSeconds")
IDENTITY = ("name", "namespace", "generateName")
IGNORED = {("f:apiVersion",), ("f:kind",), ("f:status",)} | {("f:metadata", f"f:{k}") for k in SERVER_META + IDENTITY}
ATOMIC = {"selector", "podSelector", "namespaceSelector"}  # LabelSelector and Service.spec.selector: atomic
PORT_KEYS = {"containerPort": ("containerPort", "protocol"), "port": ("port", "protocol")}


@dataclass
class Entry:
    """One managedFields entry: a manager, its operation and the fields it owns (``fields``
    always holds the parents of each owned leaf too)."""

    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    subresource: str = ""
    fields: set[Path] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource

    def to_wire(self) -> dict:
        out = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """How the API server names a manager in a conflict (its ``printManager``)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version} at {self.time}"
        return text


@dataclass
class Conflict:
    owner: Entry
    path: Path


class ApplyConflict(Exception):
    """Fields the apply would change that other managers own (409 Conflict)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(message(conflicts))
        self.conflicts = conflicts

    def causes(self) -> list[dict]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {c.owner.describe()}",
                 "field": path_text(c.path)} for c in self.conflicts]


def message(conflicts: list[Conflict]) -> str:
    """The API server's wording (fieldmanager's getConflictMessage)."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.owner.describe()}: {path_text(c.path)}"
    by: dict[str, list[str]] = {}
    for c in conflicts:
        by.setdefault(c.owner.describe(), []).append(path_text(c.path))
    lines = []
    for owner in sorted(by):
        lines.append(f"conflicts with {owner}:")
        lines += [f"- {p}" for p in by[owner]]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def path_text(path: Path) -> str:
    """``.spec.template.spec.containers[name="web"].image``, as fieldpath.Path.String()."""
    out = ""
    for el in path:
        kind, rest = el[0], el[2:]
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            keys = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        else:
            out += f"[={rest}]"
    return out


# -- the field set of an object ---------------------------------------------------------------
def _item_key(list_field: str, items: list, item: Any) -> str | None:
    """The path element of one element of an associative list or set; None when the list is atomic."""
    if list_field not in MERGE_KEYS:
        return None
    key = MERGE_KEYS[list_field]
    if key == "":
        return "v:" + json.dumps(item, separators=(",", ":"))
    if not isinstance(item, dict):
        return None
    names = PORT_KEYS[_port_key(items)] if key is None else (key,)
    if names[0] not in item:
        return None
    values = {n: item.get(n, "TCP") for n in names}  # protocol defaults to TCP
    return "k:" + json.dumps(dict(sorted(values.items())), separators=(",", ":"))


def field_set(obj: Any) -> set[Path]:
    """Every path in ``obj`` (leaves and the maps and list elements above them) that a manager
    can own."""
    out: set[Path] = set()
    _walk(obj, (), out)
    return out


def _walk(value: Any, path: Path, out: set[Path]) -> None:
    if path in IGNORED:
        return
    if path:
        out.add(path)
    if isinstance(value, dict) and value and not (path and path[-1][2:] in ATOMIC):
        for k, v in value.items():
            _walk(v, path + (f"f:{k}",), out)
    elif isinstance(value, list) and path and path[-1].startswith("f:"):
        keys = [_item_key(path[-1][2:], value, item) for item in value]
        if value and all(keys):
            for k, item in zip(keys, value):
                _walk(item, path + (k,), out)


def value_at(obj: Any, path: Path) -> Any:
    for i, el in enumerate(path):
        if el.startswith("f:"):
            if not isinstance(obj, dict) or el[2:] not in obj:
                return MISSING
            obj = obj[el[2:]]
        else:
            if not isinstance(obj, list) or i == 0:
                return MISSING
            items, name = obj, path[i - 1][2:]
            obj = next((x for x in items if _item_key(name, items, x) == el), MISSING)
            if obj is MISSING:
                return MISSING
    return obj


def _remove(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        name = path[-2][2:]
        parent[:] = [i for i in parent if _item_key(name, parent, i) != last]


def leaves(fields: set[Path]) -> set[Path]:
    """The paths with nothing under them in ``fields`` (the values a manager asserts)."""
    parents = {p[:i] for p in fields for i in range(1, len(p))}
    return fields - parents


def with_ancestors(paths: Iterable[Path]) -> set[Path]:
    return {p[:i] for p in paths for i in range(1, len(p) + 1)}


def changed(old: Any, new: Any) -> set[Path]:
    """The paths of ``new`` whose value is not ``old``'s (added or changed), with their parents."""
    return with_ancestors(p for p in leaves(field_set(new)) if value_at(old, p) != value_at(new, p))


def fields_v1(fields: set[Path]) -> dict:
    """The fieldsV1 tree: one key per path element; ``.`` marks a list element or map that is
    itself owned and has owned fields under it."""
    tree: dict = {}
    for path in sorted(fields, key=len):
        node = tree
        for el in path:
            node = node.setdefault(el, {})
    _dots(tree, ())
    return tree


def _dots(node: dict, path: Path) -> None:
    for el, child in node.items():
        if child:
            if el[0] in "kv" or el in ("f:labels", "f:annotations"):
                child["."] = {}
            _dots(child, path + (el,))
    if node:
        ordered = dict(sorted(node.items(), key=lambda kv: (kv[0] != ".", kv[0])))
        node.clear()
        node.update(ordered)


# -- operations -------------------------------------------------------------------------------
def record_update(entries: list[Entry], old: dict | None, new: dict, manager: str, api_version: str,
                  now: str, subresource: str = "") -> list[Entry]:
    """After a create, update or non-apply patch: ``manager`` owns what it changed (taken from
    whoever owned it), and fields the write removed are nobody's."""
    taken = field_set(new) if old is None else changed(old, new)
    present = field_set(new)
    out = []
    mine = Entry(manager, "Update", api_version, now, subresource)
    for e in entries:
        if e.key == mine.key:
            mine = Entry(e.manager, e.operation, api_version, now, subresource, set(e.fields))
            continue
        rest = {p for p in leaves(e.fields) if p in present and p not in taken}
        out.append(Entry(e.manager, e.operation, e.api_version, e.time, e.subresource, with_ancestors(rest)))
    mine.fields = {p for p in mine.fields if p in present} | taken
    return [e for e in out + [mine] if leaves(e.fields)]


def apply(entries: list[Entry], live: dict | None, applied: dict, manager: str, api_version: str,
          now: str, force: bool) -> tuple[dict, list[Entry]]:
    """Server-side apply of ``applied`` (the applier's whole intent) by ``manager`` to ``live``
    (None: the object is created). Returns the object to store and the new entries.

    Raises:
        ApplyConflict: ``applied`` changes fields other managers own, and ``force`` is false.
    """
    applied_set = field_set(applied)
    key = (manager, "Apply", "")
    others = [e for e in entries if e.key != key]
    conflicts = []
    for path in sorted(leaves(applied_set)):
        current = value_at(live, path) if live is not None else MISSING
        if current is MISSING or current == value_at(applied, path):
            continue
        conflicts += [Conflict(e, path) for e in others if path in e.fields]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    taken = {c.path for c in conflicts}
    others = [Entry(e.manager, e.operation, e.api_version, e.time, e.subresource,
                    with_ancestors(p for p in leaves(e.fields) if not any(p[:len(t)] == t for t in taken)))
              for e in others]
    merged = strategic_merge(copy.deepcopy(live) if live is not None else {}, applied)
    before = next((e.fields for e in entries if e.key == key), set())
    kept = set().union(*(e.fields for e in others)) if others else set()
    for path in sorted(before - applied_set - kept, key=len, reverse=True):
        _remove(merged, path)
    mine = Entry(manager, "Apply", api_version, now, "", applied_set)
    return merged, [e for e in others if leaves(e.fields)] + [mine]


class Store:
    """Managed fields per object (kind, namespace, name) and the uid they belong to: the API
    server keeps them beside the objects the manager stores, and a deleted and re-created object
    starts afresh. A write puts its entries before the object changes (uid None for a create:
    bound to the uid the object gets when it is first rendered), so the rendering that announces
    the change already carries them, as one event does in kube-apiserver."""

    def __init__(self) -> None:
        # key -> (uid, entries, their managedFields: built once, as every list shows them)
        self._by: dict[tuple[str, str, str], tuple[str | None, list[Entry], list[dict]]] = {}

    def get(self, kind: str, obj: dict) -> list[Entry]:
        meta = obj.get("metadata", {})
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        found = self._by.get(key)
        if found is None:
            return []
        if found[0] is None:
            self._by[key] = (meta.get("uid"), found[1], found[2])
        elif found[0] != meta.get("uid"):
            return []
        return list(found[1])

    def put(self, kind: str, namespace: str, name: str, uid: str | None, entries: list[Entry]) -> Any:
        """Returns what was there, for ``restore`` when the write fails."""
        key = (kind, namespace, name)
        before = self._by.get(key)
        self._by[key] = (uid, entries, [e.to_wire() for e in entries])
        return before

    def restore(self, kind: str, namespace: str, name: str, before: Any) -> None:
        if before is None:
            self._by.pop((kind, namespace, name), None)
        else:
            self._by[(kind, namespace, name)] = before

    def shown(self, kind: str, obj: dict) -> dict:
        """``obj`` with its managedFields (a copy when there are any)."""
        meta = obj.get("metadata", {})
        found = self._by.get((kind, meta.get("namespace", ""), meta.get("name", "")))
        if found is None or not found[1] or (found[0] is not None and found[0] != meta.get("uid")):
            return obj
        if found[0] is None:
            self.get(kind, obj)  # binds the uid
        out = dict(obj)
        out["metadata"] = dict(meta, managedFields=found[2])
        return out
