"""Discrete-event simulation of a contact center that drives the real routing engine.

The formulas (Erlang B, C, A) describe one queue served by one pool of identical agents. Real centers
have several queues, agents with different skills and tiers, overflow after a maximum wait, several
channels with different capacities, wrap-up. This module answers those cases by running
:class:`frontoffice.domain.routing.RoutingEngine` itself in simulated time: the same decisions the
live server would make, fed with random arrivals, handling times and caller patience.

Model:

* **Arrivals**: Poisson per stream (queue, channel, priority), at a constant rate or at a
  piecewise-constant rate per interval (a day plan's forecast). Arrivals stop at the horizon.
* **Handling** (talk time; the queue's ``wrap_up_s`` is added by the engine): exponential,
  lognormal (mean and coefficient of variation) or fixed.
* **Patience**: exponential (a caller hangs up after it unless connected), or none. Any duration
  kind is accepted.
* **Agents** log in at time 0, stay all day and accept every offer at once (or after a fixed
  ``answer_delay_s``, which must be shorter than the queues' offer timeout).
* The event loop is a heap of ``(time, seq, event)`` for arrivals, accepts, handling ends and patience
  ends, merged with the engine's own ``next_deadline()`` (offer timeouts, wrap-up ends, maximum
  waits, escalations). Ties go to the engine's timers first.

Measurement: contacts arriving in ``[warmup_s, horizon_s)`` are measured; the run goes on after the
horizon (without new arrivals) until every contact is answered, abandoned or turned away, or
``drain_s`` has passed, so late arrivals are not censored. Occupancy is the share of agent time in
``[warmup_s, horizon_s)`` spent on contacts or in wrap-up. Each replication has its own seeded random
streams; figures are means across replications with 95 % Student-t intervals
(:class:`~frontoffice.wfm.stats.Estimate`).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import pairwise
from typing import Any, Literal, NamedTuple

from frontoffice.domain.routing import (
    CHANNELS,
    EVENTS,
    AgentConfig,
    AgentStateChanged,
    ContactAbandoned,
    ContactConnected,
    ContactOverflowed,
    ContactRefused,
    EngineConfig,
    EscalationStep,
    FallbackAction,
    OfferContact,
    OfferTimedOut,
    Output,
    QueueConfig,
    RoutingEngine,
    RoutingError,
    WithdrawOffer,
)
from frontoffice.wfm.dayplan import DayPlan
from frontoffice.wfm.stats import Estimate, estimate

__all__ = [
    "AgentGroup",
    "ArrivalStream",
    "Duration",
    "QueueEstimates",
    "ReplicationStats",
    "Scenario",
    "SimulationResult",
    "SimulationTooLarge",
    "TallyCounts",
    "arrivals_from_forecast",
    "replication_rngs",
    "roster_from_day_plan",
    "run_replication",
    "scenario_from_dict",
    "simulate",
    "single_queue_scenario",
]


class SimulationTooLarge(ValueError):
    """A replication processed more events than allowed (``max_events``): the scenario loops (an
    overflow cycle that never ends) or is far bigger than expected."""


DurationKind = Literal["exponential", "lognormal", "fixed", "none"]
_DURATION_KINDS = ("exponential", "lognormal", "fixed", "none")

# Event kinds in the simulation's own heap.
_ARRIVAL = 0
_ACCEPT = 1
_FINISH = 2
_PATIENCE = 3
_SHIFT = 4

# Progress is reported this many times per replication (checkpoints in simulated time).
_PROGRESS_STEPS = 20
_NO_EVENT_LIMIT = 2**62
# Not-ready reason of agents whose shift has ended.
_OFF_SHIFT = "off_shift"
# The engine's events a replication does not look at: the engine need not build them.
_UNUSED_EVENTS = EVENTS - {AgentStateChanged, ContactConnected, ContactAbandoned, OfferTimedOut}


@dataclass(frozen=True, slots=True)
class Duration:
    """A random duration in seconds: ``exponential`` / ``lognormal`` (mean ``mean_s``, coefficient
    of variation ``cv``) / ``fixed`` / ``none`` (infinite: a caller who never hangs up)."""

    kind: DurationKind = "exponential"
    mean_s: float = 0.0
    cv: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _DURATION_KINDS:
            raise ValueError(f"unknown duration kind {self.kind!r}: use one of {', '.join(_DURATION_KINDS)}")
        if self.kind != "none" and not (self.mean_s > 0.0 and math.isfinite(self.mean_s)):
            raise ValueError(f"a {self.kind} duration needs a mean > 0 s, got {self.mean_s!r}")
        if self.kind == "lognormal" and not (self.cv > 0.0 and math.isfinite(self.cv)):
            raise ValueError(f"a lognormal duration needs a cv > 0, got {self.cv!r}")

    @property
    def finite(self) -> bool:
        """False for ``none`` (never ends)."""
        return self.kind != "none"

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """A function drawing one duration from ``rng``."""
        mean = self.mean_s
        if self.kind == "exponential":
            # partial() of the bound method: a C-level call, cheaper than a lambda in the hot loop.
            return partial(rng.expovariate, 1.0 / mean)
        if self.kind == "lognormal":
            sigma2 = math.log1p(self.cv * self.cv)
            mu = math.log(mean) - sigma2 / 2.0
            sigma = math.sqrt(sigma2)
            return partial(rng.lognormvariate, mu, sigma)
        if self.kind == "fixed":
            return lambda: mean
        return lambda: math.inf


NO_PATIENCE = Duration("none")


@dataclass(frozen=True, slots=True)
class ArrivalStream:
    """Poisson arrivals of one kind of contact into ``queue_id``.

    The rate is ``rate_per_s``, or, when ``interval_rates`` is given, ``interval_rates[i]`` (per
    second) during ``[i·interval_s, (i+1)·interval_s)`` and nothing after the last interval.
    """

    queue_id: str
    rate_per_s: float = 0.0
    handling: Duration = Duration("exponential", 180.0)
    patience: Duration = NO_PATIENCE
    channel: str = "voice"
    priority: int = 0
    interval_rates: tuple[float, ...] = ()
    interval_s: float = 900.0

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}: use one of {', '.join(sorted(CHANNELS))}")
        if not self.handling.finite:
            raise ValueError("handling time must be finite (exponential, lognormal or fixed)")
        if not (self.rate_per_s >= 0.0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate_per_s must be >= 0, got {self.rate_per_s!r}")
        if not (self.interval_s > 0.0 and math.isfinite(self.interval_s)):
            raise ValueError(f"interval_s must be > 0, got {self.interval_s!r}")
        for rate in self.interval_rates:
            if not (rate >= 0.0 and math.isfinite(rate)):
                raise ValueError(f"interval rates must be >= 0, got {rate!r}")

    def rate_at(self, t: float) -> float:
        """Arrival rate per second at time ``t``."""
        if not self.interval_rates:
            return self.rate_per_s
        index = int(t // self.interval_s)
        return self.interval_rates[index] if 0 <= index < len(self.interval_rates) else 0.0

    def expected_count(self, start_s: float, end_s: float) -> float:
        """Expected arrivals in ``[start_s, end_s)``."""
        if end_s <= start_s:
            return 0.0
        if not self.interval_rates:
            return self.rate_per_s * (end_s - start_s)
        total = 0.0
        for i, rate in enumerate(self.interval_rates):
            lo = max(start_s, i * self.interval_s)
            hi = min(end_s, (i + 1) * self.interval_s)
            if hi > lo:
                total += rate * (hi - lo)
        return total


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """``count`` identical agents: skills (name → level 1..10), queues (queue → tier, lower first)
    and per-channel capacity. They are named ``{name}-{i}`` in the engine.

    ``schedule`` (optional) is a roster: ``schedule[i]`` of the ``count`` agents are on duty during
    ``[i·schedule_interval_s, (i+1)·schedule_interval_s)``, the last value after that. An agent going
    off duty finishes the contact in hand and takes no new one (not ready, reason ``off_shift``).
    """

    name: str
    count: int
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=lambda: {"voice": 1})
    schedule: tuple[int, ...] = ()
    schedule_interval_s: float = 900.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an agent group needs a name")
        if self.count < 0:
            raise ValueError(f"agent group {self.name!r}: count must be >= 0, got {self.count!r}")
        object.__setattr__(self, "schedule", tuple(self.schedule))
        if any(not 0 <= n <= self.count for n in self.schedule):
            raise ValueError(f"agent group {self.name!r}: the schedule must stay within 0..count")
        if not (self.schedule_interval_s > 0.0 and math.isfinite(self.schedule_interval_s)):
            raise ValueError(f"agent group {self.name!r}: schedule_interval_s must be > 0")
        if not self.queues:
            raise ValueError(f"agent group {self.name!r} serves no queue")
        object.__setattr__(self, "skills", dict(self.skills))
        object.__setattr__(self, "queues", dict(self.queues))
        object.__setattr__(self, "capacity", dict(self.capacity))

    def configs(self) -> list[AgentConfig]:
        """The engine configuration of each agent of the group."""
        return [
            AgentConfig(f"{self.name}-{i}", skills=self.skills, queues=self.queues, capacity=self.capacity)
            for i in range(self.count)
        ]

    def on_duty(self, t: float) -> int:
        """Agents on duty at time ``t``."""
        if not self.schedule:
            return self.count
        index = int(t // self.schedule_interval_s)
        return self.schedule[min(max(index, 0), len(self.schedule) - 1)]

    def agent_seconds(self, start_s: float, end_s: float) -> float:
        """Agent-seconds on duty in ``[start_s, end_s)``."""
        if not self.schedule:
            return self.count * max(0.0, end_s - start_s)
        width = self.schedule_interval_s
        total = 0.0
        last = len(self.schedule) - 1
        for i, n in enumerate(self.schedule):
            lo = max(start_s, i * width)
            hi = min(end_s, (i + 1) * width) if i < last else end_s
            if hi > lo:
                total += n * (hi - lo)
        return total


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to simulate: queues (engine configurations), agent groups, arrival streams and times.

    ``horizon_s``: arrivals stop here; ``warmup_s``: arrivals before it are not measured (start a
    steady-state comparison with a few handling times of warm-up; a day that starts empty needs
    none). ``answer_time_s``: the service-level threshold. ``answer_delay_s``: how long agents take
    to accept an offer. ``drain_s``: how long after the horizon the run may go on to finish measured
    contacts.
    """

    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentGroup, ...]
    arrivals: tuple[ArrivalStream, ...]
    horizon_s: float
    warmup_s: float = 0.0
    answer_time_s: float = 20.0
    answer_delay_s: float = 0.0
    priority_weight_s: float = 60.0
    drain_s: float = 3600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", tuple(self.queues))
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "arrivals", tuple(self.arrivals))
        if not (self.horizon_s > 0.0 and math.isfinite(self.horizon_s)):
            raise ValueError(f"horizon_s must be > 0, got {self.horizon_s!r}")
        if not 0.0 <= self.warmup_s < self.horizon_s:
            raise ValueError("warmup_s must be >= 0 and shorter than the horizon")
        if not (self.answer_time_s >= 0.0 and self.answer_delay_s >= 0.0 and self.drain_s >= 0.0):
            raise ValueError("answer_time_s, answer_delay_s and drain_s must be >= 0")
        if self.priority_weight_s < 0.0:
            raise ValueError("priority_weight_s must be >= 0")
        if not self.queues:
            raise ValueError("a scenario needs at least one queue")
        if not self.arrivals:
            raise ValueError("a scenario needs at least one arrival stream")
        ids = [q.queue_id for q in self.queues]
        if len(set(ids)) != len(ids):
            raise ValueError("queue ids must be unique")
        known = set(ids)
        for q in self.queues:
            if q.max_wait_s is not None and q.max_wait_s <= 0.0:
                # A zero maximum wait between two queues overflowing into each other would bounce a
                # contact forever without simulated time moving.
                raise ValueError(f"queue {q.queue_id!r}: max_wait_s must be > 0 in a simulation")
            if q.overflow_queue_id is not None and q.overflow_queue_id not in known:
                raise ValueError(f"queue {q.queue_id!r} overflows to unknown queue {q.overflow_queue_id!r}")
            for step in q.escalations:
                for extra in step.add_queues:
                    if extra not in known:
                        raise ValueError(f"queue {q.queue_id!r} escalates to unknown queue {extra!r}")
            if self.answer_delay_s >= q.offer_timeout_s:
                raise ValueError(
                    f"answer_delay_s ({self.answer_delay_s:g} s) must be shorter than the offer timeout "
                    f"of queue {q.queue_id!r} ({q.offer_timeout_s:g} s)"
                )
        names = [g.name for g in self.agents]
        if len(set(names)) != len(names):
            raise ValueError("agent group names must be unique")
        for g in self.agents:
            for queue_id in g.queues:
                if queue_id not in known:
                    raise ValueError(f"agent group {g.name!r} serves unknown queue {queue_id!r}")
        for s in self.arrivals:
            if s.queue_id not in known:
                raise ValueError(f"an arrival stream goes to unknown queue {s.queue_id!r}")

    @property
    def agent_count(self) -> int:
        """Agents in all groups."""
        return sum(g.count for g in self.agents)

    def expected_arrivals(self) -> float:
        """Expected number of contacts per replication (all streams, up to the horizon)."""
        return sum(s.expected_count(0.0, self.horizon_s) for s in self.arrivals)


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------


