"""Located YAML documents, parsed within bounds.

PyYAML's composer gives every node a start mark; we keep those marks beside the plain Python
data, keyed by the path of keys and indices that leads to a value, so validators can work on
ordinary dicts and still report ``file:line:col`` for any field (Kathara's located errors).
Duplicate mapping keys, which PyYAML silently overwrites, are reported here.

Input is hostile until proven otherwise, so parsing is bounded: nesting deeper than
``MAX_DEPTH`` is refused while composing (PyYAML's composer recurses), and aliases may add at
most ``ALIAS_BUDGET`` nodes to what the document spells out (a 600-byte "billion laughs" grows
by 9x per level; go-yaml, which kubectl uses, refuses "excessive aliasing" the same way). Every
failure, a non-UTF-8 byte or a control character included, is a located error, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from emulator.errors import Problem, SourceRef, SpecError
from emulator.spec import files

PathKey = tuple[Any, ...]
MAX_DEPTH = 64  # a Deployment nests about 12 deep; an inline manifest in a scenario about 20
ALIAS_BUDGET = 50_000  # nodes that aliases may add to a document, beyond those written out
MAX_DOCUMENTS = 10_000
MAX_LINES = 200_000  # of a document sent by a client (a 3 MiB request holds fewer)


class _Bounded(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH and counts nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.composed = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        self.depth += 1
        self.composed += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit


@dataclass
class Document:
    """One YAML document: its data and where each value sits in the file."""

    data: Any
    file: str
    marks: dict[PathKey, tuple[int, int, int]] = field(default_factory=dict)  # line, col, width
    lines: list[str] = field(default_factory=list)
    base: PathKey = ()  # when this document was found inside another (inline manifests)

    def where(self, path: PathKey = ()) -> SourceRef:
        """The source position of the value at ``path``, or of its nearest located parent."""
        full = self.base + tuple(path)
        while full not in self.marks and full:
            full = full[:-1]
        line, col, width = self.marks.get(full, (1, 1, 1))
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return SourceRef(self.file, line, col, text, width)

    def sub(self, path: PathKey) -> "Document":
        """The document found at ``path`` inside this one (same file, same marks)."""
        value: Any = self.data
        for key in path:
            value = value[key]
        return Document(value, self.file, self.marks, self.lines, self.base + tuple(path))

    def problem(self, path: PathKey, field_name: str, message: str) -> Problem:
        return Problem(self.where(path), field_name, message)

    def to_wire(self) -> dict:
        """As JSON carries it to the manager (``k8semu apply``, scenario steps): the data with
        the marks of its own values only, so that problems found there still point at the
        user's file, line and column."""
        own = [[list(k[len(self.base):]), list(v)] for k, v in self.marks.items() if k[:len(self.base)] == self.base]
        used = sorted({v[0] for _, v in own})
        return {"data": self.data, "file": self.file, "marks": own,
                "lines": {str(n): self.lines[n - 1] for n in used if 0 < n <= len(self.lines)}}

    @classmethod
    def from_wire(cls, wire: Any) -> "Document":
        """The inverse of ``to_wire``, for input from a client: anything malformed is refused.

        Raises:
            ValueError: not what ``to_wire`` makes.
        """
        if not isinstance(wire, dict) or not isinstance(wire.get("file"), str) or "data" not in wire:
            raise ValueError("a document needs data and file")
        marks: dict[PathKey, tuple[int, int, int]] = {}
        for entry in wire.get("marks") or []:
            if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], list)
                    or not all(isinstance(k, (str, int)) for k in entry[0]) or not isinstance(entry[1], list)
                    or len(entry[1]) != 3 or not all(type(n) is int and n >= 0 for n in entry[1])):
                raise ValueError("a mark is [path, [line, column, width]]")
            marks[tuple(entry[0])] = tuple(entry[1])  # type: ignore[assignment]
        given = wire.get("lines") or {}
        if not isinstance(given, dict) or not all(isinstance(v, str) and k.isdigit() for k, v in given.items()):
            raise ValueError("lines are {number: text}")
        count = max([0, *(int(k) for k in given), *(m[0] for m in marks.values())])
        lines = [given.get(str(n), "") for n in range(1, min(count, MAX_LINES) + 1)]
        return cls(wire["data"], wire["file"], marks, lines)


