"""Who is acting and what time it is: passed to every use case, never read from globals."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain.exceptions import Forbidden, InvalidInput
from frontoffice.domain.model import Role
from frontoffice.domain.permissions import PERMISSION_SCOPES, role_allows, scope_allows
from frontoffice.store.append_log import append_row
from frontoffice.store.tables import AuditEntry

from .schemas import Page

__all__ = [
    "Actor",
    "Clock",
    "audit",
    "decode_cursor",
    "decode_id_cursor",
    "encode_cursor",
    "id_page",
    "system_clock",
]

Clock = Callable[[], datetime]

# The audit log is append-only like the event logs: its rows go out with theirs (store/append_log.py).
_AUDIT_LOG = cast(Table, AuditEntry.__table__)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user (or token owner, or the system) on whose behalf a use case runs."""

    user_id: int | None
    role: Role
    username: str = "system"
    ip: str | None = None
    language: str = "en"
    via_token: bool = False
    project_ids: frozenset[int] | None = field(default=None)
    # An API token's scopes (domain/permissions.py); None: not limited by scopes (a browser session,
    # the system).
    scopes: frozenset[str] | None = field(default=None)
    token_id: int | None = None  # the API token acting, if any

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role=Role.ADMIN, username="system")

    def sees_project(self, project_id: int | None) -> bool:
        """Whether the actor may see what belongs to ``project_id``. Things of no project (queues
        without one, agent states) are everyone's; a user without a limit sees every project."""
        return self.project_ids is None or project_id is None or project_id in self.project_ids

    def can(self, permission: str) -> bool:
        """Whether the actor's role holds ``permission`` and, for a token, one of its scopes grants it."""
        return role_allows(self.role, permission) and scope_allows(self.scopes, permission)

    def require(self, permission: str) -> None:
        if not role_allows(self.role, permission):
            raise Forbidden(
                "You do not have permission for this action", error_id="forbidden", permission=permission
            )
        if not scope_allows(self.scopes, permission):
            raise Forbidden(
                "This API token's scopes do not allow this action",
                error_id="token-scope",
                refused=permission,
                scopes_that_allow=sorted(PERMISSION_SCOPES.get(permission, frozenset()) | {"admin"}),
            )


def audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object = None,
    now: datetime | None = None,
    **details: object,
) -> None:
    """Record an action in the audit log, inside the caller's transaction.

    The row is appended like the event logs' rows (:mod:`frontoffice.store.append_log`): written in
    one statement with the transaction's other log rows, before its commit or a query that could read
    it, and dropped by a rollback — no ORM object and no unit-of-work flush per entry.

    ``project_id`` (keyword, not a detail): the client project the action concerns, if one; a user
    limited to projects reads the entries of their projects (and their own actions)."""
    project_id = details.pop("project_id", None)
    append_row(
        session,
        _AUDIT_LOG,
        {
            "at": now or system_clock(),
            "actor_id": actor.user_id,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "details": dict(details),
            "ip": actor.ip,
            "project_id": project_id if isinstance(project_id, int) else None,
        },
    )


def encode_cursor(*values: object) -> str:
    raw = "|".join(str(v) for v in values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    """Decode a cursor made by :func:`encode_cursor`; a tampered cursor is a 400, not a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = []
    if len(values) != parts:
        raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor")
    return values


def decode_id_cursor(cursor: str) -> int:
    """The row id inside a cursor made by ``encode_cursor(id)``."""
    (value,) = decode_cursor(cursor, 1)
    try:
        row_id = int(value)
    except ValueError:
        row_id = -1
    if not 0 <= row_id < 2**63:
        raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor")
    return row_id


T = TypeVar("T")


def id_page(rows: Sequence[Any], limit: int, convert: Callable[[Any], T]) -> Page[T]:
    """A page from up to ``limit + 1`` rows fetched newest id first; the extra row only says
    that there is a next page, whose cursor is the id of the last row shown."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return Page[T](
        items=[convert(r) for r in shown], next_cursor=encode_cursor(shown[-1].id) if more else None
    )