class TallyCounts(NamedTuple):
    """Counts of one replication for contacts that arrived into one queue (or all queues).

    ``offered`` = ``answered + abandoned + refused + unresolved``; ``refused`` counts contacts turned
    away (refused or handed to a fallback action); ``unresolved`` those still waiting when the run
    ended; ``overflowed`` contacts that moved to another queue at least once.
    """

    offered: int
    answered: int
    answered_within: int
    abandoned: int
    refused: int
    unresolved: int
    overflowed: int
    wait_sum_s: float
    abandoned_wait_sum_s: float


class ReplicationStats(NamedTuple):
    """Raw figures of one replication.

    ``totals`` counts every arrival (warm-up included) — the conservation check: ``arrivals ==
    answered + abandoned + refused + waiting_at_end``. ``measured`` and ``queues`` (by the queue a
    contact arrived in) count only contacts that arrived in the measurement window.
    ``answered_in`` counts answers by the queue that answered (overflow moves them);
    ``overflow_moves`` counts moves per ``(from queue, to queue)``. ``busy_s`` / ``agent_s`` are per
    agent group, within the window.
    """

    replication: int
    arrivals: int
    answered: int
    abandoned: int
    refused: int
    waiting_at_end: int
    measured: TallyCounts
    queues: dict[str, TallyCounts]
    answered_in: dict[str, int]
    overflow_moves: dict[tuple[str, str], int]
    busy_s: dict[str, float]
    agent_s: dict[str, float]
    events: int
    end_s: float
    waiting_at_horizon: int = 0
    """Contacts waiting when arrivals stopped (the backlog the drain then works off)."""


