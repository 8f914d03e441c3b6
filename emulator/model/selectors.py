"""Label selectors (matchLabels and matchExpressions) and ``-l key=value`` parsing."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
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


def parse_label_query(query: str) -> LabelSelector:
    """``app=web,tier!=db,env,!legacy`` as kubectl's ``-l`` accepts it.

    Raises:
        ValueError: a term that is not one of the supported forms.
    """
    labels: dict[str, str] = {}
    exprs: list[Requirement] = []
    for term in filter(None, (t.strip() for t in query.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            exprs.append(Requirement(key.strip(), "NotIn", (value.strip(),)))
        elif "==" in term or "=" in term:
            key, value = term.split("==" if "==" in term else "=", 1)
            labels[key.strip()] = value.strip()
        elif term.startswith("!"):
            exprs.append(Requirement(term[1:], "DoesNotExist"))
        elif term.replace("-", "").replace(".", "").replace("/", "").replace("_", "").isalnum():
            exprs.append(Requirement(term, "Exists"))
        else:
            raise ValueError(f"cannot parse label selector term {term!r}")
    return LabelSelector(labels, tuple(exprs))
