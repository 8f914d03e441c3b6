"""A pod's ``volumes`` and each container's ``volumeMounts`` -> model, with the API server's checks
(pkg/apis/core/validation: ValidateVolumes, validateKeyToPath, validateDownwardAPIVolumeFile,
validateProjectionSources, ValidateVolumeMounts) in its words, and k8semu's own on where a
volume may be mounted.

k8semu's own checks, because a pod's filesystem here is the machine's, read-only, rather than an
image: a mountPath must be absolute and normalised (no ``..``, no NUL), and may not be ``/`` or lie
under /proc, /sys or /dev (except /dev/shm), which the pod's own filesystems replace; and since the
containers of a pod share one mount namespace here, two containers may not mount different
things at the same path.
"""
from __future__ import annotations

import posixpath

from emulator.model import quantity, validation
from emulator.model.volume import (DEFAULT_MODE, DOWNWARD_FIELDS, RESOURCE_FIELDS, SOURCE_KINDS, FieldFile, KeyFile,
                                   Projection, Volume, VolumeMount)
from emulator.spec.configmaps import key_problem
from emulator.spec.env import subscripted
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

EMULATED = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")
NOT_EMULATED = ("hostPath", "persistentVolumeClaim", "nfs", "csi", "ephemeral", "iscsi", "gitRepo", "image",
                "awsElasticBlockStore", "gcePersistentDisk", "azureDisk", "azureFile", "cephfs", "cinder", "fc",
                "flexVolume", "flocker", "glusterfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd",
                "scaleIO", "storageos", "vsphereVolume")
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
MOUNT_KNOWN = {"mountPropagation", "subPathExpr", "recursiveReadOnly"}
FORBIDDEN_MOUNT_ROOTS = ("/proc", "/sys", "/dev")
MIN_TOKEN_EXPIRATION = 600


def descending_path_problem(path: str) -> str | None:
    """validateLocalDescendingPath: relative, no ``..`` element."""
    if path.startswith("/"):
        return "must be a relative path"
    if ".." in path.split("/"):
        return "must not contain '..'"
    if "\0" in path:
        return "must not contain a NUL character"
    return None


def non_reserved_path_problem(path: str) -> str | None:
    """validateLocalNonReservedPath: a descending path that does not start with ``..`` either
    (the atomic writer's own entries, ``..data`` and its timestamped folders)."""
    if not path:
        return "Required value"
    return descending_path_problem(path) or ("must not start with '..'" if path.startswith("..") else None)


def mount_path_problem(path: str) -> str | None:
    """k8semu's rule for a mountPath (see the module's docstring)."""
    if not path.startswith("/"):
        return "must be an absolute path (k8semu: a pod's filesystem is the machine's, so a mount needs a place in it)"
    if "\0" in path or ".." in path.split("/"):
        return "must not contain '..'"
    normal = posixpath.normpath(path)
    if normal == "/":
        return "may not be '/' (k8semu: the pod's root is the machine's, read-only)"
    for root in FORBIDDEN_MOUNT_ROOTS:
        if (normal == root or normal.startswith(root + "/")) and not (normal + "/").startswith("/dev/shm/"):
            return f"may not be under {root} (k8semu: the pod's own {root} is there)"
    return None


def _mode(r: Reader, path: PathKey) -> int | None:
    mode = r.typed(path, int, None)
    if mode is not None and not 0 <= mode <= 0o777:
        r.fail(path, f"Invalid value: {mode}: {FILE_MODE_ERROR}")
        return None
    return mode


def _key_items(r: Reader, path: PathKey) -> tuple[KeyFile, ...]:
    items = []
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"key", "path", "mode"}, required=("key", "path"))
        key = r.string(p + ("key",), "") or ""
        target = r.string(p + ("path",), "") or ""
        for field_name, why in (("key", key_problem(key) if key else None),
                                ("path", non_reserved_path_problem(target) if target else None)):
            if why:
                r.fail(p + (field_name,), f"Invalid value: {key if field_name == 'key' else target!r}: {why}")
        items.append(KeyFile(key, target, _mode(r, p + ("mode",))))
    return tuple(items)


def _object_source(r: Reader, path: PathKey, kind: str, name_field: str, extra: set[str]) -> Projection:
    r.mapping(path, {name_field, "items", "optional", *extra})
    name = r.string(path + (name_field,), "") or ""
    if not name:
        r.fail(path + (name_field,), "Required value")
    elif why := validation.check_dns1123_subdomain(name):
        r.fail(path + (name_field,), why)
    return Projection(kind, name, _key_items(r, path + ("items",)), r.typed(path + ("optional",), bool, False))


