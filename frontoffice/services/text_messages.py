"""Writing a text channel's inbound message inside the caller's transaction: its thread (opened or
continued), the message row with its identity and flags, its attachments (blobs already written,
recorded here) and its mailbox receipt (the dedupe of a repeated delivery).

Used by intake's ``TakeInContact`` (a message that starts a new turn: one ACD transaction) and by
the email intake when a message joins a thread whose interaction is still open (a plain
transaction, no ACD command). Core statements only: this runs on the contact path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Insert,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain.model import Direction, InteractionEventType
from frontoffice.store.blobs import BlobRef, record_blobs
from frontoffice.store.tables import EmailReceipt, Message, MessageAttachment, Thread

from .channel_contract import InboundMessage
from .interactions import EventSubject, log_event

__all__ = ["open_thread", "store_message"]

_THREADS = cast(Table, Thread.__table__)
_MESSAGES = cast(Table, Message.__table__)
_THREAD_VALUES = (
    "channel",
    "entry_point_id",
    "customer_id",
    "subject",
    "last_agent_id",
    "merged_into_id",
    "created_at",
    "last_message_at",
)


def _insert_thread(next_id: ColumnElement[Any]) -> Insert:
    """A thread's row whose token is its id, in one statement: the id is chosen in the statement
    (``next_id``) and written to both columns."""
    chosen = select(next_id.label("n")).subquery("chosen")
    columns = [bindparam(name, type_=_THREADS.c[name].type) for name in _THREAD_VALUES]
    return (
        insert(_THREADS)
        .from_select(("id", "token", *_THREAD_VALUES), select(chosen.c.n, chosen.c.n, *columns))
        .returning(_THREADS.c.id)
    )


# Built once per dialect. PostgreSQL: the id column's sequence (atomic, as its default would be).
# SQLite: the next rowid, as SQLite's own choice for an INTEGER PRIMARY KEY without AUTOINCREMENT
# (the largest plus one); a write statement takes the write lock before it reads, on the newest
# snapshot (or fails busy and runs again), so no other connection inserts in between.
_INSERT_THREAD = {
    "postgresql": _insert_thread(
        literal_column("nextval(pg_get_serial_sequence('threads', 'id'))", BigInteger)
    ),
    "sqlite": _insert_thread(
        select(
            func.coalesce(func.max(_THREADS.c.id), literal_column("0")) + literal_column("1")
        ).scalar_subquery()
    ),
}
_TOUCH_THREAD = (
    update(_THREADS).where(_THREADS.c.id == bindparam("thread_id")).values(last_message_at=bindparam("at"))
)
_INSERT_MESSAGE = insert(_MESSAGES)
_INSERT_ATTACHMENT = insert(cast(Table, MessageAttachment.__table__))
_INSERT_RECEIPT = insert(cast(Table, EmailReceipt.__table__))


async def open_thread(
    s: AsyncSession,
    *,
    channel: str,
    entry_point_id: int | None,
    customer_id: int | None,
    subject: str,
    now: datetime,
) -> tuple[int, int]:
    """Open a thread in the caller's transaction; returns its id and token. The one place thread
    tokens are given (intake, the outbox's replies to contacts without a thread, splits): the
    token (the public number subjects carry as ``[#token]``) is the thread's id — short, unique,
    known to no one before the thread exists — written with the row in one statement."""
    result = await s.execute(
        _INSERT_THREAD[s.get_bind().dialect.name],
        {
            "channel": channel,
            "entry_point_id": entry_point_id,
            "customer_id": customer_id,
            "subject": subject[:998],
            "last_agent_id": None,
            "merged_into_id": None,
            "created_at": now,
            "last_message_at": now,
        },
    )
    thread_id = int(result.scalar_one())
    return thread_id, thread_id


async def store_message(
    s: AsyncSession,
    interaction: EventSubject,
    message: InboundMessage,
    *,
    thread_id: int,
    entry_point_id: int | None,
    now: datetime,
    touch_thread: bool = True,
) -> int:
    """Store an inbound message of ``interaction`` in thread ``thread_id`` with its attachments and
    receipt, and log it on the interaction; returns the message's id. A repeated ``dedupe_id`` in
    the same mailbox fails the unique constraint (the caller's transaction rolls back).
    ``touch_thread=False``: the caller opened the thread at ``now`` in this transaction (its
    ``last_message_at`` is ``now`` already), so it is not updated again."""
    result = cast(
        "CursorResult[Any]",
        await s.execute(
            _INSERT_MESSAGE,
            {
                "interaction_id": interaction.id,
                "thread_id": thread_id,
                "direction": Direction.INBOUND.value,
                "sender": message.sender[:320],
                "recipients": {k: list(v) for k, v in message.recipients.items()},
                "subject": message.subject[:998],
                "body": message.body,
                "content_type": message.content_type,
                "html_body": message.html_body,
                "external_id": None if message.rfc_message_id is None else message.rfc_message_id[:500],
                "rfc_message_id": message.rfc_message_id,
                "in_reply_to": message.in_reply_to,
                "reference_ids": " ".join(message.reference_ids),
                "thread_reason": message.thread_reason,
                "flags": dict(message.flags),
                "raw_sha256": message.raw_sha256,
                "author_id": None,
                "delivery_state": None,
                "delivery_error": None,
                "delivered_at": None,
                "created_at": now,
            },
        ),
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert
    message_id = int(key[0])
    if message.dedupe_id is not None and entry_point_id is not None:
        await s.execute(
            _INSERT_RECEIPT,
            {
                "entry_point_id": entry_point_id,
                "rfc_message_id": message.dedupe_id[:998],
                "message_id": message_id,
                "sender": message.sender[:320],
                "received_at": now,
                "auto_acknowledged": False,
            },
        )
    blobs = {a.sha256: BlobRef(a.sha256, a.size) for a in message.attachments}
    if message.raw_sha256 is not None:
        blobs[message.raw_sha256] = BlobRef(message.raw_sha256, message.raw_size)
    # Sorted: two transactions recording the same blobs take their row locks in one order (PG).
    await record_blobs(s, [blobs[k] for k in sorted(blobs)])
    if message.attachments:
        await s.execute(
            _INSERT_ATTACHMENT,
            [
                {
                    "message_id": message_id,
                    "sha256": a.sha256,
                    "filename": a.filename[:255],
                    "content_type": a.content_type[:255],
                    "size": a.size,
                    "content_id": a.content_id,
                    "inline": a.inline,
                }
                for a in message.attachments
            ],
        )
    if touch_thread:
        await s.execute(_TOUCH_THREAD, {"thread_id": thread_id, "at": now})
    log_event(
        s,
        interaction,
        InteractionEventType.MESSAGE,
        now,
        message_id=message_id,
        direction=Direction.INBOUND.value,
        thread_id=thread_id,
    )
    return message_id
