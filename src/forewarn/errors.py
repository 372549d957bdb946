"""Domain errors with stable codes. Shells (CLI, API) map codes to exit statuses or HTTP statuses once."""

from __future__ import annotations

from typing import Any


class ForewarnError(Exception):
    """Base of every error Forewarn reports to a user: a code, a message and optional details."""

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def as_dict(self) -> dict[str, Any]:
        """The one error shape: code, message, details."""
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(ForewarnError):
    """Input that fails validation (geometry, altitudes, times, references). Nothing was stored."""

    code = "invalid_input"


class NotFound(ForewarnError):
    """A party, agreement, operation or site that does not exist."""

    code = "not_found"


class Unauthenticated(ForewarnError):
    """No credentials, or credentials that do not check out."""

    code = "unauthenticated"


class Forbidden(ForewarnError):
    """A party acting on a record it does not own, or without the scope for the request."""

    code = "forbidden"


class StaleVersion(ForewarnError):
    """An amendment that names a version other than the current one."""

    code = "stale_version"


class LimitReached(ForewarnError):
    """A party already holds as many records of a kind as a setting allows (sites, subscriptions)."""

    code = "limit_reached"


class InvalidTransition(ForewarnError):
    """An operation state change that its current state does not allow."""

    code = "invalid_transition"


def validation_errors(exc: Any) -> list[dict[str, str]]:
    """A pydantic ``ValidationError`` as a list of ``{"field", "message"}`` (for error details)."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