class QueueEstimates(NamedTuple):
    """Per-replication figures of a queue (or of all queues) averaged with 95 % intervals.

    ``service_level``: answered within the threshold / offered (abandoned and turned-away contacts
    count as not answered in time, as in Erlang A); ``service_level_answered``: the same among
    answered contacts; ``asa_s``: mean wait of answered contacts; ``abandon_rate``: abandoned /
    offered; ``overflow_rate``: share of contacts that overflowed; counts are per replication.
    """

    offered: Estimate
    answered: Estimate
    abandoned: Estimate
    refused: Estimate
    service_level: Estimate
    service_level_answered: Estimate
    asa_s: Estimate
    abandon_rate: Estimate
    overflow_rate: Estimate


class SimulationResult(NamedTuple):
    """The outcome of :func:`simulate`: estimates across replications and the raw runs."""

    scenario: Scenario
    replications: int
    seed: int
    overall: QueueEstimates
    queues: dict[str, QueueEstimates]
    occupancy: Estimate
    group_occupancy: dict[str, Estimate]
    answered_in: dict[str, Estimate]
    overflow_moves: dict[tuple[str, str], Estimate]
    runs: tuple[ReplicationStats, ...]

    @property
    def waiting_at_end(self) -> Estimate:
        """Contacts still waiting when a replication ends, per replication. Many of them mean the
        queue did not settle (too few agents and no abandonment): the other figures then depend on
        how long the run was."""
        return estimate([float(r.waiting_at_end) for r in self.runs])

    @property
    def waiting_at_horizon(self) -> Estimate:
        """Contacts waiting when arrivals stopped, per replication: the backlog the run then drained
        (their late answers count in the figures)."""
        return estimate([float(r.waiting_at_horizon) for r in self.runs])

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (infinite or undefined figures become ``None``)."""

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        def est(e: Estimate) -> dict[str, Any]:
            return {"mean": num(e.mean), "low": num(e.low), "high": num(e.high), "std": num(e.std), "n": e.n}

        def block(q: QueueEstimates) -> dict[str, Any]:
            return {name: est(value) for name, value in q._asdict().items()}

        return {
            "replications": self.replications,
            "seed": self.seed,
            "horizon_s": self.scenario.horizon_s,
            "warmup_s": self.scenario.warmup_s,
            "answer_time_s": self.scenario.answer_time_s,
            "agents": self.scenario.agent_count,
            "overall": block(self.overall),
            "queues": {name: block(q) for name, q in self.queues.items()},
            "occupancy": est(self.occupancy),
            "waiting_at_end": est(self.waiting_at_end),
            "waiting_at_horizon": est(self.waiting_at_horizon),
            "group_occupancy": {name: est(e) for name, e in self.group_occupancy.items()},
            "answered_in": {name: est(e) for name, e in self.answered_in.items()},
            "overflow_moves": [
                {"from": a, "to": b, **est(e)} for (a, b), e in sorted(self.overflow_moves.items())
            ],
            "conservation": [
                {
                    "arrivals": r.arrivals,
                    "answered": r.answered,
                    "abandoned": r.abandoned,
                    "refused": r.refused,
                    "waiting_at_end": r.waiting_at_end,
                }
                for r in self.runs
            ],
        }


class _Tally:
    """Mutable counters behind :class:`TallyCounts`."""

    __slots__ = (
        "abandoned",
        "abandoned_wait",
        "answered",
        "offered",
        "overflowed",
        "refused",
        "unresolved",
        "wait_sum",
        "within",
    )

    def __init__(self) -> None:
        self.offered = 0
        self.answered = 0
        self.within = 0
        self.abandoned = 0
        self.refused = 0
        self.unresolved = 0
        self.overflowed = 0
        self.wait_sum = 0.0
        self.abandoned_wait = 0.0

    def frozen(self) -> TallyCounts:
        return TallyCounts(
            self.offered,
            self.answered,
            self.within,
            self.abandoned,
            self.refused,
            self.unresolved,
            self.overflowed,
            self.wait_sum,
            self.abandoned_wait,
        )


def _sum_tallies(tallies: Iterable[TallyCounts]) -> TallyCounts:
    rows = list(tallies)
    return TallyCounts(
        sum(t.offered for t in rows),
        sum(t.answered for t in rows),
        sum(t.answered_within for t in rows),
        sum(t.abandoned for t in rows),
        sum(t.refused for t in rows),
        sum(t.unresolved for t in rows),
        sum(t.overflowed for t in rows),
        math.fsum(t.wait_sum_s for t in rows),
        math.fsum(t.abandoned_wait_sum_s for t in rows),
    )


# ------------------------------------------------------------------------------------------------
# one replication
# ------------------------------------------------------------------------------------------------


def _next_arrival(stream: ArrivalStream, t: float, expo: Callable[[float], float]) -> float:
    """The next Poisson arrival after ``t`` (piecewise-constant rate: exact, by memorylessness)."""
    if not stream.interval_rates:
        rate = stream.rate_per_s
        return t + expo(rate) if rate > 0.0 else math.inf
    width = stream.interval_s
    rates = stream.interval_rates
    index = int(t // width)
    while 0 <= index < len(rates):
        end = (index + 1) * width
        rate = rates[index]
        if rate > 0.0:
            candidate = t + expo(rate)
            if candidate < end:
                return candidate
        t = end
        index += 1
    return math.inf


def run_replication(
    scenario: Scenario,
    rng: random.Random,
    engine_rng: random.Random | None = None,
    index: int = 0,
    progress: Callable[[float], None] | None = None,
    max_events: int | None = None,
) -> ReplicationStats:
    """Simulate the scenario once with the random stream ``rng`` (``engine_rng`` feeds the engine's
    random_weighted strategy). ``progress`` is called with the share of the replication done.
    More than ``max_events`` events raise :class:`SimulationTooLarge`."""
    horizon = scenario.horizon_s
    warmup = scenario.warmup_s
    answer_t = scenario.answer_time_s
    delay = scenario.answer_delay_s
    end_limit = horizon + scenario.drain_s

    engine = RoutingEngine(
        EngineConfig(priority_weight_s=scenario.priority_weight_s),
        rng=engine_rng if engine_rng is not None else random.Random(rng.random()),
        omit=_UNUSED_EVENTS,
    )
    for queue in scenario.queues:
        engine.upsert_queue(queue)
    group_of: dict[str, int] = {}
    group_names = [g.name for g in scenario.agents]
    agent_s = {g.name: g.agent_seconds(warmup, horizon) for g in scenario.agents}
    busy = [0.0] * len(scenario.agents)
    busy_since: dict[str, float] = {}
    logins: list[str] = []
    # Per group: its agents in order; the first on_duty(t) of them are on duty at t.
    members: list[list[str]] = []
    for gi, group in enumerate(scenario.agents):
        ids = []
        for config in group.configs():
            engine.upsert_agent(config)
            group_of[config.agent_id] = gi
            ids.append(config.agent_id)
        members.append(ids)
        logins.extend(ids[: group.on_duty(0.0)])
    on_duty = [len(ids) for ids in members]  # set at the first shift event below

    measured: dict[str, _Tally] = {q.queue_id: _Tally() for q in scenario.queues}
    answered_in: dict[str, int] = dict.fromkeys(measured, 0)
    moves: dict[tuple[str, str], int] = {}
    # contact id -> (window tally or None, handling sampler); only contacts not yet connected,
    # abandoned or turned away are here.
    live: dict[str, tuple[_Tally | None, Callable[[], float]]] = {}
    overflowed: set[str] = set()  # contacts that moved to another queue at least once
    # contact id -> agent expected to accept (answer delay only).
    ringing: dict[str, str] = {}
    arrivals = answered = abandoned = refused = 0  # all arrivals, warm-up included

    # (time, seq, kind, payload): payload is the stream (arrival), the contact id (handling end,
    # patience end), (contact id, agent id) (accept) or the agent group (shift). seq breaks ties,
    # so payloads are never compared.
    heap: list[tuple[float, int, int, Any]] = []
    push = heapq.heappush
    pop = heapq.heappop
    seq = 0
    expo = rng.expovariate
    streams = scenario.arrivals
    # Per stream, what an arrival needs: (channel, queue, priority, handling sampler, patience
    # sampler or None, constant rate or 0.0 for a piecewise rate, the stream).
    stream_info = [
        (
            s.channel,
            s.queue_id,
            s.priority,
            s.handling.sampler(rng),
            s.patience.sampler(rng) if s.patience.finite else None,
            0.0 if s.interval_rates else s.rate_per_s,
            s,
        )
        for s in streams
    ]
    for si, stream in enumerate(streams):
        first = _next_arrival(stream, 0.0, expo)
        if first < horizon:
            seq += 1
            push(heap, (first, seq, _ARRIVAL, si))
    for gi, group in enumerate(scenario.agents):
        on_duty[gi] = group.on_duty(0.0)
        width = group.schedule_interval_s
        for i in range(1, len(group.schedule)):
            if i * width < horizon and group.schedule[i] != group.schedule[i - 1]:
                seq += 1
                push(heap, (i * width, seq, _SHIFT, gi))

    def busy_until(agent_id: str, start: float, end: float) -> None:
        lo = start if start > warmup else warmup
        hi = end if end < horizon else horizon
        if hi > lo:
            busy[group_of[agent_id]] += hi - lo

    def handle(outs: list[Output], now: float) -> None:
        # One pass over the engine's outputs, most frequent kinds first (two agent state changes per
        # contact); accepting an offer appends the accept's outputs to the same list, and the for loop
        # visits them too.
        nonlocal seq, answered, abandoned, refused
        for o in outs:
            cls = type(o)
            if cls is AgentStateChanged:
                aid = o.agent_id  # type: ignore[union-attr]
                state = o.state  # type: ignore[union-attr]
                if state == "on_contact" or state == "wrap_up":
                    if aid not in busy_since:
                        busy_since[aid] = now
                else:
                    start = busy_since.pop(aid, None)
                    if start is not None:
                        # busy_until(), inlined: this runs for every contact.
                        lo = start if start > warmup else warmup
                        hi = now if now < horizon else horizon
                        if hi > lo:
                            busy[group_of[aid]] += hi - lo
            elif cls is OfferContact:
                cid = o.contact_id  # type: ignore[union-attr]
                agent = o.agent_ids[0]  # type: ignore[union-attr]
                if delay == 0.0:
                    outs.extend(engine.offer_accepted(cid, agent, now))
                else:
                    ringing[cid] = agent
                    seq += 1
                    push(heap, (now + delay, seq, _ACCEPT, (cid, agent)))
            elif cls is ContactConnected:
                cid = o.contact_id  # type: ignore[union-attr]
                tally, handling = live.pop(cid)
                answered += 1
                if tally is not None:
                    waited = o.waited_s  # type: ignore[union-attr]
                    tally.answered += 1
                    tally.wait_sum += waited
                    if waited <= answer_t:
                        tally.within += 1
                    answered_in[o.queue_id] += 1  # type: ignore[union-attr]
                seq += 1
                push(heap, (now + handling(), seq, _FINISH, cid))
            elif cls is ContactAbandoned:
                tally = live.pop(o.contact_id)[0]  # type: ignore[union-attr]
                abandoned += 1
                if tally is not None:
                    tally.abandoned += 1
                    tally.abandoned_wait += o.waited_s  # type: ignore[union-attr]
            elif cls is ContactOverflowed:
                key = (o.from_queue, o.to_queue)  # type: ignore[union-attr]
                moves[key] = moves.get(key, 0) + 1
                cid = o.contact_id  # type: ignore[union-attr]
                if cid not in overflowed:
                    overflowed.add(cid)
                    tally = live[cid][0]
                    if tally is not None:
                        tally.overflowed += 1
            elif cls is ContactRefused or cls is FallbackAction:
                tally = live.pop(o.contact_id)[0]  # type: ignore[union-attr]
                refused += 1
                if tally is not None:
                    tally.refused += 1
            elif cls is WithdrawOffer or cls is OfferTimedOut:
                ringing.pop(o.contact_id, None)  # type: ignore[union-attr]

    for agent_id in logins:
        handle(engine.agent_login(agent_id, 0.0), 0.0)
    next_deadline = engine.next_deadline
    arrived = engine.arrive
    finished = engine.contact_finished
    deadline = next_deadline()

    events = 0
    event_limit = max_events if max_events is not None else _NO_EVENT_LIMIT
    now = 0.0
    step = horizon / _PROGRESS_STEPS
    checkpoint = step
    next_id = 0
    inf = math.inf
    waiting_at_horizon = -1  # counted when the first event at or past the horizon comes
    while True:
        t = heap[0][0] if heap else inf
        timer = deadline is not None and deadline <= t
        if timer:
            # The engine's own timers (offer timeouts, wrap-up ends, maximum waits) go first.
            t = deadline  # type: ignore[assignment]
        if t > checkpoint:
            if t >= horizon:
                if waiting_at_horizon < 0:
                    waiting_at_horizon = len(live)
                # No arrivals any more: stop once nobody waits (or the drain time is over).
                if not live or t > end_limit:
                    break
            else:
                while checkpoint < t:
                    if progress is not None:
                        progress(checkpoint / horizon)
                    checkpoint += step
                checkpoint = min(checkpoint, horizon)
        events += 1
        if events > event_limit:
            raise SimulationTooLarge(
                f"replication {index} passed {event_limit:,} events at {t:,.0f} s of {horizon:,.0f} s: "
                "look for overflow rules that send contacts round in a circle"
            )
        if timer:
            now = t
            handle(engine.tick(now), now)
            deadline = next_deadline()
            continue
        now, _, kind, payload = pop(heap)
        if kind == _FINISH:
            handle(finished(payload, now), now)
        elif kind == _ARRIVAL:
            channel, queue_id, priority, handling, patience, rate, stream = stream_info[payload]
            next_id += 1
            cid = str(next_id)
            arrivals += 1
            if now >= warmup:
                tally = measured[queue_id]
                tally.offered += 1
            else:
                tally = None
            live[cid] = (tally, handling)
            handle(arrived(cid, channel, queue_id, now, priority), now)
            if patience is not None and cid in live:
                seq += 1
                push(heap, (now + patience(), seq, _PATIENCE, cid))
            # _next_arrival(), inlined for a constant rate.
            following = now + expo(rate) if rate else _next_arrival(stream, now, expo)
            if following < horizon:
                seq += 1
                push(heap, (following, seq, _ARRIVAL, payload))
        elif kind == _PATIENCE:
            if payload in live:
                ringing.pop(payload, None)
                handle(engine.contact_withdrawn(payload, now), now)
        elif kind == _SHIFT:
            # payload is the group here: bring its on-duty count to the roster's.
            ids = members[payload]
            target = scenario.agents[payload].on_duty(now)
            for aid in ids[target : on_duty[payload]]:
                handle(engine.set_agent_state(aid, "not_ready", now, reason=_OFF_SHIFT), now)
            for aid in ids[on_duty[payload] : target]:
                if engine.agent_status(aid).state == "offline":
                    handle(engine.agent_login(aid, now), now)
                else:
                    handle(engine.set_agent_state(aid, "available", now), now)
            on_duty[payload] = target
        else:  # _ACCEPT of an offer, if it still rings
            cid, agent = payload
            if ringing.get(cid) == agent:
                del ringing[cid]
                handle(engine.offer_accepted(cid, agent, now), now)
        deadline = next_deadline()

    # Nothing happened between the last event and the stop: agents busy then were busy until the
    # horizon at least.
    end = max(now, horizon)
    for aid, start in busy_since.items():
        busy_until(aid, start, end)
    for tally, _ in live.values():
        if tally is not None:
            tally.unresolved += 1
    if progress is not None:
        progress(1.0)
    queues = {queue_id: tally.frozen() for queue_id, tally in measured.items()}
    return ReplicationStats(
        replication=index,
        arrivals=arrivals,
        answered=answered,
        abandoned=abandoned,
        refused=refused,
        waiting_at_end=len(live),
        waiting_at_horizon=max(waiting_at_horizon, 0),
        measured=_sum_tallies(queues.values()),
        queues=queues,
        answered_in=answered_in,
        overflow_moves=moves,
        busy_s={name: busy[gi] for gi, name in enumerate(group_names)},
        agent_s=agent_s,
        events=events,
        end_s=now,
    )


# ------------------------------------------------------------------------------------------------
# replications and estimates
# ------------------------------------------------------------------------------------------------


def _ratio_values(pairs: Iterable[tuple[float, float]]) -> list[float]:
    return [num / den for num, den in pairs if den > 0]


def _queue_estimates(tallies: Sequence[TallyCounts]) -> QueueEstimates:
    return QueueEstimates(
        offered=estimate([float(t.offered) for t in tallies]),
        answered=estimate([float(t.answered) for t in tallies]),
        abandoned=estimate([float(t.abandoned) for t in tallies]),
        refused=estimate([float(t.refused) for t in tallies]),
        service_level=estimate(_ratio_values((t.answered_within, t.offered) for t in tallies)),
        service_level_answered=estimate(_ratio_values((t.answered_within, t.answered) for t in tallies)),
        asa_s=estimate(_ratio_values((t.wait_sum_s, t.answered) for t in tallies)),
        abandon_rate=estimate(_ratio_values((t.abandoned, t.offered) for t in tallies)),
        overflow_rate=estimate(_ratio_values((t.overflowed, t.offered) for t in tallies)),
    )


def _offset_progress(progress: Callable[[float], None], done: int) -> Callable[[float], None]:
    return lambda share: progress(done + share)


def replication_rngs(seed: int, index: int) -> tuple[random.Random, random.Random]:
    """The independent random streams of replication ``index``: (arrivals and durations, engine)."""
    return (
        random.Random(f"frontoffice.wfm.simulation/{seed}/{index}/contacts"),
        random.Random(f"frontoffice.wfm.simulation/{seed}/{index}/engine"),
    )


def simulate(
    scenario: Scenario,
    replications: int = 20,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    max_events: int | None = None,
) -> SimulationResult:
    """Run ``replications`` independent replications and estimate the figures with 95 % intervals.

    ``progress`` is called with the number of replications done so far (a float, rising to
    ``replications``). The same ``seed`` gives the same result. ``max_events`` bounds the events of
    each replication (:class:`SimulationTooLarge` beyond; a contact makes two to four).
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications!r}")
    runs: list[ReplicationStats] = []
    for i in range(replications):
        rng, engine_rng = replication_rngs(seed, i)
        report = None if progress is None else _offset_progress(progress, i)
        try:
            runs.append(
                run_replication(scenario, rng, engine_rng, index=i, progress=report, max_events=max_events)
            )
        except RoutingError as exc:
            raise ValueError(f"the routing engine refused the scenario: {exc}") from None
    queue_ids = [q.queue_id for q in scenario.queues]
    group_names = [g.name for g in scenario.agents]
    all_moves = sorted({key for r in runs for key in r.overflow_moves})
    return SimulationResult(
        scenario=scenario,
        replications=replications,
        seed=seed,
        overall=_queue_estimates([r.measured for r in runs]),
        queues={
            q: _queue_estimates([r.queues[q] for r in runs])
            for q in queue_ids
            if any(r.queues[q].offered for r in runs)
        },
        occupancy=estimate(
            [
                math.fsum(r.busy_s.values()) / sum(r.agent_s.values())
                for r in runs
                if sum(r.agent_s.values()) > 0
            ]
        ),
        group_occupancy={
            name: estimate([r.busy_s[name] / r.agent_s[name] for r in runs if r.agent_s[name] > 0])
            for name in group_names
        },
        answered_in={q: estimate([float(r.answered_in[q]) for r in runs]) for q in queue_ids},
        overflow_moves={
            key: estimate([float(r.overflow_moves.get(key, 0)) for r in runs]) for key in all_moves
        },
        runs=tuple(runs),
    )


