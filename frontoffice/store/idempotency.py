"""Remembered answers to API requests sent with an ``Idempotency-Key``.

One row per (user, key): claimed before the request runs (``status_code`` NULL: in progress), filled
with the answer when it ends, replayed to repeats for :data:`IDEMPOTENCY_KEY_TTL`. The claim is a
primary-key insert, so two nodes (or two requests on one node) cannot both run one key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict

from .tables import IdempotentRequest

__all__ = [
    "IDEMPOTENCY_KEY_TTL",
    "IN_PROGRESS_LEASE",
    "IdempotentRequests",
    "StoredAnswer",
]

# How long a key is remembered. 24 h, as Stripe's API does: long enough for any client's retries
# (a browser tab reopened the next morning sends a new key anyway), short enough to keep the table small.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

# A claim still "in progress" after this long belongs to a process that died mid-request (a request
# runs for seconds at most; the slowest, a CSV import, is bounded by the body limit). Past it a repeat
# may run the request again rather than answering "in progress" until the key expires.
IN_PROGRESS_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredAnswer:
    """The answer the first request with a key got, replayed to repeats."""

    status_code: int
    content_type: str | None
    body: bytes


class IdempotentRequests:
    """Claims, completes and replays requests by (user, Idempotency-Key)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    async def claim(self, user_id: int, key: str, request_hash: str) -> StoredAnswer | None:
        """Claim ``key`` for a request, or return the answer a finished first request got.

        ``None`` means the caller owns the key now: it runs the request, then calls :meth:`finish`
        (or :meth:`release` when the request failed and may be retried). Raises
        ``409 idempotency-key-reused`` for the same key with another request, and
        ``409 idempotency-key-in-progress`` while the first request still runs.
        """
        now = self.clock()
        try:
            async with self.sessions() as s, s.begin():
                # Expired keys are forgotten here, a range delete on an index (usually no row).
                await s.execute(
                    delete(IdempotentRequest).where(IdempotentRequest.created_at < now - IDEMPOTENCY_KEY_TTL)
                )
                s.add(IdempotentRequest(user_id=user_id, key=key, request_hash=request_hash, created_at=now))
            return None
        except IntegrityError:
            pass
        async with self.sessions() as s, s.begin():
            found = await s.get(IdempotentRequest, (user_id, key))
            if found is None:  # the holder released it in between: the caller may retry the request
                raise Conflict(
                    "A request with this Idempotency-Key is still running",
                    error_id="idempotency-key-in-progress",
                )
            if found.request_hash != request_hash:
                raise Conflict(
                    "This Idempotency-Key was used with a different request",
                    error_id="idempotency-key-reused",
                )
            if found.status_code is not None:
                return StoredAnswer(found.status_code, found.content_type, found.body or b"")
            if found.created_at > now - IN_PROGRESS_LEASE:
                raise Conflict(
                    "A request with this Idempotency-Key is still running",
                    error_id="idempotency-key-in-progress",
                )
            # A stale claim: take it over only if nobody else did meanwhile (compare and set).
            taken = await s.execute(
                update(IdempotentRequest)
                .where(
                    IdempotentRequest.user_id == user_id,
                    IdempotentRequest.key == key,
                    IdempotentRequest.created_at == found.created_at,
                    IdempotentRequest.status_code.is_(None),
                )
                .values(created_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    "A request with this Idempotency-Key is still running",
                    error_id="idempotency-key-in-progress",
                )
            return None

    async def finish(self, user_id: int, key: str, answer: StoredAnswer) -> None:
        """Remember the answer of a claimed request for its repeats."""
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.user_id == user_id, IdempotentRequest.key == key)
                .values(status_code=answer.status_code, content_type=answer.content_type, body=answer.body)
                .execution_options(synchronize_session=False)
            )

    async def release(self, user_id: int, key: str) -> None:
        """Give up a claim whose request failed without an answer worth keeping: a repeat runs again."""
        async with self.sessions() as s, s.begin():
            await s.execute(
                delete(IdempotentRequest)
                .where(
                    IdempotentRequest.user_id == user_id,
                    IdempotentRequest.key == key,
                    IdempotentRequest.status_code.is_(None),
                )
                .execution_options(synchronize_session=False)
            )
