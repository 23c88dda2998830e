"""Domain errors. Each carries a kebab-case ``error_id`` and ``details`` for the API boundary."""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "Throttled",
    "Unauthenticated",
    "Unavailable",
]


class DomainError(Exception):
    """Base of all errors a use case raises on purpose."""

    error_id = "domain-error"

    def __init__(self, message: str, *, error_id: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if error_id is not None:
            self.error_id = error_id
        self.details: dict[str, Any] = details


class NotFound(DomainError):
    error_id = "not-found"


class InvalidInput(DomainError):
    error_id = "invalid-input"


class Conflict(DomainError):
    error_id = "conflict"


class Unauthenticated(DomainError):
    error_id = "not-authenticated"


class Forbidden(DomainError):
    error_id = "forbidden"


class Throttled(DomainError):
    error_id = "too-many-attempts"

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Gone(DomainError):
    """What was asked for existed and is no longer kept (a change-feed cursor older than the
    deletions kept): start again from the beginning."""

    error_id = "gone"


class Unavailable(DomainError):
    """Not possible right now, try again (the routing node of a cluster is changing hands)."""

    error_id = "unavailable"
