"""OpenAPI v3 documents per group-version, enough for kubectl to know how to validate.

``kubectl apply`` (and create, replace) validates strictly by default; it first reads the
group-version's OpenAPI v3 document and, when the PATCH operation for the kind lists the
``fieldValidation`` parameter, leaves validation to the server, which here is the spec layer's
strict parser (unknown fields refused, as ``fieldValidation=Strict`` does). Paths carry
``x-kubernetes-group-version-kind`` and ``x-kubernetes-action`` as kube-apiserver's do.

``components.schemas`` holds the kinds' schemas and every schema they reference, which is what
``kubectl explain`` reads: Kubernetes' own definitions for the release of the tests' kubectl
(descriptions, types, required fields, list and patch extensions), converted once by
scripts/openapi_schemas.py into openapi-schemas.json. The PATCH operations do not list
strategic-merge-patch as a request body, so ``kubectl apply`` keeps computing its patches from
its compiled-in types, as it did before schemas were served.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from emulator.api import openapienums, resources
from emulator.model import calicocrds

SCHEMAS = Path(__file__).with_name("openapi-schemas.json")
REF = "#/components/schemas/"

QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _param(name: str) -> dict:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


@functools.cache
def _all_schemas() -> dict[str, dict]:
    """Kubernetes' own definitions (with the enum lists of the fields k8semu emulates:
    ``openapienums``), and Calico's CRDs (served on calico clusters only)."""
    return {**openapienums.with_enums(json.loads(SCHEMAS.read_text())), **calicocrds.schemas()}


def closure(schemas: dict[str, dict], names: list[str], prefix: str = REF) -> dict[str, dict]:
    """The named schemas and every schema they reference, transitively (refs under ``prefix``)."""
    out: dict[str, dict] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = schemas[name]
        todo += refs(schemas[name], prefix)
    return dict(sorted(out.items()))


def refs(node: object, prefix: str = REF) -> list[str]:
    """The names every ``$ref`` under ``node`` points at (refs starting with ``prefix``)."""
    if isinstance(node, dict):
        own = [node["$ref"][len(prefix):]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in refs(value, prefix)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value, prefix)]
    return []


def kind_schema_name(r: resources.Resource) -> str:
    """The schema whose ``x-kubernetes-group-version-kind`` names the resource's kind."""
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    return next(name for name, schema in _all_schemas().items()
                if gvk in schema.get("x-kubernetes-group-version-kind", []))


def group_version_document(path: str, cni: str | None = None) -> dict | None:
    """The document for ``api/v1`` or ``apis/<group>/<version>`` as a cluster of ``cni`` serves
    it (None: every resource), or None for another path."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version, prefix = "", parts[1], f"/api/{parts[1]}"
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version, prefix = parts[1], parts[2], f"/apis/{parts[1]}/{parts[2]}"
    else:
        return None
    served = resources.in_group_version(group, version, cni)
    if not served:
        return None
    paths: dict = {}
    for r in served:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{prefix}/{r.plural}"
        item: dict = {"parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                      "get": {"operationId": f"read{r.kind}", "x-kubernetes-action": "get",
                              "x-kubernetes-group-version-kind": gvk}}
        collection: dict = {"get": {"operationId": f"list{r.kind}", "x-kubernetes-action": "list",
                                    "x-kubernetes-group-version-kind": gvk}}
        # a data plane's read-only CRDs list it too: kubectl then validates on the server, which
        # says why the write is refused, instead of failing on the OpenAPI v2 it would fetch
        if "patch" in r.verbs or r.cni:
            item["patch"] = {"operationId": f"patch{r.kind}", "x-kubernetes-action": "patch",
                             "x-kubernetes-group-version-kind": gvk, "parameters": [_param(q) for q in QUERY]}
        if "create" in r.verbs:
            collection["post"] = {"operationId": f"create{r.kind}", "x-kubernetes-action": "post",
                                  "x-kubernetes-group-version-kind": gvk, "parameters": [_param(q) for q in QUERY]}
        if "get" in r.verbs:
            paths[f"{base}/{{name}}"] = item
        else:  # a review: created only
            del collection["get"]
        paths[base] = collection
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "k8semu"}, "paths": paths,
            "components": {"schemas": closure(_all_schemas(), [kind_schema_name(r) for r in served])}}


@functools.cache
def served_document(path: str, cni: str | None = None) -> tuple[bytes, str] | None:
    """A group-version's document as sent, and its hash, made once: they do not change while
    the server runs, and kubectl reads one before every apply or create."""
    doc = group_version_document(path, cni)
    if doc is None:
        return None
    body = json.dumps(doc, separators=(",", ":")).encode()
    return body, hashlib.sha512(body).hexdigest().upper()


def root_document(cni: str | None = None) -> dict:
    """``/openapi/v3``: each group-version's URL carries its document's hash, as kube-apiserver's
    do, so that clients cache a document until it changes."""
    paths = {}
    for group, versions in resources.groups(cni).items():
        for version in versions:
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={served_document(path, cni)[1]}"}
    return {"paths": paths}
