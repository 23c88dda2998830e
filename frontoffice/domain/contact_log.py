"""What the routing engine's outputs mean for the store: row changes and log events (pure).

The ACD runs an engine command and gets ``list[Output]`` (``domain/routing/outputs.py``). Every output
changes the routing columns of an interaction (its state, queue, agent, timestamps), appends an event
to the interaction's log, or changes an agent's stored state. :func:`record_outputs` computes all of
that from the outputs, the rows as they are and the engine's view of the contacts; the caller writes
the result (``store/interactions.py``). No I/O, no clock: ``at`` is passed in. Unit-tested in
``tests/unit/domain/test_contact_log.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from frontoffice.domain import routing as r
from frontoffice.domain.model import InteractionEventType as Ev
from frontoffice.domain.model import InteractionState as St

__all__ = [
    "RESERVATION",
    "AgentStateRow",
    "ContactLog",
    "RoutedContact",
    "event_row",
    "record_outputs",
]

# Interaction attribute that keeps a waiting contact's reservation for one agent across restarts.
RESERVATION = "reservation"
_ENGINE_STATES = {"waiting": St.QUEUED.value, "offered": St.OFFERED.value, "connected": St.CONNECTED.value}


@dataclass(slots=True)
class RoutedContact:
    """The columns of an interaction the ACD reads and writes (``id`` to ``customer_id`` are read
    only; the others are written back when they change)."""

    id: int
    channel: str
    project_id: int | None
    customer_id: int | None
    created_at: datetime
    queued_at: datetime | None
    state: str
    queue_id: int | None
    agent_id: int | None
    priority: int
    attributes: dict[str, Any]
    route_enqueued_at: float | None
    route_seq: int | None
    offered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    closed_at: datetime | None
    disposition: str | None


@dataclass(frozen=True, slots=True)
class AgentStateRow:
    """An agent's new stored state (its profile row and a row of the agent event log)."""

    agent_id: int
    state: str
    reason: str | None
    since: float


@dataclass(slots=True)
class ContactLog:
    """What one batch of outputs writes: changed contacts (new values, by id, in the order first
    changed), interaction log rows in order, agent states, and agents' wrap-up deadlines."""

    contacts: dict[int, RoutedContact] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    agent_states: list[AgentStateRow] = field(default_factory=list)
    wrap_up_until: list[tuple[int, float | None]] = field(default_factory=list)