# ------------------------------------------------------------------------------------------------
# building scenarios
# ------------------------------------------------------------------------------------------------


def single_queue_scenario(
    calls_per_s: float,
    aht_s: float,
    agents: int,
    *,
    hours: float = 8.0,
    warmup_s: float | None = None,
    patience_s: float | None = None,
    answer_time_s: float = 20.0,
    handling: DurationKind = "exponential",
    handling_cv: float = 1.0,
    wrap_up_s: float = 0.0,
) -> Scenario:
    """One queue, one skill, ``agents`` agents: the case Erlang C (no patience) and Erlang A
    (exponential patience) describe. ``aht_s`` includes ``wrap_up_s``. The warm-up defaults to ten
    handling times (capped at a tenth of the run)."""
    if not 0.0 <= wrap_up_s < aht_s:
        raise ValueError("need 0 <= wrap_up_s < aht_s")
    horizon = hours * 3600.0
    if warmup_s is None:
        warmup_s = min(10.0 * aht_s, horizon / 10.0)
    talk = aht_s - wrap_up_s
    queue = QueueConfig("main", wrap_up_s=wrap_up_s)
    group = AgentGroup("agents", agents, queues={"main": 1})
    stream = ArrivalStream(
        "main",
        rate_per_s=calls_per_s,
        handling=Duration(handling, talk, handling_cv),
        patience=NO_PATIENCE if patience_s is None else Duration("exponential", patience_s),
    )
    return Scenario(
        (queue,), (group,), (stream,), horizon_s=horizon, warmup_s=warmup_s, answer_time_s=answer_time_s
    )


