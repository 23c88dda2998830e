"""The channel contract: how a channel's contacts come in, and how agents' actions reach the channel.

In: an adapter turns its protocol's input (a call, an email, a chat, a web form) into an
:class:`InboundContact` and hands it to :meth:`frontoffice.services.intake.Intake.take_in`, which finds
or creates the customer, records the interaction and its first message, and queues it in the ACD, in
one transaction. The adapter acknowledges to the outside world after ``take_in`` returns (the commit).

Out: a channel implements :class:`ChannelPort` and ``bootstrap.py`` registers it with
:class:`ChannelPorts`, a subscriber of committed events: the engine's offers, withdrawn offers and
finished contacts of that channel reach the port after their commit. Web handlers call services,
never a channel directly. See docs/architecture.md, "The channel contract".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Channel
from frontoffice.store.committed import Committed

from .context import Actor

__all__ = [
    "DEDUPE_KEY_LENGTH",
    "ChannelPort",
    "ChannelPorts",
    "CustomerIdentity",
    "EmailReplies",
    "InboundAttachment",
    "InboundContact",
    "InboundMessage",
    "WebFormChannel",
]

log = logging.getLogger("frontoffice.channels")

# The idempotency key column's length: a longer channel id is cut (ids that long are unique well
# before their 200th character).
DEDUPE_KEY_LENGTH = 200
Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class CustomerIdentity:
    """Who the contact is from: any identities the channel knows (the customer is found by the first
    that matches, or created with all of them) and a name and language for a new customer card."""

    phone: str | None = None
    email: str | None = None
    chat_id: str | None = None
    # A messenger account, prefixed with the messenger (``telegram:<user id>``).
    messenger_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    language: str | None = None


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file of an inbound message, already stored as a blob (``store/blobs.py``) by its SHA-256."""

    sha256: str
    size: int
    filename: str = ""
    content_type: str = "application/octet-stream"
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A text channel's message with its own identity (an email: Message-ID, recipients, HTML,
    attachments, flags), carried by an :class:`InboundContact` that starts a new turn, or appended
    to a thread's open interaction (``services/text_messages.py``).

    ``thread_id``: the thread it continues (``None``: it starts one; ``thread_reason`` says why).
    ``dedupe_id``: its id in the entry point's mailbox (Message-ID, else a digest of its bytes); a
    second message with the same one in the same mailbox fails the transaction, so the caller
    answers with the first.
    """

    sender: str
    body: str
    subject: str = ""
    recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    html_body: str | None = None
    content_type: str = "text/plain"
    rfc_message_id: str | None = None
    in_reply_to: str | None = None
    reference_ids: tuple[str, ...] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)
    raw_sha256: str | None = None
    raw_size: int = 0
    attachments: tuple[InboundAttachment, ...] = ()
    thread_id: int | None = None
    thread_reason: str = "new-thread"
    dedupe_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundContact:
    """A contact as a channel hands it to intake.

    ``entry_point``: the address the customer reached on ``channel`` (a dialled number, a mailbox, a
    widget key), or ``entry_point_id`` when the channel already resolved it. ``external_id``: the
    channel's own id of the contact (SIP Call-ID, email Message-ID, chat message id), stored as the
    interaction's ``external_ref``; :attr:`dedupe_key` makes a repeated delivery of it return the first
    interaction instead of a second one.
    """

    channel: Channel
    entry_point: str | None = None
    entry_point_id: int | None = None
    customer: CustomerIdentity = field(default_factory=CustomerIdentity)
    subject: str = ""
    body: str = ""
    external_id: str | None = None
    priority: int = 0
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    # A text channel's message (with its thread); without it ``body`` is stored as a plain message.
    message: InboundMessage | None = None
    # Sticky routing asked by the channel (the agent who answered the thread before), tried before
    # the customer's last agent; either counts only when the ACD knows the agent.
    preferred_agent_id: int | None = None

    @property
    def dedupe_key(self) -> str | None:
        """The idempotency key of a channel's contact: its channel and external id."""
        if self.external_id is None:
            return None
        return f"{self.channel.value}:{self.external_id}"[:DEDUPE_KEY_LENGTH]


class ChannelPort(Protocol):
    """What a channel does when the contact center acts on one of its contacts (called on the event
    loop after the commit; slow work is the channel's to schedule)."""

    channel: Channel

    def ring(self, offer: r.OfferContact) -> None:
        """The contact is offered to ``offer.agent_ids`` (ring their phones, show the chat...)."""

    def withdraw(self, contact_id: int, agent_ids: tuple[str, ...]) -> None:
        """The offer to these agents is withdrawn (stop ringing)."""

    def hang_up(self, contact_id: int) -> None:
        """The conversation is over (the agent ended it): close the call, chat or session."""

    async def deliver(self, contact_id: int, body: str) -> None:
        """Send an agent's reply to the customer (text channels; through the outbox)."""


class EmailReplies(Protocol):
    """How a channel without a way back of its own answers by email (``services/replies.py``)."""

    async def send_text(self, actor: Actor, interaction_id: int, body: str) -> object:
        """Queue ``body`` as an email reply to the contact's customer (committed before it returns)."""


class WebFormChannel:
    """The web form / API channel: the first user of the contract. Its offers reach the agent's
    desktop through the WebSocket stream like every offer, and there is no line to hang up; a reply
    to a web form goes out by email to the address the customer left (``replies``)."""

    channel = Channel.WEBFORM

    def __init__(self, replies: EmailReplies | None = None) -> None:
        self.replies = replies

    def ring(self, offer: r.OfferContact) -> None:
        return None

    def withdraw(self, contact_id: int, agent_ids: tuple[str, ...]) -> None:
        return None

    def hang_up(self, contact_id: int) -> None:
        return None

    async def deliver(self, contact_id: int, body: str) -> None:
        if self.replies is None:
            raise InvalidInput(
                "A web form contact is answered by email",
                error_id="channel-cannot-deliver",
                channel="webform",
            )
        # Raises no-recipient when the customer left no email address.
        await self.replies.send_text(Actor.system(), contact_id, body)


class ChannelPorts:
    """The registered channels; a subscriber of committed events (``bootstrap.py`` subscribes it) that
    hands each channel the offers, withdrawn offers and finished contacts of its contacts."""

    def __init__(self) -> None:
        self._ports: dict[str, ChannelPort] = {}

    def register(self, port: ChannelPort) -> None:
        """Make ``port`` the channel's port (one per channel)."""
        self._ports[port.channel.value] = port

    def port(self, channel: Channel | str) -> ChannelPort | None:
        """The port of a channel, if one is registered."""
        return self._ports.get(channel.value if isinstance(channel, Channel) else channel)

    def __call__(self, committed: Committed) -> None:
        if not self._ports or not committed.outputs:
            return
        # The channel of a contact: offers name it; for the rest, the log rows of the same transaction.
        channel_of = {row["interaction_id"]: row["channel"] for row in committed.interaction_events}
        for o in committed.outputs:
            if isinstance(o, r.OfferContact):
                port = self._ports.get(o.channel)
            elif isinstance(o, r.WithdrawOffer | r.OfferTimedOut | r.ContactFinished):
                port = self._ports.get(channel_of.get(int(o.contact_id), ""))
            else:
                continue
            if port is None:
                continue
            try:
                if isinstance(o, r.OfferContact):
                    port.ring(o)
                elif isinstance(o, r.ContactFinished):
                    port.hang_up(int(o.contact_id))
                else:
                    port.withdraw(int(o.contact_id), o.agent_ids)
            except Exception:
                log.exception("channel %s failed on %s", port.channel.value, type(o).__name__)
