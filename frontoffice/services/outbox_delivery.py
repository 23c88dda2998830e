"""The outbox worker: claims due deliveries, hands them to their channel's sender, records the outcome.

Life of an ``outbox`` row (state; the message row's ``delivery_state`` mirrors it)::

    queued ──claim──▶ sending ──sent──▶ sent
      ▲                  │ temporary failure (4xx, connection): back off, unless 24 h have passed
      └──────────────────┤
                         └─ permanent failure (5xx), or given up ──▶ failed (with the reason)

* **Claim.** One transaction picks due rows (``queued`` with ``next_attempt_at`` ≤ now, or ``sending``
  whose claim expired: its worker died) and marks them ``sending``, ``claimed_by`` this node until
  ``now + CLAIM_S``. On PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``, so nodes never pick the
  same row; on SQLite one node serves the database and the claim columns carry the same meaning.
* **Order per subject.** A row is due only when no earlier row of its ``subject_key`` is still
  queued or sending: a thread's second reply never overtakes its first.
* **Deliver** outside any transaction, several subjects at once, each bounded by
  ``DELIVERY_TIMEOUT_S`` (shorter than the claim).
* **Finish** in a transaction that only applies while the claim is still ours (fencing): a worker
  that was too slow and lost its claim changes nothing. Delivery is at least once: a worker that
  dies after the relay accepted but before this commit delivers again after the claim expires.
* **Wake** when a transaction that queued something commits (:func:`outbox.install_wake`), else at
  the earliest due time, else every ``IDLE_POLL_S`` (another node may have queued).

Nothing here blocks the event loop: the database calls are async and senders are async.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from frontoffice.aio import cancel_and_wait, wake_or_timeout
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import (
    Customer,
    EntryPoint,
    Interaction,
    Message,
    MessageAttachment,
    OutboxItem,
    Thread,
)

from .context import Clock, system_clock
from .outbox import DeliveryState, OutboxState

__all__ = [
    "CLAIM_S",
    "DELIVERY_TIMEOUT_S",
    "FIRST_RETRY_S",
    "GIVE_UP_AFTER",
    "IDLE_POLL_S",
    "RETRY_CAP_S",
    "AttachmentContent",
    "Delivery",
    "DeliveryChange",
    "DeliveryFailure",
    "DeliveryListener",
    "GiveUpHandler",
    "GivenUp",
    "OutboundMessage",
    "OutboxSender",
    "OutboxWorker",
    "PermanentFailure",
    "TemporaryFailure",
    "retry_delay_s",
]

log = logging.getLogger("frontoffice.outbox")

# The first retry after a temporary failure. Most 4xx answers from a relay are greylisting (which
# accepts a retry after one to five minutes) or a relay restarting; a minute keeps a reply that
# the agent just wrote from waiting long behind a hiccup.
FIRST_RETRY_S = 60.0
# The longest wait between two attempts: doubling from a minute reaches it at the 6th attempt, so a
# relay that comes back is used within half an hour (Postfix caps at ~67 min; a customer waiting
# for an answer is less patient than a mail queue).
RETRY_CAP_S = 1800.0
# Each delay is spread by ±20 %, so deliveries that failed together (a relay outage) do not all
# come back in the same second.
JITTER_FRACTION = 0.4
# Give up after a day: a reply that could not leave in 24 hours is stale, the agent must know
# (RFC 5321 §4.5.4.1 suggests 4–5 days for an MTA's queue; a help desk is answered by another route).
GIVE_UP_AFTER = timedelta(hours=24)
# How long a claim holds a row. Longer than a delivery can take (DELIVERY_TIMEOUT_S), so only a
# dead worker's claim expires; then the row is delivered again (at least once).
CLAIM_S = 300.0
# One delivery's bound: an SMTP conversation with a slow relay (aiosmtplib's own timeouts apply per
# command) plus a large attachment on a slow link.
DELIVERY_TIMEOUT_S = 120.0
# Rows claimed per pass and delivered at once: enough to drain a burst of replies quickly without
# opening dozens of connections to the relay.
CLAIM_BATCH = 16
# Without a wake-up, look again this often: another node may have queued (PostgreSQL), and the
# clock of a due retry is read again.
IDLE_POLL_S = 30.0
# After an unexpected error of the worker itself (the database went away), pause before retrying.
ERROR_PAUSE_S = 5.0
# The reason stored with a failure is cut to this length: relays' replies are short, tracebacks not.
MAX_REASON_CHARS = 2000


class DeliveryFailure(Exception):
    """A delivery did not happen; ``reason`` is shown to the agent (the relay's reply)."""

    permanent = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryFailure):
    """Try again later (SMTP 4xx, connection refused or lost, timeout). ``retry_after_s``: the far
    end asked to wait at least this long (an HTTP ``Retry-After``); the back-off wins when longer."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentFailure(DeliveryFailure):
    """Never retry (SMTP 5xx: unknown recipient, rejected content)."""

    permanent = True


@dataclass(frozen=True, slots=True)
class AttachmentContent:
    """A file of a message to send, with its bytes."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """An outbound ``messages`` row with what its channel needs to send it: the attachments' bytes,
    the entry point it leaves from (address, name, ``config``: from address/name, signature,
    templates, fax gateway, DKIM) and the customer's language."""

    id: int
    interaction_id: int
    thread_id: int | None
    sender: str
    recipients: dict[str, list[str]]
    subject: str
    body: str
    html_body: str | None
    rfc_message_id: str | None
    in_reply_to: str | None
    reference_ids: tuple[str, ...]
    created_at: datetime
    attachments: tuple[AttachmentContent, ...] = ()
    entry_point_address: str | None = None
    entry_point_name: str | None = None
    entry_point_config: dict[str, Any] = field(default_factory=dict)
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed outbox row as a sender gets it (``message``: its message row, when it has one)."""

    item_id: int
    channel: str
    subject_key: str
    payload: dict[str, Any]
    attempt: int
    message: OutboundMessage | None


class OutboxSender(Protocol):
    """A channel's way out (registered in ``bootstrap.py``): deliver or raise a
    :class:`DeliveryFailure` (any other exception counts as temporary)."""

    channel: str

    async def send(self, delivery: Delivery) -> str | None:
        """Deliver ``delivery`` to the outside world; return once it was accepted, with a note for
        the agent when it was accepted only in part (some recipients refused)."""


@dataclass(frozen=True, slots=True)
class DeliveryChange:
    """An outbound message's delivery state changed (committed)."""

    message_id: int
    interaction_id: int
    author_id: int | None
    project_id: int | None
    state: str
    error: str | None