def arrivals_from_forecast(
    queue_id: str,
    forecast: Sequence[tuple[datetime, float]],
    *,
    interval_s: float | None = None,
    handling: Duration = Duration("exponential", 180.0),
    patience: Duration = NO_PATIENCE,
    channel: str = "voice",
    priority: int = 0,
) -> ArrivalStream:
    """An arrival stream with the forecast's calls per interval (``(interval start, calls)``, as
    ``plan_day`` takes them; time 0 is the first start). ``interval_s`` defaults to their spacing."""
    rows = sorted(forecast, key=lambda row: row[0])
    if not rows:
        raise ValueError("the forecast has no intervals")
    if interval_s is None:
        gaps = [(b[0] - a[0]).total_seconds() for a, b in pairwise(rows)]
        interval_s = min(gaps) if gaps else 3600.0
    if interval_s <= 0:
        raise ValueError("interval starts must be distinct")
    first = rows[0][0]
    slots = round((rows[-1][0] - first).total_seconds() / interval_s) + 1
    rates = [0.0] * slots
    for start, calls in rows:
        rates[round((start - first).total_seconds() / interval_s)] += calls / interval_s
    return ArrivalStream(
        queue_id,
        handling=handling,
        patience=patience,
        channel=channel,
        priority=priority,
        interval_rates=tuple(rates),
        interval_s=interval_s,
    )


