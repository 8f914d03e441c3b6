"""Located YAML documents.

PyYAML's composer gives every node a start mark; we keep those marks beside the plain Python
data, keyed by the path of keys and indices that leads to a value, so validators can work on
ordinary dicts and still report ``file:line:col`` for any field (Kathara's located errors).
Duplicate mapping keys, which PyYAML silently overwrites, are reported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from emulator.errors import Problem, SourceRef, SpecError

PathKey = tuple[Any, ...]


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


def _walk(node: yaml.Node, path: PathKey, marks: dict, problems: list[Problem], doc_file: str,
          lines: list[str]) -> None:
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
            _walk(value_node, path + (key,), marks, problems, doc_file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), marks, problems, doc_file, lines)


def load_text(text: str, file: str) -> list[Document]:
    """Parse every document of a YAML stream.

    Raises:
        SpecError: malformed YAML (with the parser's position) or duplicate keys.
    """
    lines = text.splitlines()
    documents: list[Document] = []
    problems: list[Problem] = []
    try:
        loader = yaml.SafeLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                data = loader.construct_document(node)
                if data is None:
                    continue
                marks: dict[PathKey, tuple[int, int, int]] = {}
                _walk(node, (), marks, problems, file, lines)
                documents.append(Document(data, file, marks, lines))
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line if mark else 0
        where = SourceRef(file, line + 1, (mark.column if mark else 0) + 1,
                          lines[line] if line < len(lines) else "")
        raise SpecError([Problem(where, "", f"malformed YAML: {exc.problem or exc}")]) from None
    if problems:
        raise SpecError(problems)
    return documents


def load_file(path: str | Path) -> list[Document]:
    """Read and parse a YAML file.

    Raises:
        SpecError: the file is missing, unreadable or malformed.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError([Problem(None, "", f"{path}: cannot read: {exc.strerror}")]) from None
    return load_text(text, str(path))


def iter_paths(data: Any, path: PathKey = ()) -> Iterator[PathKey]:
    """Every path in a data tree, for tests and field checks."""
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, path + (index,))
