"""The ``-l`` label query language (``kubectl get -l``, ``kubectl drain --pod-selector``).

Follows k8s.io/apimachinery/pkg/labels ``Parse``: a lexer of identifiers and the symbols
``= == != ( ) , ! > <``, then a parser of comma-separated requirements ``key``, ``!key``,
``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``, ``key>N``, ``key<N``.
Written here rather than taken from a library because no maintained Python package parses
this grammar; the upstream parser's error texts are kept where a user sees them.
"""
from __future__ import annotations

import re

from emulator.model.selectors import LabelSelector, Requirement, is_integer
from emulator.model.validation import check_label_value, check_qualified_name

_SYMBOLS = "=!(),><"
_TOKEN = re.compile(r"==|!=|[=!(),><]|[^\s=!(),><]+")  # upstream's lexer: two-character symbols first
_OPERATORS = {"=": "In", "==": "In", "!=": "NotIn", "in": "In", "notin": "NotIn", ">": "Gt", "<": "Lt"}


def _tokens(query: str) -> list[str]:
    """Identifiers and symbols, whitespace dropped; "" ends the list (upstream's EndOfString)."""
    return _TOKEN.findall(query) + [""]


def _is_ident(tok: str) -> bool:
    return bool(tok) and tok not in _SYMBOLS and tok not in ("==", "!=")


class _Parser:
    def __init__(self, query: str) -> None:
        self.toks = _tokens(query)
        self.pos = 0

    def peek(self) -> str:
        return self.toks[self.pos]

    def take(self) -> str:
        tok = self.toks[self.pos]
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    def requirement(self) -> Requirement:
        tok = self.take()
        if tok == "!":
            key = self.take()
            if not _is_ident(key):
                raise ValueError(f"unable to parse requirement: found '{key}', expected: identifier")
            return _checked(key, "DoesNotExist", ())
        if not _is_ident(tok) or tok in ("in", "notin"):
            raise ValueError(f"unable to parse requirement: found '{tok}', expected: !, identifier, or "
                             "'end of string'")
        key = tok
        if self.peek() in ("", ","):
            return _checked(key, "Exists", ())
        op = self.take()
        if op not in _OPERATORS:
            raise ValueError(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, "
                             "gt, lt")
        if op in ("in", "notin"):
            return _checked(key, _OPERATORS[op], self.value_set())
        if self.peek() in ("", ","):
            return _checked(key, _OPERATORS[op], ("",))
        value = self.take()
        if not _is_ident(value):
            raise ValueError(f"unable to parse requirement: found '{value}', expected: identifier")
        return _checked(key, _OPERATORS[op], (value,))

    def value_set(self) -> tuple[str, ...]:
        """``(a, b)``; empty members are kept as "" as upstream's parseIdentifiersList does."""
        tok = self.take()
        if tok != "(":
            raise ValueError(f"unable to parse requirement: found '{tok}' expected: '('")
        values: set[str] = set()
        if self.peek() == ")":
            self.take()
            return ("",)
        expect_value = True
        while True:
            tok = self.take()
            if tok == ")":
                if expect_value:
                    values.add("")
                return tuple(sorted(values))
            if tok == ",":
                if expect_value:
                    values.add("")
                expect_value = True
            elif _is_ident(tok) and expect_value:
                values.add(tok)
                expect_value = False
            else:
                raise ValueError(f"unable to parse requirement: found '{tok}', expected: ',', ')' or "
                                 "identifier")


def _checked(key: str, op: str, values: tuple[str, ...]) -> Requirement:
    """Upstream's NewRequirement: the key a qualified name, each value a label value, Gt/Lt an
    integer."""
    why = check_qualified_name(key)
    if why:
        raise ValueError(f"key: Invalid value: {why}")
    for value in values:
        why = check_label_value(value)
        if why:
            raise ValueError(f"values[0][{key}]: Invalid value: {why}")
    if op in ("Gt", "Lt") and not is_integer(values[0]):
        raise ValueError(f"values[0][{key}]: Invalid value: {values[0]!r}: for 'Gt', 'Lt' operators, "
                         "the value must be an integer")
    return Requirement(key, op, values)


def parse_label_query(query: str) -> LabelSelector:
    """A selector every requirement of which must hold; the empty query selects everything.

    Raises:
        ValueError: the query is not one ``labels.Parse`` accepts (its message).
    """
    parser = _Parser(query)
    reqs: list[Requirement] = []
    if parser.peek() == "":
        return LabelSelector()
    while True:
        reqs.append(parser.requirement())
        tok = parser.take()
        if tok == "":
            return LabelSelector({}, tuple(reqs))
        if tok != ",":
            raise ValueError(f"found '{tok}', expected: ',' or 'end of string'")
        if parser.peek() == "":
            raise ValueError("found '', expected: identifier after ','")
