"""A container's ``env`` and ``envFrom`` -> model, with the API server's checks
(pkg/apis/core/validation validateEnv, validateEnvFrom): one source per ``valueFrom``, no
``value`` beside it, ConfigMap and Secret names and keys as the API server checks them."""
from __future__ import annotations

from emulator.model import quantity, validation
from emulator.model.pod import EnvVar, KeyRef
from emulator.model.volume import RESOURCE_FIELDS, FieldFile
from emulator.spec import kinds
from emulator.spec.configmaps import key_problem
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

REFS = {"configMapKeyRef": "ConfigMap", "secretKeyRef": "Secret"}
FROM = {"configMapRef": "ConfigMap", "secretRef": "Secret"}


def _ref(r: Reader, path: PathKey, kind: str, keyed: bool, prefix: str = "") -> KeyRef:
    r.mapping(path, {"name", "key", "optional"} if keyed else {"name", "optional"})
    name = r.string(path + ("name",), "") or ""
    if not name:
        r.fail(path + ("name",), "Required value")
    elif not validation.is_dns1123_subdomain(name):
        r.fail(path + ("name",), validation.check_dns1123_subdomain(name) or "")
    key = ""
    if keyed:
        key = r.string(path + ("key",), "") or ""
        why = "Required value" if not key else key_problem(key)
        if why:
            r.fail(path + ("key",), why)
    return KeyRef(kind, name, key, r.typed(path + ("optional",), bool, False), prefix)


def subscripted(field_path: str) -> bool:
    """``metadata.labels['key']`` or ``metadata.annotations['key']``, which env and downwardAPI
    volumes take besides the plain paths (the key checked as a label or annotation key)."""
    for base in ("metadata.labels", "metadata.annotations"):
        if field_path.startswith(base + "['") and field_path.endswith("']"):
            return validation.check_qualified_name(field_path[len(base) + 2:-2]) is None
    return False


def _resource(r: Reader, path: PathKey, container: str) -> FieldFile:
    """``resourceFieldRef``: a container's limit or request (in env, the container defaults to
    the one whose variable it is)."""
    r.mapping(path, {"containerName", "resource", "divisor"}, required=("resource",))
    resource = r.string(path + ("resource",), "") or ""
    if resource and resource not in RESOURCE_FIELDS:
        r.fail(path + ("resource",), f"Unsupported value: {resource!r}: supported values: "
               + ", ".join(f'"{f}"' for f in RESOURCE_FIELDS))
    divisor = str(r.get(path + ("divisor",), "1"))
    try:
        if quantity.parse(divisor) <= 0:
            raise quantity.QuantityError("must be greater than zero")
    except quantity.QuantityError as exc:
        r.fail(path + ("divisor",), f"Invalid value: {divisor!r}: {exc}")
    return FieldFile("", resource=resource, container=r.string(path + ("containerName",), "") or container,
                     divisor=divisor)


def parse_env(r: Reader, path: PathKey) -> tuple[tuple[EnvVar, ...], tuple[KeyRef, ...]]:
    """(``env``, ``envFrom``) of the container at ``path``."""
    container = r.get(path + ("name",), "")
    container = container if isinstance(container, str) else ""
    env = []
    for i, _ in enumerate(r.seq(path + ("env",))):
        p = path + ("env", i)
        r.mapping(p, kinds.ENV_SUPPORTED, required=("name",))
        field_path, ref, resource = "", None, None
        value = r.get(p + ("value",), "")
        if not isinstance(value, (str, int, float, bool)):
            r.fail(p + ("value",), f"expected a string, got {type(value).__name__}")
            value = ""
        source = r.get(p + ("valueFrom",))
        if source is not None:
            r.mapping(p + ("valueFrom",), {"fieldRef", "resourceFieldRef", *REFS})
            given = [k for k in (source if isinstance(source, dict) else {}) if k in ("fieldRef", "resourceFieldRef", *REFS)]
            if len(given) > 1:
                r.fail(p + ("valueFrom",), 'Invalid value: "": may not have more than one field specified at a time')
            if value != "":
                r.fail(p + ("valueFrom",), "Invalid value: \"\": may not be specified when `value` is not empty")
            field_path = r.string(p + ("valueFrom", "fieldRef", "fieldPath"), "")
            if field_path and field_path not in kinds.FIELD_PATHS and not subscripted(field_path):
                r.fail(p + ("valueFrom", "fieldRef", "fieldPath"),
                       f"unsupported fieldPath {field_path!r}{did_you_mean(field_path, kinds.FIELD_PATHS)}")
            if isinstance(source, dict) and "resourceFieldRef" in source:
                resource = _resource(r, p + ("valueFrom", "resourceFieldRef"), container)
            for field, kind in REFS.items():
                if isinstance(source, dict) and field in source:
                    ref = _ref(r, p + ("valueFrom", field), kind, keyed=True)
        env.append(EnvVar(r.string(p + ("name",), "", check=validation.check_env_name) or "", str(value),
                          field_path, ref, resource))
    env_from = []
    for i, item in enumerate(r.seq(path + ("envFrom",))):
        p = path + ("envFrom", i)
        r.mapping(p, {"prefix", *FROM})
        given = [k for k in (item if isinstance(item, dict) else {}) if k in FROM]
        if len(given) != 1:
            r.fail(p, "Invalid value: \"\": may not have more than one field specified at a time" if given
                   else "Required value: one of configMapRef or secretRef")
            continue
        prefix = r.string(p + ("prefix",), "") or ""
        if prefix and validation.check_env_name(prefix):
            r.fail(p + ("prefix",), validation.check_env_name(prefix) or "")
        env_from.append(_ref(r, p + (given[0],), FROM[given[0]], keyed=False, prefix=prefix))
    return tuple(env), tuple(env_from)
