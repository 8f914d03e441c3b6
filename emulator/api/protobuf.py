"""Kubernetes' protobuf request bodies, read into the JSON shape the rest of the API takes.

client-go's typed clients send built-in kinds as protobuf (``application/vnd.kubernetes.protobuf``:
the magic ``k8s\\0`` and a ``runtime.Unknown`` holding the object), so ``kubectl create
deployment|service|namespace|secret`` do. No maintained Python package carries the schemas of
k8s.io/api, so the field numbers of the messages those commands send are written down here
(from k8s.io/api's generated.proto) and the wire format is read with a few lines of code. A
field this table does not know is refused (415, naming it) rather than dropped: the object
would otherwise be created without it. Responses are always JSON, which every client accepts.

Zero values are dropped as Go's JSON encoding drops them (``omitempty``): protobuf carries a
non-pointer field even when it is empty. ``replicas`` is a pointer and kept even when 0.
"""
from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type). Types: string, int, bool, bytes, skip, a message
# name, "[]T" (repeated), "{}T" (map<string, T>).
META = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
        4: ("selfLink", "skip"), 5: ("uid", "skip"), 6: ("resourceVersion", "string"),
        7: ("generation", "skip"), 8: ("creationTimestamp", "skip"), 9: ("deletionTimestamp", "skip"),
        10: ("deletionGracePeriodSeconds", "skip"), 11: ("labels", "{}string"),
        12: ("annotations", "{}string"), 13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "[]string"),
        17: ("managedFields", "skip")}
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "rawbytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"), 5: ("apiVersion", "string"),
                       6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "ObjectMeta": META,
    "LabelSelector": {1: ("matchLabels", "{}string"), 2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
    "Quantity": {1: ("string", "string")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "skip")},
    "DeploymentSpec": {1: ("replicas", "int!"), 2: ("selector", "LabelSelector"), 3: ("template", "PodTemplateSpec"),
                       4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "int"),
                       6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "skip")},
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec"), 3: ("status", "skip")},
    "CronJobSpec": {1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int"), 3: ("concurrencyPolicy", "string"),
                    4: ("suspend", "bool"), 5: ("jobTemplate", "JobTemplateSpec"),
                    6: ("successfulJobsHistoryLimit", "int!"), 7: ("failedJobsHistoryLimit", "int!"),
                    8: ("timeZone", "string")},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "JobSpec": {1: ("parallelism", "int!"), 2: ("completions", "int!"), 3: ("activeDeadlineSeconds", "int"),
                4: ("selector", "LabelSelector"), 5: ("manualSelector", "bool"), 6: ("template", "PodTemplateSpec"),
                7: ("backoffLimit", "int!"), 8: ("ttlSecondsAfterFinished", "int!"), 9: ("completionMode", "string"),
                10: ("suspend", "bool"), 14: ("podReplacementPolicy", "string"), 15: ("managedBy", "string")},
    "Pod": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec"), 3: ("status", "skip")},
    "PodSpec": {2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int"), 6: ("dnsPolicy", "string"),
                7: ("nodeSelector", "{}string"), 8: ("serviceAccountName", "string"), 9: ("serviceAccount", "string"),
                10: ("nodeName", "string"), 11: ("hostNetwork", "bool"), 12: ("hostPID", "bool"), 13: ("hostIPC", "bool"),
                16: ("hostname", "string"), 17: ("subdomain", "string"), 19: ("schedulerName", "string"), 20: ("initContainers", "[]Container")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"), 4: ("args", "[]string"),
                  5: ("workingDir", "string"), 6: ("ports", "[]ContainerPort"), 7: ("env", "[]EnvVar"),
                  8: ("resources", "ResourceRequirements"), 13: ("terminationMessagePath", "string"),
                  14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"), 17: ("stdinOnce", "bool"),
                  18: ("tty", "bool"), 20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "{}Quantity"), 2: ("requests", "{}Quantity")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "skip")},
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "{}string"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    8: ("loadBalancerIP", "string"), 10: ("externalName", "string"),
                    11: ("externalTrafficPolicy", "string"), 12: ("healthCheckNodePort", "int"),
                    13: ("publishNotReadyAddresses", "bool"), 17: ("ipFamilyPolicy", "string"),
                    18: ("clusterIPs", "[]string"), 19: ("ipFamilies", "[]string"), 21: ("loadBalancerClass", "string"),
                    22: ("internalTrafficPolicy", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "int"), 6: ("appProtocol", "string")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "skip")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "{}bytes"), 3: ("type", "string"),
               4: ("stringData", "{}string"), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "{}string"), 3: ("binaryData", "{}bytes"),
                  4: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 4: ("automountServiceAccountToken", "bool")},
    # rbac.authorization.k8s.io/v1 (kubectl create role|clusterrole|rolebinding|clusterrolebinding)
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule"), 3: ("aggregationRule", "AggregationRule")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]LabelSelector")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
                   4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    # authorization.k8s.io/v1 and authentication.k8s.io/v1 reviews (kubectl auth can-i, whoami)
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectAccessReviewSpec"),
                                3: ("status", "skip")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                           7: ("name", "string"), 8: ("fieldSelector", "skip"), 9: ("labelSelector", "skip")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectRulesReviewSpec"),
                               3: ("status", "skip")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta"), 2: ("status", "skip")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec"), 3: ("status", "skip")},
    "TokenRequestSpec": {1: ("audiences", "[]string"), 3: ("boundObjectRef", "BoundObjectReference"),
                         4: ("expirationSeconds", "int")},
    "BoundObjectReference": {1: ("kind", "string"), 2: ("apiVersion", "string"), 3: ("name", "string"),
                             4: ("uid", "string")},
}
KINDS = ("Deployment", "Pod", "Service", "Namespace", "Secret", "ConfigMap", "ServiceAccount", "Job", "CronJob",
         "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "SelfSubjectAccessReview", "SelfSubjectRulesReview",
         "SelfSubjectReview", "TokenRequest")


