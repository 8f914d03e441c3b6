"""kubectl-style printing: tables built from API-shaped objects, ``-o wide|json|yaml|name``.

kubectl pads columns with three spaces (its tabwriter); so do we. Written here rather than with
rich's tables because kubectl's output has no borders and people grep it.
"""
from __future__ import annotations

import json
from typing import Any

import yaml

from emulator.api.tables import (NAMESPACED, PRINTERS, age, endpoint_list, human_age,  # noqa: F401
                                 pod_status, service_ports)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    lines = []
    for row in [headers] + rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def render(kind: str, items: list[dict], output: str | None, all_namespaces: bool,
           single: bool = False) -> str:
    """Format objects as kubectl get does.

    Raises:
        ValueError: an output format kubectl would not accept.
    """
    if output in ("json", "yaml"):
        doc: Any = items[0] if single and items else {
            "apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
        return json.dumps(doc, indent=4) if output == "json" else yaml.safe_dump(
            doc, sort_keys=False, default_flow_style=False).rstrip()
    if output == "name":
        from emulator.cluster.controllers import resource
        return "\n".join(f"{resource(kind)}/{o['metadata']['name']}" for o in items)
    if output not in (None, "wide"):
        raise ValueError(f"unable to match a printer suitable for the output format {output!r}, "
                         "allowed formats are: json,name,wide,yaml")
    headers, wide_headers, row = PRINTERS[kind]
    wide = output == "wide"
    cols = headers + (wide_headers if wide else [])
    rows = [row(o, wide) for o in items]
    if all_namespaces and kind in NAMESPACED:
        cols = ["NAMESPACE"] + cols
        rows = [[o["metadata"]["namespace"]] + r for o, r in zip(items, rows)]
    return table(cols, rows)