def _walk(node: yaml.Node, path: PathKey, marks: dict, problems: list[Problem], doc_file: str,
          lines: list[str], budget: _Budget) -> None:
    budget.left -= 1
    if budget.left < 0:
        raise yaml.composer.ComposerError(None, None, "document contains excessive aliasing "
                                          f"(aliases expand it by more than {ALIAS_BUDGET} nodes)", node.start_mark)
    start, end = node.start_mark, node.end_mark
    width = end.column - start.column if end.line == start.line else 1
    marks[path] = (start.line + 1, start.column + 1, max(1, width))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                line = key_node.start_mark.line
                problems.append(Problem(
                    SourceRef(doc_file, line + 1, key_node.start_mark.column + 1, lines[line],
                              len(str(key))), ".".join(map(str, path + (key,))), "duplicate key"))
            seen.add(key)
            _walk(value_node, path + (key,), marks, problems, doc_file, lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), marks, problems, doc_file, lines, budget)


def _located(file: str, lines: list[str], text: str, exc: Exception) -> SpecError:
    """A parser, reader or constructor failure as a located problem."""
    if isinstance(exc, yaml.reader.ReaderError):  # a control character: located by offset
        before = text[:exc.position]
        line, col = before.count("\n"), exc.position - (before.rfind("\n") + 1)
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        message = f"character U+{char:04X} is not allowed in YAML (control characters are not)"
        return SpecError([Problem(SourceRef(file, line + 1, col + 1), "", message)])
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line if mark else 0
    where = SourceRef(file, line + 1, (mark.column if mark else 0) + 1,
                      lines[line] if line < len(lines) else "")
    detail = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.composer.ComposerError) and ("nesting" in detail or "aliasing" in detail):
        return SpecError([Problem(where, "", detail)])
    return SpecError([Problem(where, "", f"malformed YAML: {detail}")])


def load_text(text: str, file: str) -> list[Document]:
    """Parse every document of a YAML stream, within the bounds above.

    Raises:
        SpecError: malformed YAML (with the parser's position), nesting or aliasing beyond the
            bounds, a value Python cannot hold, or duplicate keys.
    """
    lines = text.splitlines()
    documents: list[Document] = []
    problems: list[Problem] = []
    loader = None
    try:
        loader = _Bounded(text)  # its reader refuses control characters here, before parsing
        while loader.check_node():
            if len(documents) >= MAX_DOCUMENTS:
                raise SpecError([Problem(SourceRef(file, 1, 1), "", f"more than {MAX_DOCUMENTS} documents")])
            before = loader.composed
            node = loader.get_node()
            try:
                data = loader.construct_document(node)
            except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer of 5,000 digits
                line = node.start_mark.line
                raise SpecError([Problem(SourceRef(file, line + 1, node.start_mark.column + 1,
                                                   lines[line] if line < len(lines) else ""), "",
                                         f"a value cannot be read: {exc}")]) from None
            if data is None:
                continue
            marks: dict[PathKey, tuple[int, int, int]] = {}
            _walk(node, (), marks, problems, file, lines, _Budget(loader.composed - before + ALIAS_BUDGET))
            documents.append(Document(data, file, marks, lines))
    except yaml.YAMLError as exc:
        raise _located(file, lines, text, exc) from None
    except RecursionError:
        raise SpecError([Problem(SourceRef(file, 1, 1), "", "nesting too deep to read")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise SpecError(problems)
    return documents


def load_file(path: str | Path, where: SourceRef | None = None) -> list[Document]:
    """Read and parse a YAML file (a regular file, at most 3 MiB of UTF-8; see ``files``).

    Raises:
        SpecError: the file is missing, unreadable, special, too large, not UTF-8 or malformed.
    """
    name = "<stdin>" if str(path) in files.STDIN_NAMES else str(path)
    return load_text(files.read_text(path, where), name)


def iter_paths(data: Any, path: PathKey = ()) -> Iterator[PathKey]:
    """Every path in a data tree, for tests and field checks."""
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, path + (index,))
