"""A small builder for nginx configuration: directives and blocks as values, rendered with every
argument passed through ``token``, which refuses control characters and double-quotes anything
that is not made of plainly safe characters. Nothing reaches nginx.conf by string formatting.

Why a builder rather than a template: nginx's grammar is ``name args... ;`` and
``name args... { ... }``, and the injection the landed renderer allowed (an Ingress path
``/x { alias /etc/; } location /y`` closing its location and opening another) is exactly an
argument that spills into syntax. Quoting every argument makes that impossible by
construction; the spec layer still refuses such paths first (``model.validation``).

Quoting follows nginx's parser (ngx_conf_file.c): inside double quotes ``\\"`` and ``\\\\`` are
escapes and every other character, ``;{}#`` and spaces included, is literal. Variables (``$x``)
are still expanded in the directives that expand them; values that may carry a ``$`` (a regex
path, a rewrite target) are limited to what ingress-nginx's own validators accept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

SAFE = re.compile(r"[A-Za-z0-9_./:~*=^+@,-]+")
NAME = re.compile(r"[a-z_][a-z0-9_]*")


class NginxConfError(ValueError):
    """A value cannot be written into nginx.conf safely."""


@dataclass(frozen=True)
class Raw:
    """Syntax that k8semu's own code writes (a location modifier, a log format): never data."""
    text: str


Arg = Union[str, int, Raw]


def token(value: Arg) -> str:
    """One nginx argument, bare when safe, else double-quoted.

    Raises:
        NginxConfError: the value is empty or holds a control character.
    """
    if isinstance(value, Raw):
        return value.text
    text = str(value)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise NginxConfError(f"{text!r} cannot be written into nginx.conf (empty, or a control character)")
    if SAFE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Directive:
    name: str | Raw  # Raw: a map's key written by k8semu's code (``""``, ``default``)
    args: tuple[Arg, ...] = ()

    def render(self, indent: int) -> list[str]:
        head = self.name.text if isinstance(self.name, Raw) else _name(self.name)
        return [" " * indent + " ".join([head] + [token(a) for a in self.args]) + ";"]


@dataclass
class Block:
    name: str
    args: tuple[Arg, ...] = ()
    children: list[Union["Block", Directive]] = field(default_factory=list)

    def add(self, name: str | Raw, *args: Arg) -> "Block":
        self.children.append(Directive(name, args))
        return self

    def block(self, name: str, *args: Arg) -> "Block":
        child = Block(name, args)
        self.children.append(child)
        return child

    def render(self, indent: int = 0) -> list[str]:
        head = " ".join([_name(self.name)] + [token(a) for a in self.args])
        lines = [" " * indent + head + " {"]
        for child in self.children:
            lines += child.render(indent + 4)
        return lines + [" " * indent + "}"]


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise NginxConfError(f"{name!r} is not a directive name")
    return name


def render(items: list[Union[Block, Directive]]) -> str:
    """The configuration file's text."""
    out: list[str] = []
    for item in items:
        out += item.render(0)
    return "\n".join(out) + "\n"