def roster_from_day_plan(
    plan: DayPlan,
    name: str,
    queues: Mapping[str, int],
    *,
    skills: Mapping[str, int] | None = None,
    capacity: Mapping[str, int] | None = None,
) -> AgentGroup:
    """An agent group on duty as the day plan says: ``plan.intervals[i].agents`` (positions on the
    phones, shrinkage already taken out) during interval ``i``."""
    schedule = tuple(row.agents for row in plan.intervals)
    return AgentGroup(
        name,
        max(schedule),
        skills=skills or {},
        queues=queues,
        capacity=capacity if capacity is not None else {"voice": 1},
        schedule=schedule,
        schedule_interval_s=float(plan.interval_s),
    )


# --- from a TOML / JSON document -------------------------------------------------------------------

_SCENARIO_KEYS = {
    "hours",
    "horizon_s",
    "warmup_s",
    "answer_time_s",
    "answer_delay_s",
    "priority_weight_s",
    "drain_s",
    "queues",
    "agents",
    "arrivals",
}
_QUEUE_KEYS = {
    "id",
    "skills",
    "strategy",
    "weight",
    "offer_timeout_s",
    "wrap_up_s",
    "max_wait_s",
    "max_length",
    "overflow",
    "escalations",
}
_AGENT_KEYS = {"name", "count", "skills", "queues", "capacity", "schedule", "schedule_interval_s"}
_ARRIVAL_KEYS = {
    "queue",
    "channel",
    "priority",
    "rate_per_s",
    "rate_per_min",
    "rate_per_hour",
    "calls_per_interval",
    "interval_s",
    "aht_s",
    "handling",
    "handling_cv",
    "patience_s",
    "patience",
}
_ESCALATION_KEYS = {"after_s", "relax_levels", "add_queues"}