def event_row(contact: RoutedContact, type_: Ev, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """A row of the interaction event log: the event and the interaction's state, queue, agent,
    project and channel at that moment."""
    return {
        "interaction_id": contact.id,
        "at": at,
        "type": type_.value,
        "state": contact.state,
        "queue_id": contact.queue_id,
        "agent_id": contact.agent_id,
        "project_id": contact.project_id,
        "channel": contact.channel,
        "data": data,
    }


def record_outputs(
    outputs: Iterable[r.Output],
    at: datetime,
    contacts: Mapping[int, RoutedContact],
    status_of: Callable[[str], r.ContactStatus | None],
    *,
    also_sync: Iterable[int] = (),
) -> ContactLog:
    """The row changes and log events of ``outputs``, in order.

    ``contacts``: the rows of every interaction the outputs name, and of every interaction in wrap-up
    with an agent whose wrap-up ends (:class:`~frontoffice.domain.routing.WrapUpEnded` closes them);
    they are not changed (changed copies are returned). ``status_of``: the engine's view of a contact
    after the command (``None`` once the engine forgot it); the stored routing columns of every
    touched contact (and of ``also_sync``) are made to match it exactly, reservation included.
    """
    log = ContactLog()
    changed = log.contacts
    events = log.events

    def row(contact_id: int) -> RoutedContact | None:
        found = changed.get(contact_id)
        if found is None:
            original = contacts.get(contact_id)
            if original is None:
                return None
            found = changed[contact_id] = replace(original)
        return found

    def add(i: RoutedContact, type_: Ev, **data: Any) -> None:
        events.append(event_row(i, type_, at, data))

    outputs = list(outputs)
    finished_with_wrap = {o.contact_id for o in outputs if isinstance(o, r.WrapUpStarted)}
    for o in outputs:
        if isinstance(o, r.AgentStateChanged):
            log.agent_states.append(AgentStateRow(int(o.agent_id), o.state, o.reason, o.since))
            continue
        if isinstance(o, r.WrapUpStarted):
            log.wrap_up_until.append((int(o.agent_id), o.until))
            continue
        if isinstance(o, r.WrapUpEnded):
            log.wrap_up_until.append((int(o.agent_id), None))
            agent = int(o.agent_id)
            in_wrap_up = sorted(
                key
                for key in {*contacts, *changed}
                if (c := changed.get(key) or contacts[key]).state == St.WRAP_UP.value and c.agent_id == agent
            )
            for key in in_wrap_up:
                i = row(key)
                assert i is not None
                i.state = St.DONE.value
                i.closed_at = at
                add(i, Ev.DONE, early=o.early)
            continue
        if isinstance(o, r.QueueOpenChanged):
            continue
        found = row(int(o.contact_id))
        if found is None:
            continue
        i = found
        if isinstance(o, r.ContactQueued):
            i.queue_id = int(o.queue_id)
            i.state = St.QUEUED.value
            i.route_enqueued_at = o.enqueued_at
            i.route_seq = o.seq
            i.queued_at = i.queued_at or at
            add(i, Ev.QUEUED, seq=o.seq)
        elif isinstance(o, r.OfferContact):
            i.state = St.OFFERED.value
            i.offered_at = at
            add(
                i,
                Ev.OFFERED,
                agent_ids=[int(a) for a in o.agent_ids],
                expires_at=o.expires_at,
                is_callback=o.is_callback,
            )
        elif isinstance(o, r.WithdrawOffer):
            add(i, Ev.OFFER_WITHDRAWN, agent_ids=[int(a) for a in o.agent_ids], reason=o.reason)
        elif isinstance(o, r.OfferTimedOut):
            add(i, Ev.OFFER_TIMED_OUT, agent_ids=[int(a) for a in o.agent_ids])
        elif isinstance(o, r.OfferRejected):
            add(i, Ev.OFFER_REJECTED, rejected_by=int(o.agent_id))
        elif isinstance(o, r.ContactConnected):
            i.state = St.CONNECTED.value
            i.agent_id = int(o.agent_id)
            i.connected_at = at
            add(i, Ev.CONNECTED, waited_s=round(o.waited_s, 3))
        elif isinstance(o, r.ContactFinished):
            i.ended_at = at
            if o.contact_id in finished_with_wrap:
                i.state = St.WRAP_UP.value
                add(i, Ev.WRAP_UP)
            else:
                add(i, Ev.WRAP_UP)
                i.state = St.DONE.value
                i.closed_at = at
                add(i, Ev.DONE)
        elif isinstance(o, r.ContactAbandoned) and o.cause:
            # Lost, not left (its voice node died): a failure with its cause, not an abandon.
            i.state = St.FAILED.value
            i.disposition = o.cause
            i.ended_at = i.closed_at = at
            add(i, Ev.FAILED, waited_s=round(o.waited_s, 3), cause=o.cause)
        elif isinstance(o, r.ContactAbandoned):
            i.state = St.ABANDONED.value
            i.ended_at = i.closed_at = at
            add(i, Ev.ABANDONED, waited_s=round(o.waited_s, 3))
        elif isinstance(o, r.ContactOverflowed):
            add(i, Ev.OVERFLOWED, to_queue_id=int(o.to_queue), reason=o.reason)
        elif isinstance(o, r.ContactTransferred):
            i.state = St.QUEUED.value if o.to_agent is None else i.state
            add(
                i,
                Ev.TRANSFERRED,
                from_queue_id=int(o.from_queue),
                to_queue_id=int(o.to_queue),
                to_agent_id=None if o.to_agent is None else int(o.to_agent),
                from_agent_id=None if o.from_agent is None else int(o.from_agent),
            )
        elif isinstance(o, r.FallbackAction):
            i.state = St.FAILED.value
            i.disposition = f"fallback:{o.action}"
            i.ended_at = i.closed_at = at
            add(i, Ev.FALLBACK, action=o.action, reason=o.reason, queue_id=int(o.queue_id))
        elif isinstance(o, r.ContactRefused):
            i.state = St.FAILED.value
            i.ended_at = i.closed_at = at
            add(i, Ev.REFUSED, reason=o.reason, queue_id=int(o.queue_id))
        elif isinstance(o, r.ContactEscalated):
            add(i, Ev.ESCALATED, step=o.step)
        elif isinstance(o, r.PriorityChanged):
            i.priority = o.priority
            add(i, Ev.PRIORITY_CHANGED, priority=o.priority)
        elif isinstance(o, r.CallbackScheduled):
            i.attributes = {**i.attributes, "callback": True}
            add(i, Ev.CALLBACK_REQUESTED)
    for key in (*changed, *also_sync):
        status = status_of(str(key))
        if status is not None:
            i_ = row(key)
            if i_ is not None:
                _match_engine(i_, status)
    return log


def _match_engine(i: RoutedContact, status: r.ContactStatus) -> None:
    """Make the stored routing columns of a contact the engine tracks match the engine exactly."""
    i.queue_id = int(status.queue_id)
    i.route_enqueued_at = status.enqueued_at
    i.route_seq = status.seq
    i.priority = status.priority
    i.state = _ENGINE_STATES[status.state]
    if status.state == "connected" and status.agent_ids:
        i.agent_id = int(status.agent_ids[0])
    # A reservation (sticky routing, a transfer to an agent) survives a restart with the contact.
    reservation = None
    if status.target_agent is not None and status.state == "waiting":
        until = status.target_until
        reservation = {
            "agent_id": int(status.target_agent),
            "until": None if until is None or math.isinf(until) else until,
        }
    attributes = i.attributes or {}
    if attributes.get(RESERVATION) != reservation:
        attributes = {k: v for k, v in attributes.items() if k != RESERVATION}
        if reservation is not None:
            attributes[RESERVATION] = reservation
        i.attributes = attributes