def _field_items(r: Reader, path: PathKey, containers: set[str]) -> tuple[FieldFile, ...]:
    items = []
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"path", "fieldRef", "resourceFieldRef", "mode"}, required=("path",))
        target = r.string(p + ("path",), "") or ""
        if target and (why := non_reserved_path_problem(target)):
            r.fail(p + ("path",), f"Invalid value: {target!r}: {why}")
        field_path, resource, container, divisor = "", "", "", "1"
        if r.get(p + ("fieldRef",)) is not None and r.get(p + ("resourceFieldRef",)) is not None:
            r.fail(p, 'Invalid value: "resource": fieldRef and resourceFieldRef can not be specified simultaneously')
        elif r.get(p + ("fieldRef",)) is not None:
            r.mapping(p + ("fieldRef",), {"fieldPath", "apiVersion"}, required=("fieldPath",))
            field_path = r.string(p + ("fieldRef", "fieldPath"), "") or ""
            if field_path not in DOWNWARD_FIELDS and not subscripted(field_path):
                r.fail(p + ("fieldRef", "fieldPath"), f"Unsupported value: {field_path!r}: supported values: "
                       + ", ".join(f'"{f}"' for f in DOWNWARD_FIELDS) + did_you_mean(field_path, DOWNWARD_FIELDS))
        elif r.get(p + ("resourceFieldRef",)) is not None:
            q = p + ("resourceFieldRef",)
            r.mapping(q, {"containerName", "resource", "divisor"}, required=("resource",))
            resource = r.string(q + ("resource",), "") or ""
            container = r.string(q + ("containerName",), "") or ""
            divisor = str(r.get(q + ("divisor",), "1"))
            if resource and resource not in RESOURCE_FIELDS:
                r.fail(q + ("resource",), f"Unsupported value: {resource!r}: supported values: "
                       + ", ".join(f'"{f}"' for f in RESOURCE_FIELDS))
            if not container:
                r.fail(q + ("containerName",), "Required value")
            elif container not in containers:
                r.fail(q + ("containerName",), f'Invalid value: "{container}": must be the name of a container')
            try:
                if quantity.parse(divisor) <= 0:
                    raise quantity.QuantityError("must be greater than zero")
            except quantity.QuantityError as exc:
                r.fail(q + ("divisor",), f"Invalid value: {divisor!r}: {exc}")
        else:
            r.fail(p, "Required value: one of fieldRef and resourceFieldRef is required")
        items.append(FieldFile(target, field_path, resource, container, divisor, _mode(r, p + ("mode",))))
    return tuple(items)


def _projected(r: Reader, path: PathKey, containers: set[str]) -> tuple[Projection, ...]:
    r.mapping(path, {"sources", "defaultMode"})
    sources: list[Projection] = []
    for i, _ in enumerate(r.seq(path + ("sources",))):
        p = path + ("sources", i)
        given = [k for k in (r.get(p, {}) or {}) if k in SOURCE_KINDS or k in ("clusterTrustBundle", "podCertificate")]
        r.mapping(p, set(SOURCE_KINDS), {"clusterTrustBundle", "podCertificate"})
        if len(given) != 1:
            r.fail(p, "may not specify more than 1 volume type per source" if given else
                   "Required value: must specify exactly 1 volume type")
            continue
        q = p + (given[0],)
        if given[0] == "configMap":
            sources.append(_object_source(r, q, "ConfigMap", "name", set()))
        elif given[0] == "secret":
            sources.append(_object_source(r, q, "Secret", "name", set()))
        elif given[0] == "downwardAPI":
            r.mapping(q, {"items"})
            sources.append(Projection("DownwardAPI", fields=_field_items(r, q + ("items",), containers)))
        elif given[0] == "serviceAccountToken":
            r.mapping(q, {"path", "audience", "expirationSeconds"}, required=("path",))
            target = r.string(q + ("path",), "") or ""
            if target and (why := non_reserved_path_problem(target)):
                r.fail(q + ("path",), f"Invalid value: {target!r}: {why}")
            seconds = r.integer(q + ("expirationSeconds",), 3600, MIN_TOKEN_EXPIRATION, 2**32) or 3600
            sources.append(Projection("ServiceAccountToken", path=target, audience=r.string(q + ("audience",), "") or "",
                                      expiration=seconds))
    seen: set[str] = set()
    for i, source in enumerate(sources):  # validateProjectionSources: no path twice
        paths = [x.path for x in source.items] + [f.path for f in source.fields] + ([source.path] if source.path else [])
        for target in paths:
            if target in seen:
                r.fail(path + ("sources", i), f'Invalid value: "{target}": conflicting duplicate paths')
            seen.add(target)
    return tuple(sources)


