"""SMS and messenger use cases around the conversation service: inbound SMS and Telegram messages
taken in, opt-out keywords, delivery receipts, the addresses an outbound message goes to, the
Telegram poller's offset.

* **Inbound SMS** (SMPP or an HTTP gateway): one thread per customer number per entry point (the
  conversation service's rule), the number as the customer's phone identity. A message that is
  exactly an opt-out keyword (:data:`OPT_OUT_KEYWORDS`, case and punctuation ignored) records the
  opt-out on the customer (``customers.custom["sms_opt_out"][<entry point id>]`` = when and which
  keyword: the outbound-campaign work reads it there) and is stored like any message; ``START`` /
  ``СТАРТ`` lifts it. In the same transaction the number goes on the do-not-call list of the entry
  point's project (global for an entry point of no project), and ``START`` takes it off again
  (:func:`frontoffice.services.dnc.add_opt_out`): a customer who asked for no more messages is not
  dialled by a campaign either.
* **Outbound SMS**: refused with ``sms-opted-out`` while the number is opted out on that entry point
  (checked when the agent sends, :func:`check_may_send`, and again by the sender).
* **Receipts**: each SMS part's SMSC message id is recorded per entry point (``email_receipts``, key
  ``smsc:<id>``: the shared receipts table and its unique index); a receipt marks the message
  ``delivered`` when every part was delivered, ``failed`` (with the SMSC's stat/err) when one failed.
* **Telegram**: the user is a customer identity ``messenger`` ``telegram:<user id>``; a contact the
  user shares (their own) adds its phone to the card; the long-polling offset is kept in
  ``site_settings`` (``telegram.offset.<entry point id>``), saved after the batch's messages
  committed: a restart repeats at most that batch, which the dedupe by message id absorbs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind
from frontoffice.store.tables import (
    Customer,
    EmailReceipt,
    EntryPoint,
    Interaction,
    Message,
    SiteSetting,
    Thread,
    utcnow,
)

from .channel_contract import CustomerIdentity, InboundAttachment
from .context import Clock, system_clock
from .conversations import ConversationIn, ConversationReceived, Conversations
from .dnc import add_opt_out, remove_opt_out
from .identities import normalize_identity
from .outbox import DeliveryState

__all__ = [
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "Messaging",
    "OutboundAddress",
    "check_may_send",
    "is_opt_in",
    "is_opt_out",
]

# Replies that end SMS from an entry point (CTIA's STOP family, and the Russian words operators'
# short numbers honour). A message that is exactly one of them, not one containing it: "не могу
# остановить подписку" is a question for an agent.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "СТОП", "ОТПИСКА", "ОТПИСАТЬСЯ"}
)
# Replies that lift an opt-out.
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "СТАРТ"})
_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SMSC_KEY = "smsc:"


def _keyword(text: str) -> str:
    return _WORD.sub("", text).upper()


def is_opt_out(text: str) -> bool:
    """Whether an inbound SMS is an opt-out keyword (whole message; case and punctuation ignored)."""
    return _keyword(text) in OPT_OUT_KEYWORDS


def is_opt_in(text: str) -> bool:
    return _keyword(text) in OPT_IN_KEYWORDS


@dataclass(frozen=True, slots=True)
class OutboundAddress:
    """Where a thread's outbound message goes: the customer's number (SMS) or Telegram chat id, and
    the entry point it leaves from."""

    to: str
    entry_point_id: int
    entry_point_address: str


async def check_may_send(session: AsyncSession, interaction: Interaction) -> None:
    """Refuse an SMS to a number that opted out on the interaction's entry point (``sms-opted-out``)."""
    if interaction.channel != Channel.SMS.value or interaction.customer_id is None:
        return
    custom = await session.scalar(select(Customer.custom).where(Customer.id == interaction.customer_id))
    entry = await session.scalar(select(Thread.entry_point_id).where(Thread.id == interaction.thread_id))
    record = ((custom or {}).get("sms_opt_out") or {}).get(str(entry or interaction.entry_point_id))
    if record:
        raise Conflict(
            "The customer opted out of SMS from this number",
            error_id="sms-opted-out",
            since=record.get("at"),
            keyword=record.get("keyword"),
        )


