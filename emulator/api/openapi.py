"""OpenAPI v3 documents per group-version, enough for kubectl to know how to validate.

``kubectl apply`` (and create, replace) validates strictly by default; it first reads the
group-version's OpenAPI v3 document and, when the PATCH operation for the kind lists the
``fieldValidation`` parameter, leaves validation to the server, which here is the spec layer's
strict parser (unknown fields refused, as ``fieldValidation=Strict`` does). Paths carry
``x-kubernetes-group-version-kind`` and ``x-kubernetes-action`` as kube-apiserver's do. Schemas
for ``kubectl explain`` are not served yet.
"""
from __future__ import annotations

from emulator.api import resources

QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _param(name: str) -> dict:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def group_version_document(path: str) -> dict | None:
    """The document for ``api/v1`` or ``apis/<group>/<version>``, or None for another path."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version, prefix = "", parts[1], f"/api/{parts[1]}"
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version, prefix = parts[1], parts[2], f"/apis/{parts[1]}/{parts[2]}"
    else:
        return None
    served = resources.in_group_version(group, version)
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
        if "patch" in r.verbs:
            item["patch"] = {"operationId": f"patch{r.kind}", "x-kubernetes-action": "patch",
                             "x-kubernetes-group-version-kind": gvk, "parameters": [_param(q) for q in QUERY]}
        if "create" in r.verbs:
            collection["post"] = {"operationId": f"create{r.kind}", "x-kubernetes-action": "post",
                                  "x-kubernetes-group-version-kind": gvk, "parameters": [_param(q) for q in QUERY]}
        paths[f"{base}/{{name}}"] = item
        paths[base] = collection
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "k8semu"}, "paths": paths,
            "components": {"schemas": {}}}
