"""What the engine tells its caller: decisions to carry out and events to record.

Every command returns ``list[Output]`` in the order things happened. Decisions (the caller must act):
:class:`OfferContact`, :class:`WithdrawOffer`, :class:`FallbackAction`, :class:`ContactRefused`,
:class:`ContactOverflowed` (the contact now waits in another queue). The rest are events for the log
and for live displays.

Outputs are value objects: treat them as read-only. They are plain ``slots`` dataclasses rather than
frozen ones because the engine builds several per decision and a frozen dataclass's ``__init__`` (which
goes through ``object.__setattr__``) cost about a third of the engine's time in ``bench/routing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AgentState = Literal["offline", "available", "not_ready", "on_contact", "wrap_up"]


@dataclass(slots=True)
class ContactQueued:
    """The contact now waits in ``queue_id``; persist ``enqueued_at`` and ``seq`` to restore its place."""

    contact_id: str
    queue_id: str
    enqueued_at: float
    seq: int


@dataclass(slots=True)
class OfferContact:
    """Offer the contact to these agents (more than one only for ring_all); answer by ``expires_at``.

    ``is_callback``: the customer is not on the line; the agent's task is to call them back.
    """

    contact_id: str
    agent_ids: tuple[str, ...]
    queue_id: str
    channel: str
    expires_at: float
    is_callback: bool = False


@dataclass(slots=True)
class WithdrawOffer:
    """Stop offering the contact to these agents (answered elsewhere, abandoned, agent went away...)."""

    contact_id: str
    agent_ids: tuple[str, ...]
    reason: str


@dataclass(slots=True)
class OfferTimedOut:
    """Nobody answered the offer in time; the contact is back in its place in line."""

    contact_id: str
    agent_ids: tuple[str, ...]


@dataclass(slots=True)
class OfferRejected:
    """An agent declined the offer."""

    contact_id: str
    agent_id: str


@dataclass(slots=True)
class ContactConnected:
    """The agent accepted; ``waited_s`` is measured from the original ``enqueued_at``."""

    contact_id: str
    agent_id: str
    queue_id: str
    waited_s: float


@dataclass(slots=True)
class ContactFinished:
    """The agent finished handling the contact; the engine forgets it."""

    contact_id: str
    agent_id: str
    queue_id: str


@dataclass(slots=True)
class ContactOverflowed:
    """The contact left ``from_queue`` for ``to_queue`` (reason: max_wait, max_length, closed, no_agents)."""

    contact_id: str
    from_queue: str
    to_queue: str
    reason: str


@dataclass(slots=True)
class FallbackAction:
    """The channel must carry out ``action`` (voicemail, callback, ticket, message_and_disconnect).

    The engine forgets the contact.
    """

    contact_id: str
    queue_id: str
    action: str
    reason: str


@dataclass(slots=True)
class ContactRefused:
    """The queue turned the contact away (closed, full, no agents); the engine forgets it."""

    contact_id: str
    queue_id: str
    reason: str


@dataclass(slots=True)
class ContactAbandoned:
    """The customer left before being connected; the engine forgets the contact. ``cause`` is empty
    when the customer left; otherwise why the contact was lost without them leaving (e.g.
    ``lost_node_failure``: the voice node that held the call died), which the log records as a
    failure, not an abandon."""

    contact_id: str
    queue_id: str
    waited_s: float
    cause: str = ""


@dataclass(slots=True)
class ContactTransferred:
    """The contact moved to another queue, or to a named agent (``to_agent``)."""

    contact_id: str
    from_queue: str
    to_queue: str
    to_agent: str | None
    from_agent: str | None


@dataclass(slots=True)
class ContactEscalated:
    """The contact reached escalation step ``step`` (1-based) of its queue."""

    contact_id: str
    queue_id: str
    step: int


@dataclass(slots=True)
class PriorityChanged:
    """A supervisor changed the priority of the contact."""

    contact_id: str
    priority: int


@dataclass(slots=True)
class CallbackScheduled:
    """The waiting contact became a callback; it keeps its place in line."""

    contact_id: str
    queue_id: str


@dataclass(slots=True)
class StickyExpired:
    """The preferred agent's exclusive window ended; any eligible agent may now take the contact."""

    contact_id: str
    agent_id: str


@dataclass(slots=True)
class AgentStateChanged:
    """The agent's state, not-ready reason or readiness changed at ``since``.

    ``ready``: the agent takes new offers when it has room (False for offline and not_ready, and for
    an agent who went not ready while still on a contact or in wrap-up). ``reason`` is the not-ready
    reason whenever ``ready`` is False (it may be None if none was given), else None.
    """

    agent_id: str
    state: AgentState
    reason: str | None
    since: float
    ready: bool


@dataclass(slots=True)
class WrapUpStarted:
    """After-contact work began; it ends at ``until`` or earlier via ``end_wrap_up``."""

    agent_id: str
    contact_id: str
    until: float


@dataclass(slots=True)
class WrapUpEnded:
    """After-contact work ended (``early``: the agent ended it before the timer)."""

    agent_id: str
    early: bool


@dataclass(slots=True)
class QueueOpenChanged:
    """The queue opened or closed."""

    queue_id: str
    open: bool


Output = (
    ContactQueued
    | OfferContact
    | WithdrawOffer
    | OfferTimedOut
    | OfferRejected
    | ContactConnected
    | ContactFinished
    | ContactOverflowed
    | FallbackAction
    | ContactRefused
    | ContactAbandoned
    | ContactTransferred
    | ContactEscalated
    | PriorityChanged
    | CallbackScheduled
    | StickyExpired
    | AgentStateChanged
    | WrapUpStarted
    | WrapUpEnded
    | QueueOpenChanged
)
