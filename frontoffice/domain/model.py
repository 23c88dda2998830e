"""The contact-center vocabulary shared by every layer."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Channel",
    "Direction",
    "IdentityKind",
    "InteractionEventType",
    "InteractionState",
    "Role",
]


class Channel(StrEnum):
    """The medium a contact arrives on."""

    VOICE = "voice"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    FAX = "fax"
    WEBFORM = "webform"
    MESSENGER = "messenger"
    #: a help-desk ticket waiting for an agent (new, or the customer replied): routed work, not a
    #: conversation (docs/helpdesk.md, "Tickets are routed work").
    TICKET = "ticket"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionState(StrEnum):
    """Life cycle of one interaction (DESIGN.md): new → queued → offered → connected → wrap_up → done."""

    NEW = "new"
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    WRAP_UP = "wrap_up"
    DONE = "done"
    ABANDONED = "abandoned"
    FAILED = "failed"
    OVERFLOWED = "overflowed"
    TRANSFERRED = "transferred"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {InteractionState.DONE, InteractionState.ABANDONED, InteractionState.FAILED, InteractionState.TRANSFERRED}
)


class InteractionEventType(StrEnum):
    """Types in the append-only interaction event log; statistics read these."""

    CREATED = "created"
    QUEUED = "queued"
    OFFERED = "offered"
    OFFER_REJECTED = "offer_rejected"
    OFFER_TIMED_OUT = "offer_timed_out"
    CONNECTED = "connected"
    WRAP_UP = "wrap_up"
    DONE = "done"
    ABANDONED = "abandoned"
    FAILED = "failed"
    OVERFLOWED = "overflowed"
    TRANSFERRED = "transferred"
    OFFER_WITHDRAWN = "offer_withdrawn"
    REFUSED = "refused"
    FALLBACK = "fallback"
    ESCALATED = "escalated"
    PRIORITY_CHANGED = "priority_changed"
    CALLBACK_REQUESTED = "callback_requested"
    MESSAGE = "message"
    NOTE = "note"
    MERGED = "customer_merged"
    # One leg of a phone call (caller, agent, transfer) with its SIP timestamps, status and cause.
    CALL_LEG = "call_leg"


class IdentityKind(StrEnum):
    """Ways a customer is recognised on an incoming contact."""

    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    MESSENGER = "messenger"


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