class Messaging:
    """SMS and Telegram around :class:`Conversations` (see the module's docstring)."""

    def __init__(
        self, conversations: Conversations, *, clock: Clock = system_clock, region: str = "RU"
    ) -> None:
        self.conversations = conversations
        # Region of numbers written without +country (settings.default_region): the DNC list is E.164.
        self.region = region
        self.sessions: async_sessionmaker[AsyncSession] = conversations.sessions
        self.clock = clock
        # Receipts of one message's parts come at once; their read-modify-write of the message's
        # flags is serialised on this node (SQLite ignores FOR UPDATE; PostgreSQL also locks the row).
        self._receipts = asyncio.Lock()

    # ------------------------------------------------------------------ SMS in
    async def sms_received(
        self,
        entry_point: str,
        sender: str,
        text: str,
        external_id: str,
        *,
        complete: bool = True,
    ) -> ConversationReceived:
        """A customer's SMS to our number ``entry_point``; returns after the commit."""
        flags: dict[str, Any] = {} if complete else {"incomplete": True}
        if is_opt_out(text):
            flags["opt_out"] = True
        elif is_opt_in(text):
            flags["opt_in"] = True
        received = await self.conversations.receive(
            ConversationIn(
                channel=Channel.SMS,
                customer=CustomerIdentity(phone=sender),
                external_id=external_id,
                body=text,
                entry_point=entry_point,
                sender=sender,
                flags=flags,
            )
        )
        if (
            received.outcome != "duplicate"
            and received.customer_id is not None
            and (flags.get("opt_out") or flags.get("opt_in"))
        ):
            await self._record_consent(
                received, sender, opted_out=bool(flags.get("opt_out")), keyword=_keyword(text)
            )
        return received

    async def _record_consent(
        self, received: ConversationReceived, sender: str, *, opted_out: bool, keyword: str
    ) -> None:
        now = self.clock()
        async with self.sessions.begin() as s:
            entry_point_id = await s.scalar(
                select(Thread.entry_point_id).where(Thread.id == received.thread_id)
            )
            customer = await s.get(Customer, received.customer_id, with_for_update=True)
            if customer is None:
                return
            custom = dict(customer.custom or {})
            records = dict(custom.get("sms_opt_out") or {})
            if opted_out:
                records[str(entry_point_id)] = {"at": now.isoformat(), "keyword": keyword}
            else:
                records.pop(str(entry_point_id), None)
            custom["sms_opt_out"] = records
            customer.custom = custom
            try:
                phone = normalize_identity(IdentityKind.PHONE, sender, self.region)
            except InvalidInput:
                return  # not a number anyone could dial (an alphanumeric sender)
            project_id = await s.scalar(select(EntryPoint.project_id).where(EntryPoint.id == entry_point_id))
            if opted_out:
                await add_opt_out(s, phone, project_id, reason=f"SMS opt-out ({keyword})", now=now)
            else:
                await remove_opt_out(s, phone, project_id, now=now)

    async def opted_out(self, customer_id: int, entry_point_id: int) -> bool:
        async with self.sessions() as s:
            custom = await s.scalar(select(Customer.custom).where(Customer.id == customer_id))
        return bool(((custom or {}).get("sms_opt_out") or {}).get(str(entry_point_id)))

    # ------------------------------------------------------------------ SMS receipts
    async def record_parts(self, message_id: int, entry_point_id: int, smsc_ids: Sequence[str]) -> None:
        """The SMSC's ids of a sent message's parts (receipts name them)."""
        async with self.sessions.begin() as s:
            message = await s.get(Message, message_id)
            if message is None:
                return
            flags = dict(message.flags or {})
            flags["sms_parts"] = dict.fromkeys(smsc_ids, None)
            message.flags = flags
            message.external_id = f"{_SMSC_KEY}{smsc_ids[0]}" if smsc_ids else None
            for smsc_id in smsc_ids:
                s.add(
                    EmailReceipt(
                        entry_point_id=entry_point_id,
                        rfc_message_id=f"{_SMSC_KEY}{smsc_id}",
                        message_id=message_id,
                        sender="",
                        received_at=self.clock(),
                    )
                )

    async def sms_receipt(
        self, entry_point_id: int, smsc_id: str, outcome: str | None, stat: str, error: str
    ) -> bool:
        """A delivery receipt for one part; False when the part is unknown (yet)."""
        async with self._receipts, self.sessions.begin() as s:
            message_id = await s.scalar(
                select(EmailReceipt.message_id).where(
                    EmailReceipt.entry_point_id == entry_point_id,
                    EmailReceipt.rfc_message_id == f"{_SMSC_KEY}{smsc_id}",
                )
            )
            if message_id is None:
                return False
            if outcome is None:
                return True  # ENROUTE / ACCEPTD: not final
            message = await s.get(Message, message_id, with_for_update=True)
            if message is None:
                return True
            flags = dict(message.flags or {})
            parts = dict(flags.get("sms_parts") or {})
            parts[smsc_id] = outcome
            flags["sms_parts"] = parts
            message.flags = flags
            if outcome == "failed":
                message.delivery_state = DeliveryState.FAILED
                message.delivery_error = f"{stat} (error {error})" if error else stat
            elif (
                all(v == "delivered" for v in parts.values())
                and message.delivery_state != DeliveryState.FAILED
            ):
                message.delivery_state = DeliveryState.DELIVERED
                message.delivered_at = self.clock()
        return True

    # ------------------------------------------------------------------ addresses
    async def outbound_address(self, thread_id: int, kind: str) -> OutboundAddress:
        """The customer's number (``kind`` sms) or Telegram chat id (``kind`` telegram) on the thread:
        from the thread's latest inbound message."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(Message.sender, Message.flags, EntryPoint.id, EntryPoint.address)
                    .join(Thread, Thread.id == Message.thread_id)
                    .join(EntryPoint, EntryPoint.id == Thread.entry_point_id)
                    .where(Message.thread_id == thread_id, Message.direction == Direction.INBOUND.value)
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                raise NotFound("The conversation has no customer message", error_id="no-customer-address")
            sender, flags, ep_id, ep_address = row
            if kind == "telegram":
                chat = (flags or {}).get("telegram_chat_id")
                if chat is None:
                    raise NotFound("No Telegram chat on the thread", error_id="no-customer-address")
                return OutboundAddress(str(chat), ep_id, ep_address)
            return OutboundAddress(sender, ep_id, ep_address)

    async def may_send_sms(self, thread_id: int) -> bool:
        """Whether the thread's customer has not opted out on the thread's entry point."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(Thread.customer_id, Thread.entry_point_id).where(Thread.id == thread_id)
                )
            ).first()
        if row is None or row[0] is None or row[1] is None:
            return True
        return not await self.opted_out(row[0], row[1])

    # ------------------------------------------------------------------ Telegram
    async def telegram_received(
        self,
        entry_point_id: int,
        *,
        user_id: int,
        chat_id: int,
        message_id: int,
        text: str,
        sender: str,
        first_name: str = "",
        last_name: str = "",
        language: str | None = None,
        phone: str | None = None,
        attachments: Sequence[InboundAttachment] = (),
    ) -> ConversationReceived:
        """A Telegram user's message to the bot of ``entry_point_id``; returns after the commit."""
        return await self.conversations.receive(
            ConversationIn(
                channel=Channel.MESSENGER,
                customer=CustomerIdentity(
                    messenger_id=f"telegram:{user_id}",
                    phone=phone,
                    first_name=first_name,
                    last_name=last_name,
                    language=(language or "")[:2] or None,
                ),
                external_id=f"telegram:{chat_id}:{message_id}",
                body=text,
                entry_point_id=entry_point_id,
                sender=sender,
                attachments=tuple(attachments),
                flags={"telegram_chat_id": chat_id},
            )
        )

    async def store_file(self, data: bytes, filename: str, content_type: str) -> InboundAttachment:
        return await self.conversations.store_file(data, filename, content_type)

    async def telegram_offset(self, entry_point_id: int) -> int | None:
        async with self.sessions() as s:
            value = await s.scalar(
                select(SiteSetting.value).where(SiteSetting.key == f"telegram.offset.{entry_point_id}")
            )
        return None if not value else int(value["offset"])

    async def save_telegram_offset(self, entry_point_id: int, offset: int) -> None:
        key = f"telegram.offset.{entry_point_id}"
        async with self.sessions.begin() as s:
            row = await s.get(SiteSetting, key)
            if row is None:
                s.add(SiteSetting(key=key, value={"offset": offset}, updated_at=utcnow()))
            else:
                row.value = {"offset": offset}
                row.updated_at = utcnow()

    async def entry_point(self, entry_point_id: int) -> tuple[str, str, dict[str, Any]] | None:
        """(channel, address, config) of one entry point, or None."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(EntryPoint.channel, EntryPoint.address, EntryPoint.config).where(
                        EntryPoint.id == entry_point_id
                    )
                )
            ).first()
        return None if row is None else (row[0], row[1], dict(row[2] or {}))

    async def entry_points(self, channel: Channel) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, address, config) of the entry points of ``channel``."""
        async with self.sessions() as s:
            rows = await s.execute(
                select(EntryPoint.id, EntryPoint.address, EntryPoint.config).where(
                    EntryPoint.channel == channel.value
                )
            )
            return [(i, a, dict(c or {})) for i, a, c in rows]
