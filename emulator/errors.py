"""The k8semu exception hierarchy.

Every error the library raises derives from ``K8semuError`` and carries the exit status the CLI
should use; only ``emulator.cli.main`` catches, prints and exits. Input errors collect every
problem found (``SpecError.problems``) so that a user fixes a file in one go, and each problem
points at the file, line and column of the offending value.
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.status import ExitStatus


@dataclass(frozen=True)
class SourceRef:
    """Where a value came from: enough to print ``file:line:col`` and the line with a caret."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    text: str = ""  # the source line, without its newline
    width: int = 1  # how many characters the caret underlines

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where, which field, and what."""

    where: SourceRef | None
    field: str
    message: str

    def render(self) -> str:
        head = f"{self.where}: " if self.where else ""
        field = f"{self.field}: " if self.field else ""
        out = f"{head}{field}{self.message}"
        if self.where and self.where.text:
            caret = " " * (self.where.col - 1) + "^" + "~" * max(0, min(self.where.width, 60) - 1)
            out += f"\n    {self.where.text}\n    {caret}"
        return out


class K8semuError(Exception):
    """Base of every error k8semu reports to a user."""

    exit_code: ExitStatus = ExitStatus.ERROR


class SpecError(K8semuError):
    """The cluster spec, a manifest or a scenario is invalid; nothing was created."""

    exit_code = ExitStatus.SPEC_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class NotRootError(K8semuError):
    exit_code = ExitStatus.NOT_ROOT

    def __init__(self, what: str = "k8semu") -> None:
        super().__init__(f"{what} must run as root (try: sudo {what})")


class MissingToolError(K8semuError):
    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"'{tool}' was not found: {hint}")


class ClusterRunningError(K8semuError):
    """A second ``up`` while a cluster is running."""


class NoClusterError(K8semuError):
    """A command needs a running cluster and there is none."""


class NotFoundError(K8semuError):
    """A named object (pod, node, deployment) does not exist."""


class AlreadyExistsError(K8semuError):
    """A create named an object that exists (the API server's 409 AlreadyExists)."""


class ForbiddenError(K8semuError):
    """The API server's 403: an admission plugin refused the object (a pod naming a missing
    ServiceAccount)."""


class TooManyRequestsError(K8semuError):
    """The API server's 429: an eviction a PodDisruptionBudget refuses now (kubectl drain retries)."""


class RuntimeFailure(K8semuError):
    """Something the kernel, OVS or a process did not do as asked."""


class RenderError(K8semuError):
    """A value cannot be written into a configuration file safely; the object that carries it
    fails alone (the renderers check again what the spec layer checked)."""


def problem(where: SourceRef | None, field: str, message: str) -> Problem:
    """Shorthand used by validators."""
    return Problem(where, field, message)


def to_wire(exc: K8semuError) -> dict:
    """An error as k8semu's API carries it to a client (in its Status's details): its class,
    its text and, for a SpecError, each problem with its file, line and column, so the client
    re-raises what the manager raised (``from_wire``) and prints it, exit status included, as
    if it had happened there."""
    out: dict = {"class": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SpecError):
        out["problems"] = [{"field": p.field, "message": p.message,
                            "where": vars(p.where).copy() if p.where else None} for p in exc.problems]
    return out


def _subclasses(cls: type) -> list[type]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _subclasses(sub)]


def from_wire(wire: dict) -> K8semuError:
    """The error ``to_wire`` described: the same class when k8semu has it (else K8semuError)."""
    classes = {c.__name__: c for c in _subclasses(K8semuError)}
    cls = classes.get(str(wire.get("class")), K8semuError)
    message = str(wire.get("message", ""))
    if issubclass(cls, SpecError):
        problems = [Problem(SourceRef(**p["where"]) if p.get("where") else None, str(p.get("field", "")),
                            str(p.get("message", ""))) for p in wire.get("problems") or []]
        return cls(problems or [Problem(None, "", message)])
    exc = cls.__new__(cls)  # some take other arguments: the text is what travels
    Exception.__init__(exc, message)
    return exc
