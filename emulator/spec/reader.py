"""Typed field access on located documents, collecting problems instead of stopping at the first.

Kubernetes decodes strictly: a field the API does not have is an error, which we report with a
"did you mean"; a field the API has but k8semu does not emulate is accepted with a warning, so a
manifest written for a real cluster still applies.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from emulator.errors import Problem
from emulator.spec.loader import Document, PathKey

_MISSING = object()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def dotted(path: PathKey) -> str:
    """``spec.containers[0].name``; a key that is not a plain word is quoted (``records["a b"]``),
    so that whatever a manifest holds, an error message stays one line."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(key, str) and key and all(c.isalnum() or c in "-_./" for c in key):
            out += f".{key}" if out else key
        else:
            out += "[" + json.dumps(str(key)) + "]"
    return out


@dataclass
class Reader:
    """Reads one document; ``problems`` and ``warnings`` accumulate across calls."""

    doc: Document
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, path: PathKey, message: str) -> None:
        self.problems.append(self.doc.problem(path, dotted(path), message))

    def get(self, path: PathKey, default: Any = None) -> Any:
        value: Any = self.doc.data
        for key in path:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                return default
        return default if value is None else value

    def mapping(self, path: PathKey, supported: Iterable[str], known: Iterable[str] = (),
                required: Iterable[str] = ()) -> dict:
        """Check the value at ``path`` is a mapping with only the fields listed.

        ``supported`` fields are emulated; ``known`` ones exist in Kubernetes and are ignored
        with a warning; anything else is an error.
        """
        value = self.get(path, {})
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        supported, known = set(supported), set(known)
        for key in value:
            if key in supported:
                continue
            if key in known:
                self.warnings.append(f"{self.doc.where(path + (key,))}: {dotted(path + (key,))}: "
                                     "accepted but not emulated; ignored")
                continue
            self.fail(path + (key,), f"unknown field {key!r}{did_you_mean(str(key), supported | known)}")
        for key in required:
            if value.get(key) is None:
                self.fail(path, f"missing required field {key!r}")
        return value

    def typed(self, path: PathKey, kind: type | tuple, default: Any = _MISSING,
              check: Callable[[Any], str | None] | None = None) -> Any:
        value = self.get(path, _MISSING)
        if value is _MISSING:
            return None if default is _MISSING else default
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(path, f"expected {names}, got {type(value).__name__} {value!r}")
            return None if default is _MISSING else default
        if check:
            message = check(value)
            if message:
                self.fail(path, message)
                return None if default is _MISSING else default  # never act on a refused value
        return value

    def string(self, path: PathKey, default: Any = _MISSING,
               check: Callable[[Any], str | None] | None = None) -> Any:
        value = self.get(path, _MISSING)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.fail(path, f"expected a string, got number {value!r} (quote it)")
            return None if default is _MISSING else default
        return self.typed(path, str, default, check)

    def integer(self, path: PathKey, default: Any = _MISSING, minimum: int | None = None,
                maximum: int | None = None) -> Any:
        def bounds(v: int) -> str | None:
            if minimum is not None and v < minimum:
                return f"must be at least {minimum}, got {v}"
            if maximum is not None and v > maximum:
                return f"must be at most {maximum}, got {v}"
            return None
        return self.typed(path, int, default, bounds)

    def string_map(self, path: PathKey) -> dict[str, str]:
        value = self.get(path, {})
        if not isinstance(value, dict):
            self.fail(path, "expected a mapping of strings")
            return {}
        out = {}
        for key, item in value.items():
            if not isinstance(item, str):
                self.fail(path + (key,), f"expected a string value, got {item!r} (quote it)")
            else:
                out[str(key)] = item
        return out

    def seq(self, path: PathKey) -> list:
        value = self.get(path, [])
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {type(value).__name__}")
            return []
        return value
