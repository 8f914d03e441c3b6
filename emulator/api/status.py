"""Errors as the API server returns them: ``Status`` objects with the HTTP code and reason that
client-go turns into ``IsNotFound``, ``IsAlreadyExists``, ``IsInvalid`` and kubectl's messages.
"""
from __future__ import annotations

from emulator.errors import AlreadyExistsError, ForbiddenError, K8semuError, NotFoundError, SpecError


class ApiError(Exception):
    """An answer other than success: ``code``, ``reason`` and the Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def body(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found',
                    {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural})


def _what(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_what(plural, group)} "{name}" already exists',
                    {"name": name, "kind": plural})


def conflict(plural: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {_what(plural, group)} "{name}": the object '
                                     "has been modified; please apply your changes to the latest version and try "
                                     "again", {"name": name, "kind": plural})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def invalid(kind: str, name: str, group: str, exc: SpecError) -> ApiError:
    """422 Invalid with one cause per problem, fields as the API server names them."""
    causes = [{"reason": "FieldValueInvalid", "message": p.message, "field": p.field} for p in exc.problems]
    summary = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in exc.problems)
    details = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


def from_error(exc: K8semuError, kind: str, plural: str, name: str, group: str = "") -> ApiError:
    """The Status for an error the cluster raised while serving a request."""
    if isinstance(exc, NotFoundError):
        return not_found(plural, name, group)
    if isinstance(exc, AlreadyExistsError):
        return already_exists(plural, name, group)
    if isinstance(exc, SpecError):
        return invalid(kind, name, group, exc)
    if isinstance(exc, ForbiddenError):
        return forbidden(str(exc))
    return ApiError(500, "InternalError", str(exc))