def parse_volumes(r: Reader, path: PathKey, containers: set[str]) -> tuple[Volume, ...]:
    """``spec.volumes`` (``containers``: the pod's container names, for resourceFieldRef)."""
    out: list[Volume] = []
    names: set[str] = set()
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        raw = r.mapping(p, {"name", *EMULATED, *NOT_EMULATED}, required=("name",))
        name = r.string(p + ("name",), "", check=validation.check_dns1123_label) or ""
        if name in names:
            r.fail(p + ("name",), f'Duplicate value: "{name}"')
        names.add(name)
        types = [k for k in raw if k != "name"] or ["emptyDir"]  # SetDefaults_Volume
        if len(types) != 1:
            r.fail(p, "may not specify more than 1 volume type")
            continue
        kind, q = types[0], p + (types[0],)
        mode = _mode(r, q + ("defaultMode",))
        default_mode = DEFAULT_MODE if mode is None else mode
        if kind == "emptyDir":
            r.mapping(q, {"medium", "sizeLimit"})
            medium = r.string(q + ("medium",), "") or ""
            if medium not in ("", "Memory"):
                r.fail(q + ("medium",), f"Unsupported value: {medium!r}: supported values: \"\", \"Memory\"")
            if r.get(q + ("sizeLimit",)) is not None:
                try:
                    quantity.bytes_of(r.get(q + ("sizeLimit",)))
                except quantity.QuantityError as exc:
                    r.fail(q + ("sizeLimit",), str(exc))
            out.append(Volume(name, kind, medium=medium))
        elif kind == "configMap":
            out.append(Volume(name, kind, (_object_source(r, q, "ConfigMap", "name", {"defaultMode"}),), default_mode))
        elif kind == "secret":
            out.append(Volume(name, kind, (_object_source(r, q, "Secret", "secretName", {"defaultMode"}),),
                              default_mode))
        elif kind == "downwardAPI":
            r.mapping(q, {"items", "defaultMode"})
            out.append(Volume(name, kind, (Projection("DownwardAPI", fields=_field_items(r, q + ("items",), containers)),),
                              default_mode))
        elif kind == "projected":
            out.append(Volume(name, kind, _projected(r, q, containers), default_mode))
        else:
            r.warnings.append(f"{r.doc.where(q)}: volume {name!r}: {kind} is not emulated (a pod never sees this "
                              "machine's files or disks); mounted as an empty folder of the pod's")
            out.append(Volume(name, kind))
    return tuple(out)


def parse_mounts(r: Reader, path: PathKey, volumes: dict[str, Volume]) -> tuple[VolumeMount, ...]:
    """A container's ``volumeMounts``."""
    out: list[VolumeMount] = []
    paths: set[str] = set()
    for i, _ in enumerate(r.seq(path)):
        p = path + (i,)
        r.mapping(p, {"name", "mountPath", "subPath", "readOnly"}, MOUNT_KNOWN, required=("name", "mountPath"))
        name = r.string(p + ("name",), "") or ""
        if name and name not in volumes:
            r.fail(p + ("name",), f'Not found: "{name}"')
        mount_path = r.string(p + ("mountPath",), "") or ""
        if mount_path and (why := mount_path_problem(mount_path)):
            r.fail(p + ("mountPath",), f"Invalid value: {mount_path!r}: {why}")
            continue
        mount_path = posixpath.normpath(mount_path) if mount_path else ""
        if mount_path in paths:
            r.fail(p + ("mountPath",), f'Invalid value: "{mount_path}": must be unique')
        paths.add(mount_path)
        sub_path = r.string(p + ("subPath",), "") or ""
        if sub_path and (why := descending_path_problem(sub_path)):
            r.fail(p + ("subPath",), f"Invalid value: {sub_path!r}: {why}")
            continue
        sub_path = posixpath.normpath(sub_path) if sub_path else ""
        if mount_path and name:
            out.append(VolumeMount(name, mount_path, "" if sub_path == "." else sub_path,
                                   bool(r.typed(p + ("readOnly",), bool, False))))
    return tuple(out)


def check_resource_refs(r: Reader, path: PathKey, containers: tuple) -> None:
    """An environment variable's resourceFieldRef names a container of the pod."""
    names = {c.name for c in containers}
    for i, c in enumerate(containers):
        for j, var in enumerate(c.env):
            if var.resource is not None and var.resource.container not in names:
                r.fail(path + (i, "env", j, "valueFrom", "resourceFieldRef", "containerName"),
                       f'Invalid value: "{var.resource.container}": must be the name of a container')


def check_shared_mounts(r: Reader, path: PathKey, mounts: list[tuple[int, tuple[VolumeMount, ...]]]) -> None:
    """Containers of a pod share one mount namespace here: the same mountPath must mount the
    same volume and subPath in every container that has it."""
    where: dict[str, tuple[str, str]] = {}
    for index, container_mounts in mounts:
        for j, m in enumerate(container_mounts):
            seen = where.setdefault(m.mount_path, (m.name, m.sub_path))
            if seen != (m.name, m.sub_path):
                r.fail(path + (index, "volumeMounts", j, "mountPath"),
                       f"Invalid value: {m.mount_path!r}: another container mounts volume {seen[0]!r} here "
                       "(k8semu: the containers of a pod share one filesystem; use one volume per path)")