def _table(value: object, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a table of keys")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def _opt(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _num(data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = _opt(data, key, where)
    return default if value is None else value


def _levels(value: object, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()
    ):
        raise ValueError(f"{where}: expected a table of name = integer")
    return dict(value)


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected a non-empty list")
    return value


def _queue_from(data: object, where: str) -> QueueConfig:
    q = _table(data, where, _QUEUE_KEYS)
    queue_id = q.get("id")
    if not isinstance(queue_id, str) or not queue_id:
        raise ValueError(f"{where}.id: every queue needs an id (a string)")
    steps = []
    for i, raw in enumerate(q.get("escalations") or []):
        s = _table(raw, f"{where}.escalations[{i}]", _ESCALATION_KEYS)
        extra = s.get("add_queues", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
            raise ValueError(f"{where}.escalations[{i}].add_queues: expected a list of queue ids")
        steps.append(
            EscalationStep(
                after_s=_num(s, "after_s", f"{where}.escalations[{i}]", 0.0),
                relax_levels=int(_num(s, "relax_levels", f"{where}.escalations[{i}]", 0)),
                add_queues=tuple(extra),
            )
        )
    overflow = q.get("overflow")
    if overflow is not None and not isinstance(overflow, str):
        raise ValueError(f"{where}.overflow: expected a queue id")
    strategy = q.get("strategy", "longest_idle")
    max_length = _opt(q, "max_length", where)
    try:
        return QueueConfig(
            queue_id,
            strategy=strategy,
            required_skills=_levels(q.get("skills"), f"{where}.skills"),
            weight=_num(q, "weight", where, 1.0),
            offer_timeout_s=_num(q, "offer_timeout_s", where, 20.0),
            wrap_up_s=_num(q, "wrap_up_s", where, 0.0),
            max_wait_s=_opt(q, "max_wait_s", where),
            max_length=None if max_length is None else int(max_length),
            overflow_queue_id=overflow,
            escalations=tuple(steps),
        )
    except RoutingError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _group_from(data: object, where: str) -> AgentGroup:
    g = _table(data, where, _AGENT_KEYS)
    name = g.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: every agent group needs a name")
    schedule = g.get("schedule", [])
    if not isinstance(schedule, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in schedule
    ):
        raise ValueError(f"{where}.schedule: expected a list of agent counts per interval")
    count = g.get("count", max(schedule) if schedule else None)
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError(f"{where}.count: expected an integer")
    capacity = _levels(g.get("capacity"), f"{where}.capacity") or {"voice": 1}
    unknown = sorted(set(capacity) - CHANNELS)
    if unknown:
        raise ValueError(f"{where}.capacity: unknown channel(s) {', '.join(unknown)}")
    return AgentGroup(
        name,
        count,
        skills=_levels(g.get("skills"), f"{where}.skills"),
        queues=_levels(g.get("queues"), f"{where}.queues"),
        capacity=capacity,
        schedule=tuple(schedule),
        schedule_interval_s=_num(g, "schedule_interval_s", where, 900.0),
    )


def _stream_from(data: object, where: str) -> ArrivalStream:
    a = _table(data, where, _ARRIVAL_KEYS)
    queue_id = a.get("queue")
    if not isinstance(queue_id, str):
        raise ValueError(f"{where}.queue: every arrival stream names its queue")
    given = [k for k in ("rate_per_s", "rate_per_min", "rate_per_hour", "calls_per_interval") if k in a]
    if len(given) != 1:
        raise ValueError(
            f"{where}: give exactly one of rate_per_s, rate_per_min, rate_per_hour, calls_per_interval"
        )
    rate = 0.0
    rates: tuple[float, ...] = ()
    interval = _num(a, "interval_s", where, 900.0)
    if interval <= 0.0:
        raise ValueError(f"{where}.interval_s: must be > 0")
    if given[0] == "calls_per_interval":
        raw = _list(a["calls_per_interval"], f"{where}.calls_per_interval")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
            raise ValueError(f"{where}.calls_per_interval: expected a list of numbers")
        rates = tuple(float(x) / interval for x in raw)
    else:
        per = {"rate_per_s": 1.0, "rate_per_min": 60.0, "rate_per_hour": 3600.0}[given[0]]
        rate = _num(a, given[0], where, 0.0) / per
    aht = _num(a, "aht_s", where, 180.0)
    kind = a.get("handling", "exponential")
    patience_s = _opt(a, "patience_s", where)
    patience_kind = a.get("patience", "exponential" if patience_s is not None else "none")
    if kind not in ("exponential", "lognormal", "fixed"):
        raise ValueError(f"{where}.handling: use exponential, lognormal or fixed")
    if patience_kind not in _DURATION_KINDS:
        raise ValueError(f"{where}.patience: use one of {', '.join(_DURATION_KINDS)}")
    if patience_kind != "none" and patience_s is None:
        raise ValueError(f"{where}: patience {patience_kind!r} needs patience_s")
    priority = a.get("priority", 0)
    channel = a.get("channel", "voice")
    if not isinstance(priority, int) or isinstance(priority, bool) or not isinstance(channel, str):
        raise ValueError(f"{where}: priority must be an integer and channel a string")
    return ArrivalStream(
        queue_id,
        rate_per_s=rate,
        handling=Duration(kind, aht, _num(a, "handling_cv", where, 1.0)),
        patience=NO_PATIENCE if patience_kind == "none" else Duration(patience_kind, patience_s or 0.0),
        channel=channel,
        priority=priority,
        interval_rates=rates,
        interval_s=interval,
    )


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build a scenario from a parsed TOML or JSON document; ``ValueError`` names the bad key.

    Top level: ``hours`` (or ``horizon_s``), ``warmup_s``, ``answer_time_s``, ``answer_delay_s``,
    ``priority_weight_s``, ``drain_s`` and the lists ``queues`` (``id``, ``skills``, ``strategy``,
    ``weight``, ``offer_timeout_s``, ``wrap_up_s``, ``max_wait_s``, ``max_length``, ``overflow``,
    ``escalations``), ``agents`` (``name``, ``count``, ``skills``, ``queues`` with tiers,
    ``capacity``, ``schedule`` and ``schedule_interval_s``) and ``arrivals`` (``queue``,
    ``channel``, ``priority``, one of ``rate_per_s`` / ``rate_per_min`` / ``rate_per_hour`` /
    ``calls_per_interval`` with ``interval_s``, ``aht_s``, ``handling``, ``handling_cv``,
    ``patience_s``, ``patience``). See docs/planning.md.
    """
    top = _table(dict(data), "scenario", _SCENARIO_KEYS)
    queues = tuple(_queue_from(q, f"queues[{i}]") for i, q in enumerate(_list(top.get("queues"), "queues")))
    groups = tuple(_group_from(g, f"agents[{i}]") for i, g in enumerate(_list(top.get("agents"), "agents")))
    streams = tuple(
        _stream_from(a, f"arrivals[{i}]") for i, a in enumerate(_list(top.get("arrivals"), "arrivals"))
    )
    if "hours" in top and "horizon_s" in top:
        raise ValueError("scenario: give hours or horizon_s, not both")
    horizon = _opt(top, "horizon_s", "scenario")
    if horizon is None:
        hours = _opt(top, "hours", "scenario")
        if hours is None:
            intervals = [len(s.interval_rates) * s.interval_s for s in streams if s.interval_rates]
            if not intervals:
                raise ValueError("scenario: give hours (or horizon_s)")
            horizon = max(intervals)
        else:
            horizon = hours * 3600.0
    return Scenario(
        queues,
        groups,
        streams,
        horizon_s=horizon,
        warmup_s=_num(top, "warmup_s", "scenario", 0.0),
        answer_time_s=_num(top, "answer_time_s", "scenario", 20.0),
        answer_delay_s=_num(top, "answer_delay_s", "scenario", 0.0),
        priority_weight_s=_num(top, "priority_weight_s", "scenario", 60.0),
        drain_s=_num(top, "drain_s", "scenario", 3600.0),
    )
