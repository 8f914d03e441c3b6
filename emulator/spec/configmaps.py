"""ConfigMap and ServiceAccount manifests -> model, with the API server's checks (k8s.io/kubernetes
pkg/apis/core/validation ValidateConfigMap): keys as IsConfigMapKey, no key in both ``data``
and ``binaryData``, binaryData base64, at most 1 MiB in all."""
from __future__ import annotations

import base64
import binascii
import re

from emulator.model.config import ConfigMap, ServiceAccount
from emulator.model.meta import ObjectMeta
from emulator.spec.reader import Reader

MAX_SIZE = 1024 * 1024  # corev1.MaxSecretSize, which ConfigMaps share
KEY = re.compile(r"[-._a-zA-Z0-9]+")


def key_problem(key: str) -> str | None:
    """Kubernetes' IsConfigMapKey, in its words."""
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not KEY.fullmatch(key):
        return ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' and must not start with '..'"
    return None


def parse_config_map(r: Reader, meta: ObjectMeta, source) -> ConfigMap:
    r.mapping((), {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}, set())
    data = r.string_map(("data",))
    binary = r.string_map(("binaryData",))
    size = 0
    for field_name, entries in (("data", data), ("binaryData", binary)):
        for key, value in entries.items():
            why = key_problem(key)
            if why:
                r.fail((field_name, key), f"Invalid value: {key!r}: {why}")
            if field_name == "binaryData":
                try:
                    size += len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    r.fail((field_name, key), "Invalid value: illegal base64 data")
                if key in data:
                    r.fail((field_name, key), f"Invalid value: {key!r}: duplicate of key present in data")
            else:
                size += len(value)
    if size > MAX_SIZE:
        r.fail(("data",), f"Too long: must have at most {MAX_SIZE} bytes")
    immutable = r.get(("immutable",), False)
    if not isinstance(immutable, bool):
        r.fail(("immutable",), f"expected true or false, got {immutable!r}")
        immutable = False
    return ConfigMap(meta, dict(data), dict(binary), immutable, source)


def parse_service_account(r: Reader, meta: ObjectMeta, source) -> ServiceAccount:
    """A ServiceAccount: ``automountServiceAccountToken`` is honoured for pods that do not say;
    ``secrets`` and ``imagePullSecrets`` are accepted and not used (no legacy token Secrets, no
    registry)."""
    r.mapping((), {"apiVersion", "kind", "metadata", "automountServiceAccountToken"},
              {"secrets", "imagePullSecrets"})
    automount = r.get(("automountServiceAccountToken",), None)
    if automount is not None and not isinstance(automount, bool):
        r.fail(("automountServiceAccountToken",), f"expected true or false, got {automount!r}")
        automount = None
    return ServiceAccount(meta, automount, source)
