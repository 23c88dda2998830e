"""The ACD routing engine: who gets which contact, when.

A pure, deterministic, sans-IO state machine (stdlib only). It never reads a clock: every command takes
``now`` in seconds (any epoch; must not go backwards) and returns ``list[Output]``, the decisions and
events it caused, in order. The live service, the tests and the WFM simulator all drive the same engine.

Setup::

    engine = RoutingEngine(EngineConfig(), rng=random.Random(seed))
    engine.upsert_queue(QueueConfig("sales", required_skills={"ru": 5}, wrap_up_s=30))
    engine.upsert_agent(AgentConfig("a1", skills={"ru": 7}, queues={"sales": 1},
                                    capacity={"voice": 1, "chat": 3}))

``RoutingEngine(..., omit=(ContactQueued, ...))`` leaves out events (:data:`EVENTS`) the caller has no
use for: the engine does not build them (the simulation keeps no event log). Decisions
(:data:`DECISIONS`) are always returned.

Commands (each returns ``list[Output]`` unless noted; invalid input raises a :class:`RoutingError`
subclass and leaves the engine unchanged):

* configuration, live: ``configure(engine_config, now=None)`` (site-wide settings),
  ``upsert_queue(cfg, now=None)``, ``remove_queue(id) -> None``,
  ``upsert_agent(cfg, now=None)``, ``remove_agent(id) -> None`` (pass ``now`` to match at once; a
  new agent is offline since ``now``). Changed escalation steps or maximum wait of a queue apply to
  the contacts already in it, counted from when each entered it
* agents: ``agent_login(id, now, state="available", reason=None)``,
  ``set_agent_state(id, "available" | "not_ready", now, reason=None)``, ``agent_logout(id, now)``,
  ``end_wrap_up(id, now)``, ``reset_daily_counters(now) -> None``
* contacts: ``contact_arrived(Contact, now)`` (or ``arrive(id, channel, queue_id, now, priority=0,
  preferred_agent=None, is_callback=False)``, the same without a Contact), ``contact_withdrawn(id,
  now)`` (abandoned),
  ``offer_accepted(id, agent_id, now)``, ``offer_rejected(id, agent_id, now)``,
  ``contact_finished(id, now)`` (wrap-up starts), ``transfer_to_queue(id, queue_id, now)``,
  ``transfer_to_agent(id, agent_id, now, timeout_s=None)``, ``set_priority(id, priority, now)``,
  ``request_callback(id, now)``, ``set_queue_open(queue_id, open, now)``. A transfer to a queue that
  would turn the contact away (closed, full, no agents; see ``turn_away_reason``) raises
  :class:`QueueTurnsAway` and changes nothing
* time: ``tick(now)`` runs due timers; ``next_deadline() -> float | None`` is when to call it next.
  Commands never run timers themselves: call ``tick`` when ``now`` reaches the deadline (and, to be
  exact, before a command whose ``now`` is past it)
* restore after a restart (no outputs): ``restore_agent(id, state, since, reason=None,
  wrap_up_until=None)`` (``"offline"`` too: since when), ``restore_contacts_today(id, count)``,
  ``restore_connected_contact(Contact, agent_id, enqueued_at, seq)``,
  ``restore_waiting_contact(Contact, enqueued_at, seq, queue_entered_at=None)`` (offers that were
  ringing are restored as waiting), then ``resume(now)`` (an agent whose state has no known start is
  offline since ``now``) and ``tick(now)``
* views (read-only, cheap): ``queue_status(id, now) -> QueueStatus``, ``agent_status(id) ->
  AgentStatus``, ``contact_status(id) -> ContactStatus``, ``position(id) -> int | None``,
  ``expected_wait(id, now) -> float | None``, ``waiting_contacts(queue_id)``,
  ``turn_away_reason(queue_id) -> str | None`` (would an arrival now be turned away, and why),
  ``queue_ids()``, ``agent_ids()``, ``contact_ids()``

Outputs the caller must act on: :class:`OfferContact` (ring / push to these agents; answer with
``offer_accepted`` / ``offer_rejected``, or the engine times it out), :class:`WithdrawOffer` (stop
ringing), :class:`FallbackAction` (voicemail, callback, ticket, message_and_disconnect),
:class:`ContactRefused`. Everything else is an event to append to the log: :class:`ContactQueued` (persist
its ``enqueued_at`` and ``seq``: they restore the contact's place), :class:`ContactConnected`,
:class:`ContactOverflowed`, :class:`AgentStateChanged`, :class:`WrapUpStarted`, ... A contact leaves the
engine with exactly one of ContactFinished, ContactAbandoned, FallbackAction or ContactRefused.

Agent states (``AgentState``): offline, available, not_ready, on_contact, wrap_up. Busy states win
over not_ready, so :class:`AgentStateChanged` / :class:`AgentStatus` also carry ``ready`` (takes new
offers when it has room) and the not-ready ``reason`` of an agent still finishing its work.

Ordering: score = priority * ``EngineConfig.priority_weight_s`` + seconds waited; highest first, FIFO
(by ``seq``) among equal scores. An agent serving several queues compares scores multiplied by each
queue's ``weight``. Agents: lowest tier first, then the queue's strategy.
"""

