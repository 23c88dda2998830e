"""Read-only snapshots the engine returns from its view methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .outputs import AgentState

ContactState = Literal["waiting", "offered", "connected"]


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Live figures of one queue. ``waiting`` counts contacts not yet connected (including ringing)."""

    queue_id: str
    open: bool
    waiting: int
    longest_wait_s: float
    agents_logged_in: int
    agents_available: int
    agents_on_contact: int
    agents_wrap_up: int
    agents_not_ready: int
    #: agents configured for the queue, signed in or not (0: nobody could ever answer it).
    members: int = 0


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Live state of one agent."""

    agent_id: str
    state: AgentState
    reason: str | None
    since: float
    #: takes new offers when it has room (see AgentStateChanged.ready).
    ready: bool
    contact_ids: tuple[str, ...]
    offered_contact_ids: tuple[str, ...]
    wrap_up_until: float | None
    missed_offers: int
    contacts_today: int


@dataclass(frozen=True, slots=True)
class ContactStatus:
    """Live state of one tracked contact."""

    contact_id: str
    state: ContactState
    queue_id: str
    channel: str
    priority: int
    enqueued_at: float
    seq: int
    step: int
    is_callback: bool
    agent_ids: tuple[str, ...]
    target_agent: str | None
    #: when the reservation for ``target_agent`` ends (``inf``: until that agent takes it).
    target_until: float | None = None
