"""Calico's label selectors (``nodeSelector``, ``peerSelector`` of a BGPPeer; an IPPool's
``nodeSelector``), parsed into a predicate over a node's labels.

The grammar is Calico's (libcalico-go's ``selector/parser``): ``all()``; ``has(k)``;
``k == 'v'``, ``k != 'v'``; ``k in {'a', 'b'}``, ``k not in {...}``; ``k contains 's'``,
``k starts with 's'``, ``k ends with 's'``; ``!`` before any of them; ``&&`` binding tighter than
``||``; parentheses. Values are single- or double-quoted. Written here, not borrowed: Calico's
parser is Go and no Python package implements it; the grammar is small and a selector that does
not parse is refused with the position where it stopped.
"""
from __future__ import annotations

import functools
import re
from typing import Callable

Predicate = Callable[[dict[str, str]], bool]
MAX_LENGTH = 4096  # a selector longer than this is refused (Calico's are a line)
TOKEN = re.compile(r"""\s*(?:(?P<op>&&|\|\||==|!=|!|\(|\)|\{|\}|,)|(?P<str>'[^']*'|"[^"]*")|"""
                   r"""(?P<word>[A-Za-z0-9][A-Za-z0-9._/-]*(?:\(\))?))""")


class SelectorError(ValueError):
    """A selector that does not parse: what was expected, and where."""


def _tokens(text: str) -> list[str]:
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        m = TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise SelectorError(f"unexpected character at position {at}: {text[at:at + 10]!r}")
        out.append(m.group(m.lastgroup or "word"))
        at = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens, self.at = _tokens(text), 0

    def peek(self, n: int = 0) -> str:
        return self.tokens[self.at + n] if self.at + n < len(self.tokens) else ""

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if not tok or (want is not None and tok != want):
            raise SelectorError(f"expected {want or 'more'} at token {self.at + 1}, got {tok or 'the end'!r}")
        self.at += 1
        return tok

    def value(self) -> str:
        tok = self.take()
        if len(tok) < 2 or tok[0] not in "'\"" or tok[-1] != tok[0]:
            raise SelectorError(f"expected a quoted value at token {self.at}, got {tok!r}")
        return tok[1:-1]

    def expr(self) -> Predicate:
        terms = [self.conj()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conj())
        return terms[0] if len(terms) == 1 else (lambda labels: any(t(labels) for t in terms))

    def conj(self) -> Predicate:
        terms = [self.unary()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda labels: all(t(labels) for t in terms))

    def unary(self) -> Predicate:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda labels: not inner(labels)
        if self.peek() == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        return self.atom()

    def atom(self) -> Predicate:
        word = self.take()
        if word == "all()":
            return lambda labels: True
        if word == "has":
            self.take("(")
            key = self.take()
            self.take(")")
            return lambda labels: key in labels
        key, op = word, self.take()
        if op in ("==", "!="):
            want = self.value()
            return (lambda labels: labels.get(key) == want) if op == "==" else (lambda labels: labels.get(key) != want)
        if op == "not" and self.peek() == "in":
            self.take()
            values = self.values()
            return lambda labels: labels.get(key) not in values
        if op == "in":
            values = self.values()
            return lambda labels: labels.get(key) in values
        if op == "contains":
            part = self.value()
            return lambda labels: part in labels.get(key, "\0")
        if op in ("starts", "ends"):
            self.take("with")
            part = self.value()
            if op == "starts":
                return lambda labels: key in labels and labels[key].startswith(part)
            return lambda labels: key in labels and labels[key].endswith(part)
        raise SelectorError(f"unknown operator {op!r} after {key!r}")

    def values(self) -> frozenset[str]:
        self.take("{")
        out = set()
        while self.peek() != "}":
            out.add(self.value())
            if self.peek() == ",":
                self.take()
        self.take("}")
        return frozenset(out)


@functools.lru_cache(maxsize=1024)  # every address an IPPool hands out asks its nodeSelector
def parse(text: str) -> Predicate:
    """A predicate over labels; an empty selector selects nothing (Calico: "" is no selector).

    Raises:
        SelectorError: the selector does not parse.
    """
    if not text.strip():
        return lambda labels: False
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"longer than {MAX_LENGTH} characters")
    parser = _Parser(text)
    try:
        predicate = parser.expr()
    except RecursionError:
        raise SelectorError("nested too deeply") from None
    if parser.peek():
        raise SelectorError(f"unexpected {parser.peek()!r} at token {parser.at + 1}")
    return predicate


def check(text: str) -> str | None:
    """Why ``text`` is not a selector, or None."""
    try:
        parse(text)
    except SelectorError as exc:
        return f'Invalid value: "{text}": invalid selector: {exc}'
    return None