# First: when a compiled build is present but stale, it makes the imports below use the sources.
from . import _accelerator
from .config import (
    CHANNELS,
    DEFAULT_CAPACITY,
    AgentConfig,
    ArrivalAction,
    EngineConfig,
    EscalationStep,
    FallbackKind,
    QueueConfig,
    Strategy,
)
from .contact import Contact
from .engine import DECISIONS, EVENTS, MAX_OVERFLOW_HOPS, RoutingEngine
from .exceptions import (
    DuplicateContact,
    InvalidConfig,
    InvalidTransition,
    QueueTurnsAway,
    RoutingError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
)
from .outputs import (
    AgentState,
    AgentStateChanged,
    CallbackScheduled,
    ContactAbandoned,
    ContactConnected,
    ContactEscalated,
    ContactFinished,
    ContactOverflowed,
    ContactQueued,
    ContactRefused,
    ContactTransferred,
    FallbackAction,
    OfferContact,
    OfferRejected,
    OfferTimedOut,
    Output,
    PriorityChanged,
    QueueOpenChanged,
    StickyExpired,
    WithdrawOffer,
    WrapUpEnded,
    WrapUpStarted,
)
from .views import AgentStatus, ContactStatus, QueueStatus

#: True when the engine runs compiled with mypyc (an optional build step, see ``_accelerator``).
COMPILED: bool = _accelerator.engine_is_compiled()

__all__ = [
    "CHANNELS",
    "COMPILED",
    "DECISIONS",
    "DEFAULT_CAPACITY",
    "EVENTS",
    "MAX_OVERFLOW_HOPS",
    "AgentConfig",
    "AgentState",
    "AgentStateChanged",
    "AgentStatus",
    "ArrivalAction",
    "CallbackScheduled",
    "Contact",
    "ContactAbandoned",
    "ContactConnected",
    "ContactEscalated",
    "ContactFinished",
    "ContactOverflowed",
    "ContactQueued",
    "ContactRefused",
    "ContactStatus",
    "ContactTransferred",
    "DuplicateContact",
    "EngineConfig",
    "EscalationStep",
    "FallbackAction",
    "FallbackKind",
    "InvalidConfig",
    "InvalidTransition",
    "OfferContact",
    "OfferRejected",
    "OfferTimedOut",
    "Output",
    "PriorityChanged",
    "QueueConfig",
    "QueueOpenChanged",
    "QueueStatus",
    "QueueTurnsAway",
    "RoutingEngine",
    "RoutingError",
    "StickyExpired",
    "Strategy",
    "UnknownAgent",
    "UnknownContact",
    "UnknownQueue",
    "WithdrawOffer",
    "WrapUpEnded",
    "WrapUpStarted",
]