class DeliveryListener(Protocol):
    """Told of delivery state changes after their commit (the WebSocket stream, in ``bootstrap.py``)."""

    def delivery_changed(self, changes: Sequence[DeliveryChange]) -> None:
        """``changes`` were committed."""


@dataclass(frozen=True, slots=True)
class GivenUp:
    """An outbox row its channel failed to deliver for :data:`GIVE_UP_AFTER` (now ``failed``)."""

    item_id: int
    subject_key: str
    payload: dict[str, Any]
    reason: str


class GiveUpHandler(Protocol):
    """Told, inside the transaction that marks them failed, of rows given up after a day of failures
    (the webhooks disable a subscription that keeps failing): registered with the channel's sender."""

    async def given_up(self, session: AsyncSession, items: Sequence[GivenUp]) -> None:
        """``items`` are being marked failed in ``session``'s transaction."""


def retry_delay_s(attempts: int, jitter: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``FIRST_RETRY_S`` doubling up to
    ``RETRY_CAP_S``, spread by ``jitter`` in [0, 1) (0.5: exactly the doubling schedule)."""
    base = min(RETRY_CAP_S, FIRST_RETRY_S * float(2 ** max(0, attempts - 1)))
    return base * (1 - JITTER_FRACTION / 2 + JITTER_FRACTION * jitter)


_EARLIER = aliased(OutboxItem)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    channel: str
    message_id: int | None
    subject_key: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    claimed_until: datetime


class OutboxWorker:
    """Delivers the outbox of one node (see the module's docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        *,
        clock: Clock = system_clock,
        node_id: str | None = None,
        jitter: Callable[[], float] = random.random,
        listener: DeliveryListener | None = None,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.clock = clock
        self.node_id = node_id or socket.gethostname()
        self.jitter = jitter
        self.listener = listener
        self._senders: dict[str, OutboxSender] = {}
        self._give_up_handlers: dict[str, GiveUpHandler] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(self, sender: OutboxSender, *, on_given_up: GiveUpHandler | None = None) -> None:
        """Deliver ``sender.channel``'s rows with ``sender`` (rows of channels without one wait);
        ``on_given_up`` hears of the rows it gave up on."""
        self._senders[sender.channel] = sender
        if on_given_up is not None:
            self._give_up_handlers[sender.channel] = on_given_up

    # ------------------------------------------------------------------ running
    async def start(self) -> None:
        """Take back this node's claims of an earlier run (it stopped mid-delivery) and start
        delivering in the background."""
        if self._task is not None:
            return
        await self.release_own_claims()
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop the background loop (a delivery in flight is abandoned: its claim expires)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def wake(self) -> None:
        """Look for due rows now (called after a commit that queued something; any thread)."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wakeup.set()
        else:
            loop.call_soon_threadsafe(wakeup.set)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()
            try:
                if await self.deliver_due():
                    continue  # more may be due
                due = await self.next_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbox worker failed; trying again in %s s", ERROR_PAUSE_S)
                due = self.clock() + timedelta(seconds=ERROR_PAUSE_S)
            wait = IDLE_POLL_S
            if due is not None:
                wait = min(IDLE_POLL_S, max(0.0, (due - self.clock()).total_seconds()))
            await wake_or_timeout(self._wakeup, wait)

    # ------------------------------------------------------------------ one pass
    def _due(self, now: datetime) -> ColumnElement[bool]:
        earlier_pending = exists().where(
            _EARLIER.subject_key == OutboxItem.subject_key,
            _EARLIER.id < OutboxItem.id,
            _EARLIER.state.in_((OutboxState.QUEUED, OutboxState.SENDING)),
        )
        return and_(
            OutboxItem.channel.in_(sorted(self._senders)),
            or_(
                and_(OutboxItem.state == OutboxState.QUEUED, OutboxItem.next_attempt_at <= now),
                and_(OutboxItem.state == OutboxState.SENDING, OutboxItem.claimed_until < now),
            ),
            ~earlier_pending,
        )

    async def next_due(self) -> datetime | None:
        """When the earliest row that is not waiting behind another of its subject becomes due."""
        if not self._senders:
            return None
        earlier_pending = exists().where(
            _EARLIER.subject_key == OutboxItem.subject_key,
            _EARLIER.id < OutboxItem.id,
            _EARLIER.state.in_((OutboxState.QUEUED, OutboxState.SENDING)),
        )
        when = func.min(
            # A claimed row comes due again when its claim expires.
            func.coalesce(OutboxItem.claimed_until, OutboxItem.next_attempt_at)
        )
        async with self.sessions() as s:
            due: datetime | None = await s.scalar(
                select(when).where(
                    OutboxItem.channel.in_(sorted(self._senders)),
                    OutboxItem.state.in_((OutboxState.QUEUED, OutboxState.SENDING)),
                    ~earlier_pending,
                )
            )
        if due is not None and due.tzinfo is None:  # func.min loses the column's type on SQLite
            due = due.replace(tzinfo=self.clock().tzinfo)
        return due

    async def deliver_due(self) -> int:
        """Claim the rows due now, deliver them and record the outcomes; return how many were
        claimed (0: nothing was due)."""
        if not self._senders:
            return 0
        claimed = await self._claim()
        if not claimed:
            return 0
        deliveries = await self._load(claimed)
        outcomes = await asyncio.gather(*(self._send(d) for d in deliveries))
        await self._finish(list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    async def release_own_claims(self) -> int:
        """Put the rows this node had claimed back in the queue (a restart: their delivery died with
        the old process); return how many."""
        now = self.clock()
        async with self.sessions.begin() as s:
            rows = list(
                await s.execute(
                    update(OutboxItem)
                    .where(OutboxItem.state == OutboxState.SENDING, OutboxItem.claimed_by == self.node_id)
                    .values(
                        state=OutboxState.QUEUED, claimed_by=None, claimed_until=None, next_attempt_at=now
                    )
                    .returning(OutboxItem.message_id)
                )
            )
            message_ids = [m for (m,) in rows if m is not None]
            if message_ids:
                await s.execute(
                    update(Message)
                    .where(Message.id.in_(message_ids))
                    .values(delivery_state=DeliveryState.QUEUED)
                )
        return len(rows)

    async def _claim(self) -> list[_Claimed]:
        now = self.clock()
        until = now + timedelta(seconds=CLAIM_S)
        async with self.sessions.begin() as s:
            pick = (
                select(OutboxItem.id)
                .where(self._due(now))
                .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                .limit(CLAIM_BATCH)
            )
            if s.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True, of=OutboxItem)
            ids = list(await s.scalars(pick))
            if not ids:
                return []
            rows = await s.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(ids))
                .values(
                    state=OutboxState.SENDING,
                    claimed_by=self.node_id,
                    claimed_until=until,
                    attempts=OutboxItem.attempts + 1,
                )
                .returning(
                    OutboxItem.id,
                    OutboxItem.channel,
                    OutboxItem.message_id,
                    OutboxItem.subject_key,
                    OutboxItem.payload,
                    OutboxItem.attempts,
                    OutboxItem.created_at,
                )
            )
            claimed = [
                _Claimed(
                    id=i,
                    channel=channel,
                    message_id=message_id,
                    subject_key=subject_key,
                    payload=payload,
                    attempts=attempts,
                    created_at=created_at,
                    claimed_until=until,
                )
                for i, channel, message_id, subject_key, payload, attempts, created_at in rows
            ]
            claimed.sort(key=lambda c: c.id)
            message_ids = [c.message_id for c in claimed if c.message_id is not None]
            changes = await self._mirror(s, message_ids, DeliveryState.SENDING, None, None)
        self._tell(changes)
        return claimed

    async def _mirror(
        self,
        s: AsyncSession,
        message_ids: list[int],
        state: str,
        error: str | None,
        at: datetime | None,
    ) -> list[DeliveryChange]:
        if not message_ids:
            return []
        values: dict[str, Any] = {"delivery_state": state, "delivery_error": error}
        if at is not None:
            values["delivered_at"] = at
        change = update(Message).where(Message.id.in_(message_ids))
        if state == DeliveryState.SENT:
            # Only from sending: a delivery report (SMS receipt) may already have said delivered
            # or failed between the far end's acceptance and this commit, and it has the last word.
            change = change.where(Message.delivery_state == DeliveryState.SENDING)
        await s.execute(change.values(**values))
        if self.listener is None:
            return []
        rows = await s.execute(
            select(Message.id, Message.interaction_id, Message.author_id, Interaction.project_id)
            .join(Interaction, Interaction.id == Message.interaction_id)
            .where(Message.id.in_(message_ids))
        )
        return [DeliveryChange(m, i, a, p, state, error) for m, i, a, p in rows]

    def _tell(self, changes: list[DeliveryChange]) -> None:
        if changes and self.listener is not None:
            try:
                self.listener.delivery_changed(changes)
            except Exception:
                log.exception("a delivery listener failed")

    async def _load(self, claimed: list[_Claimed]) -> list[Delivery]:
        message_ids = [c.message_id for c in claimed if c.message_id is not None]
        messages: dict[int, OutboundMessage] = {}
        if message_ids:
            async with self.sessions() as s:
                messages = await self._messages(s, message_ids)
        return [
            Delivery(
                item_id=c.id,
                channel=c.channel,
                subject_key=c.subject_key,
                payload=c.payload,
                attempt=c.attempts,
                message=None if c.message_id is None else messages.get(c.message_id),
            )
            for c in claimed
        ]

    async def _messages(self, s: AsyncSession, message_ids: list[int]) -> dict[int, OutboundMessage]:
        rows = await s.execute(
            select(Message, EntryPoint, Customer.language)
            .join(Interaction, Interaction.id == Message.interaction_id)
            .outerjoin(Thread, Thread.id == Message.thread_id)
            .outerjoin(
                EntryPoint, EntryPoint.id == func.coalesce(Thread.entry_point_id, Interaction.entry_point_id)
            )
            .outerjoin(Customer, Customer.id == Interaction.customer_id)
            .where(Message.id.in_(message_ids))
        )
        found = list(rows)
        files: dict[int, list[AttachmentContent]] = {}
        attachments = await s.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.message_id.in_(message_ids))
            .order_by(MessageAttachment.id)
        )
        for a in attachments:
            data = await self.blobs.read(a.sha256)
            files.setdefault(a.message_id, []).append(
                AttachmentContent(a.filename, a.content_type, data, a.content_id, a.inline)
            )
        out: dict[int, OutboundMessage] = {}
        for m, ep, language in found:
            out[m.id] = OutboundMessage(
                id=m.id,
                interaction_id=m.interaction_id,
                thread_id=m.thread_id,
                sender=m.sender,
                recipients={k: list(v) for k, v in (m.recipients or {}).items()},
                subject=m.subject,
                body=m.body,
                html_body=m.html_body,
                rfc_message_id=m.rfc_message_id,
                in_reply_to=m.in_reply_to,
                reference_ids=tuple(m.reference_ids.split()),
                created_at=m.created_at,
                attachments=tuple(files.get(m.id, ())),
                entry_point_address=None if ep is None else ep.address,
                entry_point_name=None if ep is None else ep.name,
                entry_point_config=dict(ep.config or {}) if ep is not None else {},
                language=language,
            )
        return out

    async def _send(self, delivery: Delivery) -> DeliveryFailure | str | None:
        sender = self._senders[delivery.channel]
        try:
            return await asyncio.wait_for(sender.send(delivery), DELIVERY_TIMEOUT_S)
        except DeliveryFailure as failure:
            return failure
        except TimeoutError:
            return TemporaryFailure(f"no answer within {DELIVERY_TIMEOUT_S:.0f} s")
        except Exception as exc:
            log.exception("delivery of outbox row %s failed", delivery.item_id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}")

    async def _finish(self, outcomes: list[tuple[_Claimed, DeliveryFailure | str | None]]) -> None:
        now = self.clock()
        changes: list[DeliveryChange] = []
        given_up: dict[str, list[GivenUp]] = {}
        async with self.sessions.begin() as s:
            for item, failure in outcomes:
                ours = and_(
                    OutboxItem.id == item.id,
                    OutboxItem.state == OutboxState.SENDING,
                    OutboxItem.claimed_by == self.node_id,
                    OutboxItem.claimed_until == item.claimed_until,
                )
                released = {"claimed_by": None, "claimed_until": None}
                mirror: tuple[str, str | None, datetime | None]
                if not isinstance(failure, DeliveryFailure):  # sent (``failure``: a note, or None)
                    values: dict[str, Any] = {
                        "state": OutboxState.SENT,
                        "sent_at": now,
                        "last_error": failure,
                    }
                    mirror = (DeliveryState.SENT, failure, now)
                else:
                    reason = failure.reason[:MAX_REASON_CHARS]
                    gave_up_at = item.created_at + GIVE_UP_AFTER
                    if failure.permanent or now >= gave_up_at:
                        if not failure.permanent:
                            reason = f"gave up after {GIVE_UP_AFTER}: {reason}"
                        values = {"state": OutboxState.FAILED, "last_error": reason}
                        mirror = (DeliveryState.FAILED, reason, None)
                    else:
                        delay = retry_delay_s(item.attempts, self.jitter())
                        if isinstance(failure, TemporaryFailure) and failure.retry_after_s:
                            delay = max(delay, failure.retry_after_s)
                        retry_at = now + timedelta(seconds=delay)
                        # The last attempt is made when the day is over, not a back-off step later.
                        values = {
                            "state": OutboxState.QUEUED,
                            "last_error": reason,
                            "next_attempt_at": min(retry_at, gave_up_at),
                        }
                        mirror = (DeliveryState.QUEUED, reason, None)
                result = await s.execute(update(OutboxItem).where(ours).values(**values, **released))
                if getattr(result, "rowcount", 1) == 0:
                    log.warning("outbox row %s: claim lost before its outcome was recorded", item.id)
                    continue
                if isinstance(failure, DeliveryFailure):
                    log.info("outbox row %s: %s (%s)", item.id, values["state"], failure.reason)
                    if values["state"] == OutboxState.FAILED and not failure.permanent:
                        given_up.setdefault(item.channel, []).append(
                            GivenUp(item.id, item.subject_key, item.payload, values["last_error"])
                        )
                if item.message_id is not None:
                    changes += await self._mirror(s, [item.message_id], *mirror)
            for channel, items in given_up.items():
                handler = self._give_up_handlers.get(channel)
                if handler is not None:
                    await handler.given_up(s, items)
        self._tell(changes)
