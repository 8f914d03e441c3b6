"""What a write to a Node may change here (``kubectl cordon``/``uncordon``, ``kubectl label``/
``annotate``): ``spec.unschedulable``, the labels and the annotations. The nodes come from the
cluster spec, so anything else is refused (422) and nothing changes."""
from __future__ import annotations

from emulator.api import status
from emulator.api.ownership import without_server_meta
from emulator.api.status import ApiError

WRITTEN = ("labels", "annotations")
SPEC_WRITTEN = ("unschedulable", "taints")


def change(name: str, base: dict, wanted: object) -> tuple[bool, dict[str, str], dict[str, str]]:
    """(unschedulable, labels, annotations) that ``wanted`` asks of the node shown as ``base``.

    Raises:
        ApiError: not an object (400), labels or annotations not strings (400), or a change to
            anything else (422, as the API server refuses a forbidden field).
    """
    if not isinstance(wanted, dict):
        raise status.bad_request("the body of the request must be a JSON object")
    unschedulable = (wanted.get("spec") or {}).get("unschedulable") or False
    if not isinstance(unschedulable, bool):
        raise ApiError(422, "Invalid", f'Node "{name}" is invalid: spec.unschedulable: must be a boolean')
    meta = without_server_meta(wanted).get("metadata") or {}
    rest = ({k: v for k, v in (wanted.get("spec") or {}).items() if k not in SPEC_WRITTEN},
            {k: v for k, v in meta.items() if k not in WRITTEN})
    if rest != ({k: v for k, v in base["spec"].items() if k not in SPEC_WRITTEN},
                {k: v for k, v in base["metadata"].items() if k not in WRITTEN}):
        raise ApiError(422, "Invalid", f'Node "{name}" is invalid: only spec.unschedulable, labels and annotations '
                                       "may change on a node of this emulated cluster (its nodes come from the "
                                       "cluster spec)",
                       {"name": name, "kind": "nodes", "causes": [
                           {"reason": "FieldValueForbidden", "field": "spec",
                            "message": "only spec.unschedulable, labels and annotations may change"}]})
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if not all(isinstance(m, dict) and all(isinstance(v, str) for v in m.values()) for m in (labels, annotations)):
        raise status.bad_request("metadata.labels and metadata.annotations map strings to strings")
    return unschedulable, labels, annotations