class ProtobufError(ValueError):
    """The body is not protobuf this API reads (the server answers 415 with the message)."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtobufError("truncated or malformed varint")
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The (field number, wire type, value) of one message; length-delimited values as bytes."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise ProtobufError("a field runs past the end of the message")
            value, i = data[i:i + size], i + size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ProtobufError(f"wire type {wire} is not used by Kubernetes objects")
        out.append((number, wire, value))
    return out


def _scalar(kind: str, wire: int, value: Any, where: str) -> Any:
    if kind in ("string", "bytes", "rawbytes"):
        if wire != 2:
            raise ProtobufError(f"{where}: expected a length-delimited value")
        if kind == "rawbytes":
            return value
        if kind == "bytes":
            return base64.b64encode(value).decode()
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"{where}: not UTF-8") from None
    if wire != 0:
        raise ProtobufError(f"{where}: expected a varint")
    if kind == "bool":
        return bool(value)
    return value - (1 << 64) if value >= 1 << 63 else value  # int32/int64 are two's complement


def decode(message: str, data: bytes, where: str = "") -> dict:
    """One message of ``message``'s schema as a JSON-shaped dict, zero values dropped.

    Raises:
        ProtobufError: a field this schema does not know, or a malformed value.
    """
    schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        if number not in schema:
            if value in (b"", 0):  # an empty non-pointer field Go always writes
                continue
            raise ProtobufError(f"{where or message}: field {number} of {message} is not read by k8semu")
        name, kind = schema[number]
        path = f"{where}.{name}" if where else name
        if kind == "skip":
            continue
        if kind.startswith("{}"):
            entry = {n: v for n, _, v in fields(value)}
            key = _scalar("string", 2, entry.get(1, b""), path)
            inner = kind[2:]
            raw = entry.get(2, b"")
            out.setdefault(name, {})[key] = (decode(inner, raw, path) if inner in MESSAGES
                                             else _scalar(inner, 2 if inner in ("string", "bytes") else 0, raw, path))
        elif kind.startswith("[]"):
            inner = kind[2:]
            item = decode(inner, value, path) if inner in MESSAGES else _scalar(inner, wire, value, path)
            out.setdefault(name, []).append(item)
        elif kind in MESSAGES:
            out[name] = decode(kind, value, path)
        else:
            out[name] = _scalar(kind.rstrip("!"), wire, value, path)
            if kind.endswith("!"):
                out[name + "!"] = True  # a pointer: keep even when zero
    return _json_shape(message, out)


def _json_shape(message: str, out: dict) -> dict:
    if message == "IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if message == "Quantity":
        return out.get("string", "")
    kept = {}
    for name, value in out.items():
        if name.endswith("!"):
            continue
        if value in ("", 0, False, {}, []) and not out.get(name + "!"):
            continue
        kept[name] = value
    return kept


def read_object(body: bytes) -> dict:
    """A protobuf request body as the JSON object it encodes.

    Raises:
        ProtobufError: not Kubernetes protobuf, a kind this table does not cover, or a field it
            does not know.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with Kubernetes' protobuf magic number")
    unknown = decode("Unknown", body[len(MAGIC):])
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in KINDS:
        raise ProtobufError(f"{kind or 'this kind'} is not read from protobuf by k8semu (only "
                            f"{', '.join(KINDS)}): use 'kubectl apply -f' or 'kubectl create -f'")
    obj = decode(kind, unknown.get("raw", b""))
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
