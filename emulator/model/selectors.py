"""Label selectors (matchLabels and matchExpressions); the ``-l`` query language is in
labelquery.py."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_INT64 = re.compile(r"[+-]?[0-9]+")


def is_integer(value: str) -> bool:
    """Go's strconv.ParseInt(value, 10, 64) succeeds: what Gt/Lt compare."""
    return bool(_INT64.fullmatch(value)) and -2**63 <= int(value) < 2**63


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist; Gt, Lt from a ``-l`` query only
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator in ("Gt", "Lt"):  # labels.Requirement.Matches: both sides as int64
            have = labels.get(self.key)
            if have is None or not is_integer(have):
                return False
            return int(have) > int(self.values[0]) if self.operator == "Gt" else int(have) < int(self.values[0])
        raise ValueError(f"unknown operator {self.operator}")


OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class LabelSelector:
    match_labels: dict[str, str] = field(default_factory=dict)
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.expressions)

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.expressions

    def to_dict(self) -> dict:
        out: dict = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.expressions:
            out["matchExpressions"] = [
                {"key": r.key, "operator": r.operator, **({"values": list(r.values)} if r.values else {})}
                for r in self.expressions]
        return out


def selector_from_dict(data: dict | None) -> LabelSelector:
    data = data or {}
    return LabelSelector(
        dict(data.get("matchLabels") or {}),
        tuple(Requirement(e["key"], e["operator"], tuple(e.get("values") or ()))
              for e in data.get("matchExpressions") or ()))
