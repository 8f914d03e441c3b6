"""Labels, annotations and label selectors, read with the API server's rules."""
from __future__ import annotations

from emulator.model import validation
from emulator.model.selectors import OPERATORS, LabelSelector, selector_from_dict
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

MAX_ANNOTATIONS_BYTES = 256 * 1024  # the API server's TotalAnnotationSizeLimitB


def labels(r: Reader, path: PathKey, values: bool = True) -> dict[str, str]:
    """labels (or annotations, ``values=False``): qualified-name keys, label-rule values."""
    out = r.string_map(path)
    for key, value in out.items():
        message = validation.check_qualified_name(key)
        if message:
            r.fail(path + (key,), message)
        elif values and (message := validation.check_label_value(value)):
            r.fail(path + (key,), message)
    if not values and sum(len(k) + len(v) for k, v in out.items()) > MAX_ANNOTATIONS_BYTES:
        r.fail(path, f"may not have more than {MAX_ANNOTATIONS_BYTES} bytes in all")
    return out


def selector(r: Reader, path: PathKey) -> LabelSelector | None:
    """A LabelSelector, or None when absent or invalid (the problems are recorded)."""
    if r.get(path) is None:
        return None
    before = len(r.problems)
    r.mapping(path, {"matchLabels", "matchExpressions"})
    labels(r, path + ("matchLabels",))
    for i, _ in enumerate(r.seq(path + ("matchExpressions",))):
        p = path + ("matchExpressions", i)
        r.mapping(p, {"key", "operator", "values"}, required=("key", "operator"))
        r.string(p + ("key",), "", check=validation.check_qualified_name)
        op = r.get(p + ("operator",))
        if op not in OPERATORS:
            r.fail(p + ("operator",), f"unsupported operator {op!r}{did_you_mean(str(op), OPERATORS)}")
        vals = r.seq(p + ("values",))
        for j, v in enumerate(vals):
            if message := validation.check_label_value(v):
                r.fail(p + ("values", j), message)
        if op in ("In", "NotIn") and not vals:
            r.fail(p + ("values",), "must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and vals:
            r.fail(p + ("values",), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    if len(r.problems) > before:
        return None
    return selector_from_dict(r.get(path, {}))
