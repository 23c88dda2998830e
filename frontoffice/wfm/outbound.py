"""Outbound campaigns in simulated time: the real pacer and the real routing engine, fed with a
random contact list.

A planner's question — with 50 agents, a 25 % answer rate, 20 s ring time, 120 s talk and 10 s
wrap-up, how much talk time per agent hour do progressive and predictive dialling give at a 3 % cap?
— is answered by running :class:`frontoffice.domain.dialer.Pacer` unchanged, the code the live
dialler runs, against simulated called parties, with
:class:`frontoffice.domain.routing.RoutingEngine` deciding which agent takes an answered call.

Model (one campaign, one queue, agents who take only its calls):

* **The contact list** is drawn once per replication and dialled in order by every mode, so modes are
  compared on the same people (common random numbers). Each contact answers with probability
  ``answer_rate`` after a ring time drawn from a gamma distribution with mean ``ring_s`` and
  coefficient of variation ``ring_cv`` (a person whose draw is past the ring timeout does not answer
  in time: a no-answer). Of the others, ``busy_share`` give a busy signal after 2–6 s,
  ``failed_share`` fail within 0.5–2 s (no route, 404, 503), the rest ring until the ring timeout.
* **An answered call** enters the campaign's queue; the engine offers it to a free agent, who accepts
  at once. Nobody within :data:`~frontoffice.domain.dialer.ABANDON_AFTER_S` (2 s): it hears the
  recorded message and is abandoned.
* **Talk** is drawn per contact (exponential by default: the classical assumption; lognormal and
  fixed are available), then the queue's fixed wrap-up.
* **The dialler** asks the pacer every second and whenever an agent becomes free, with what a live
  dialler knows: ready agents, busy agents (the wrap-up's end is known, the end of a talk is not),
  calls ringing and for how long, answered calls waiting; it reports every outcome back.
* **The day** runs ``hours`` from an empty start; dialling stops at the end and calls in hand finish.
  Talk minutes per agent hour count talk within the day; the abandon ratio is abandoned / live
  answered calls over the whole day (the regulators' measure).

Pure standard library plus the domain packages; the CLI (``frontoffice simulate --outbound``) and
``bench/dialer.py`` print the figures.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from frontoffice.domain.dialer import (
    ABANDON_AFTER_S,
    DEFAULT_ABANDON_CAP,
    CallOutcome,
    DialMode,
    Pacer,
    PacingSettings,
    PacingSnapshot,
)
from frontoffice.domain.routing import (
    EVENTS,
    AgentConfig,
    AgentStateChanged,
    ContactAbandoned,
    ContactConnected,
    EngineConfig,
    OfferContact,
    Output,
    QueueConfig,
    RoutingEngine,
    WrapUpStarted,
)
from frontoffice.wfm.simulation import Duration
from frontoffice.wfm.stats import Estimate, estimate

__all__ = [
    "OUTBOUND_MODES",
    "ContactList",
    "OutboundComparison",
    "OutboundRun",
    "OutboundScenario",
    "compare_outbound",
    "run_outbound",
]

OUTBOUND_MODES: Final = (DialMode.PROGRESSIVE, DialMode.PREDICTIVE)
"""The modes the simulation compares (preview depends on people, notification on lines only)."""

_QUEUE = "campaign"
# A live dialler re-evaluates the pace at least this often; a second is far below a ring time.
_TICK_S: Final = 1.0
# Busy signals come back within a few seconds, carrier failures within about one or two.
_BUSY_RING_S: Final = (2.0, 6.0)
_FAILED_RING_S: Final = (0.5, 2.0)
# Kinds of events in the simulation's own heap.
_RING_END = 0
_PATIENCE = 1
_TALK_END = 2
_TICK = 3
_TALK: Final = Duration("exponential", 120.0)
_UNUSED_EVENTS = EVENTS - {AgentStateChanged, ContactConnected, ContactAbandoned, WrapUpStarted}


@dataclass(frozen=True, slots=True)
class OutboundScenario:
    """One campaign's day: agents, the people called, and the pacing settings.

    ``ring_timeout_s`` defaults to twice ``ring_s``, at least 30 s (a common dialler default; the
    FTC asks for at least 15 s). ``pacing`` holds the pacer's settings except the mode, which each
    run sets; its priors default to this scenario's figures.
    """

    agents: int = 50
    answer_rate: float = 0.25
    ring_s: float = 20.0
    ring_cv: float = 0.4
    ring_timeout_s: float | None = None
    talk: Duration = _TALK
    wrap_s: float = 10.0
    busy_share: float = 0.2
    failed_share: float = 0.05
    hours: float = 8.0
    abandon_cap: float = DEFAULT_ABANDON_CAP
    pacing: PacingSettings | None = None

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents must be >= 1, got {self.agents!r}")
        if not 0.0 < self.answer_rate <= 1.0:
            raise ValueError(f"answer_rate must be above 0 and at most 1, got {self.answer_rate!r}")
        for name in ("ring_s", "ring_cv", "hours"):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not (self.wrap_s >= 0.0 and math.isfinite(self.wrap_s)):
            raise ValueError(f"wrap_s must be >= 0, got {self.wrap_s!r}")
        if not self.talk.finite:
            raise ValueError("talk time must be finite")
        shares = (self.busy_share, self.failed_share)
        if min(shares) < 0.0 or sum(shares) > 1.0:
            raise ValueError("busy_share and failed_share must be >= 0 and add up to at most 1")
        if self.ring_timeout_s is not None and not (
            self.ring_timeout_s > 0.0 and math.isfinite(self.ring_timeout_s)
        ):
            raise ValueError(f"ring_timeout_s must be > 0, got {self.ring_timeout_s!r}")
        if not 0.0 <= self.abandon_cap <= DEFAULT_ABANDON_CAP:
            raise ValueError(f"the abandon cap must be from 0 to {DEFAULT_ABANDON_CAP:.0%}")

    @property
    def timeout_s(self) -> float:
        """The ring timeout in force."""
        if self.ring_timeout_s is not None:
            return self.ring_timeout_s
        return max(30.0, 2.0 * self.ring_s)

    @property
    def horizon_s(self) -> float:
        """The length of the day, s."""
        return self.hours * 3600.0

    def settings(self, mode: DialMode) -> PacingSettings:
        """The pacer's settings for ``mode``."""
        base = self.pacing
        if base is None:
            base = PacingSettings(
                answer_rate=self.answer_rate,
                ring_s=self.ring_s,
                talk_s=self.talk.mean_s,
                wrap_s=self.wrap_s,
                ring_timeout_s=self.timeout_s,
            )
        return dataclasses.replace(base, mode=mode, abandon_cap=self.abandon_cap)


class CalledParty(NamedTuple):
    """What happens when one contact is dialled: the outcome, after ``ring_s``; ``talk_s`` if answered."""

    outcome: CallOutcome
    ring_s: float
    talk_s: float


class ContactList:
    """The contacts of one replication, drawn lazily in dialling order from ``seed``: the n-th
    contact is the same for every mode that dials it."""

    __slots__ = ("_busy", "_draw_talk", "_failed", "_parties", "_rng", "_scenario")

    def __init__(self, scenario: OutboundScenario, seed: int | str) -> None:
        self._scenario = scenario
        self._rng = random.Random(f"frontoffice.wfm.outbound/{seed}/contacts")
        self._draw_talk = scenario.talk.sampler(self._rng)
        self._parties: list[CalledParty] = []
        self._busy = scenario.busy_share
        self._failed = scenario.busy_share + scenario.failed_share

    def __getitem__(self, index: int) -> CalledParty:
        parties = self._parties
        while len(parties) <= index:
            parties.append(self._draw())
        return parties[index]

    def _draw(self) -> CalledParty:
        # Contacts are drawn in dialling order from their own stream, never from the simulation's, so
        # the n-th contact is the same whatever happened before it was dialled. Each draws its answer,
        # ring time, kind and talk whatever its fate, so fates stay independent of one another.
        sc = self._scenario
        rng = self._rng
        answers = rng.random() < sc.answer_rate
        shape = 1.0 / (sc.ring_cv * sc.ring_cv)
        answer_after = rng.gammavariate(shape, sc.ring_s / shape)
        kind = rng.random()
        talk = self._draw_talk()
        timeout = sc.timeout_s
        if answers and answer_after < timeout:
            return CalledParty(CallOutcome.ANSWERED, answer_after, talk)
        if not answers and kind < self._busy:
            low, high = _BUSY_RING_S
            return CalledParty(CallOutcome.BUSY, low + (high - low) * kind / self._busy, 0.0)
        if not answers and kind < self._failed:
            low, high = _FAILED_RING_S
            share = (kind - self._busy) / (self._failed - self._busy)
            return CalledParty(CallOutcome.FAILED, low + (high - low) * share, 0.0)
        return CalledParty(CallOutcome.NO_ANSWER, timeout, 0.0)


@dataclass(slots=True)
class OutboundRun:
    """The figures of one mode's day."""

    mode: DialMode
    agents: int
    hours: float
    calls_placed: int = 0
    live_answers: int = 0
    abandoned: int = 0
    talk_s: float = 0.0
    busy_s: float = 0.0
    fallback_s: float = 0.0
    """Seconds the pacer dialled progressively because the cap was reached (predictive only)."""
    peak_calls_ringing: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def talk_min_per_agent_hour(self) -> float:
        """Talk minutes per agent hour over the day."""
        return self.talk_s / 60.0 / (self.agents * self.hours)

    @property
    def abandon_ratio(self) -> float:
        """Abandoned / live answered calls over the day."""
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def occupancy(self) -> float:
        """Share of agent time in talk or wrap-up."""
        return self.busy_s / (self.agents * self.hours * 3600.0)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "mode": self.mode.value,
            "agents": self.agents,
            "hours": self.hours,
            "calls_placed": self.calls_placed,
            "live_answers": self.live_answers,
            "abandoned": self.abandoned,
            "abandon_ratio": self.abandon_ratio,
            "talk_min_per_agent_hour": self.talk_min_per_agent_hour,
            "occupancy": self.occupancy,
            "fallback_s": self.fallback_s,
            "peak_calls_ringing": self.peak_calls_ringing,
            "outcomes": dict(self.outcomes),
        }


def run_outbound(scenario: OutboundScenario, mode: DialMode, contacts: ContactList) -> OutboundRun:
    """Simulate one day of ``scenario`` in ``mode``, dialling ``contacts`` in order."""
    mode = DialMode(mode)
    if mode not in OUTBOUND_MODES:
        raise ValueError(
            f"the simulation compares {', '.join(m.value for m in OUTBOUND_MODES)}; not {mode.value}"
        )
    horizon = scenario.horizon_s
    wrap_s = scenario.wrap_s
    pacer = Pacer(scenario.settings(mode))
    engine = RoutingEngine(EngineConfig(), rng=random.Random(0), omit=_UNUSED_EVENTS)
    engine.upsert_queue(QueueConfig(_QUEUE, wrap_up_s=wrap_s))
    run = OutboundRun(mode, scenario.agents, scenario.hours)
    outcomes = run.outcomes

    ready: set[str] = set()
    wrap_until: dict[str, float] = {}  # agents in wrap-up -> when it ends
    talking: set[str] = set()
    busy_since: dict[str, float] = {}
    waiting: dict[str, float] = {}  # answered calls waiting for an agent -> answered at
    connected: dict[str, tuple[float, float]] = {}  # contact -> (connected at, talk drawn)
    dialled_at: dict[int, float] = {}  # contacts ringing -> dialled at
    next_contact = 0
    wake = False  # an agent became free: pace at once rather than at the next tick
    heap: list[tuple[float, int, int, Any]] = []
    seq = 0
    dialling = True
    fallback_since: float | None = None

    def push(t: float, kind: int, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, payload))

    def add_busy(start: float, end: float) -> None:
        hi = min(end, horizon)
        if hi > start:
            run.busy_s += hi - start

    def handle(outs: list[Output], now: float) -> None:
        nonlocal wake
        for o in outs:
            if isinstance(o, AgentStateChanged):
                aid = o.agent_id
                if o.ready and o.state == "available":
                    ready.add(aid)
                    wake = True
                else:
                    ready.discard(aid)
                if o.state == "on_contact":
                    talking.add(aid)
                    wrap_until.pop(aid, None)
                    busy_since.setdefault(aid, now)
                elif o.state == "wrap_up":
                    talking.discard(aid)
                    busy_since.setdefault(aid, now)
                else:
                    talking.discard(aid)
                    wrap_until.pop(aid, None)
                    start = busy_since.pop(aid, None)
                    if start is not None:
                        add_busy(start, now)
            elif isinstance(o, WrapUpStarted):
                wrap_until[o.agent_id] = o.until
            elif isinstance(o, OfferContact):
                outs.extend(engine.offer_accepted(o.contact_id, o.agent_ids[0], now))
            elif isinstance(o, ContactConnected):
                waiting.pop(o.contact_id)
                pacer.observe_answered(now, abandoned=False)
                talk = contacts[int(o.contact_id)].talk_s
                connected[o.contact_id] = (now, talk)
                push(now + talk, _TALK_END, o.contact_id)
            elif isinstance(o, ContactAbandoned):
                waiting.pop(o.contact_id)
                pacer.observe_answered(now, abandoned=True)
                run.abandoned += 1
                outcomes[CallOutcome.ABANDONED.value] = outcomes.get(CallOutcome.ABANDONED.value, 0) + 1

    def pace(now: float) -> None:
        nonlocal next_contact, fallback_since
        if not dialling:
            return
        busy = [wrap_until[a] - now if a in wrap_until else None for a in talking.union(wrap_until)]
        snapshot = PacingSnapshot(
            now,
            agents_ready=len(ready),
            agents_busy=busy,
            calls_in_progress=len(dialled_at),
            calls_ringing_s=[now - t for t in dialled_at.values()],
            answered_waiting=len(waiting),
            calls_connected=len(connected),
        )
        n = pacer.calls_to_place(snapshot)
        in_fallback = pacer.effective_mode is not mode
        if in_fallback and fallback_since is None:
            fallback_since = now
        elif not in_fallback and fallback_since is not None:
            run.fallback_s += now - fallback_since
            fallback_since = None
        for _ in range(n):
            party = contacts[next_contact]
            push(now + party.ring_s, _RING_END, next_contact)
            dialled_at[next_contact] = now
            next_contact += 1
        run.calls_placed += n
        run.peak_calls_ringing = max(run.peak_calls_ringing, len(dialled_at))

    for i in range(scenario.agents):
        aid = f"agent-{i}"
        engine.upsert_agent(AgentConfig(aid, queues={_QUEUE: 1}))
        handle(engine.agent_login(aid, 0.0), 0.0)
    push(0.0, _TICK, None)
    deadline = engine.next_deadline()
    now = 0.0
    ticked = False
    while heap or deadline is not None:
        t = heap[0][0] if heap else math.inf
        if deadline is not None and deadline <= t:
            now = deadline
            handle(engine.tick(now), now)
        else:
            now, _, kind, payload = heapq.heappop(heap)
            if kind == _RING_END:
                party = contacts[payload]
                del dialled_at[payload]
                pacer.observe_attempt(now, party.outcome, party.ring_s)
                if party.outcome is CallOutcome.ANSWERED:
                    run.live_answers += 1
                    cid = str(payload)
                    waiting[cid] = now
                    handle(engine.arrive(cid, "voice", _QUEUE, now), now)
                    if cid in waiting:
                        push(now + ABANDON_AFTER_S, _PATIENCE, cid)
                else:
                    outcomes[party.outcome.value] = outcomes.get(party.outcome.value, 0) + 1
            elif kind == _PATIENCE:
                if payload in waiting:
                    handle(engine.contact_withdrawn(payload, now), now)
            elif kind == _TALK_END:
                start, talk = connected.pop(payload)
                run.talk_s += max(0.0, min(now, horizon) - start)
                outcomes[CallOutcome.ANSWERED.value] = outcomes.get(CallOutcome.ANSWERED.value, 0) + 1
                handle(engine.contact_finished(payload, now), now)
                pacer.observe_connected(now, talk, wrap_s)
            else:  # _TICK
                ticked = True
                if now >= horizon:
                    dialling = False
                else:
                    push(now + _TICK_S, _TICK, None)
        # Everything due at this instant first, then one pacing decision: on the steady tick, or at
        # once when an agent became free (as the live dialler does).
        deadline = engine.next_deadline()
        if (heap and heap[0][0] == now) or deadline == now or not (ticked or wake):
            continue
        ticked = wake = False
        pace(now)
    if fallback_since is not None:
        run.fallback_s += min(now, horizon) - fallback_since
    for start in busy_since.values():
        add_busy(start, now)
    return run


class OutboundComparison(NamedTuple):
    """Every mode on the same contact lists: one run per mode and replication, and estimates."""

    scenario: OutboundScenario
    replications: int
    seed: int
    runs: dict[DialMode, tuple[OutboundRun, ...]]

    def estimate(self, mode: DialMode, figure: Callable[[OutboundRun], float]) -> Estimate:
        """A figure of ``mode`` across replications (mean, 95 % interval)."""
        return estimate([figure(r) for r in self.runs[mode]])

    @property
    def predictive_gain_ratio(self) -> float | None:
        """Predictive talk per agent hour over progressive (both present), on the same contacts."""
        if DialMode.PREDICTIVE not in self.runs or DialMode.PROGRESSIVE not in self.runs:
            return None
        pred = math.fsum(r.talk_s for r in self.runs[DialMode.PREDICTIVE])
        prog = math.fsum(r.talk_s for r in self.runs[DialMode.PROGRESSIVE])
        return pred / prog if prog > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        sc = self.scenario

        def est(e: Estimate) -> dict[str, Any]:
            def num(x: float) -> float | None:
                return x if math.isfinite(x) else None

            return {"mean": num(e.mean), "low": num(e.low), "high": num(e.high), "n": e.n}

        modes: dict[str, Any] = {}
        for mode, runs in self.runs.items():
            modes[mode.value] = {
                "talk_min_per_agent_hour": est(self.estimate(mode, lambda r: r.talk_min_per_agent_hour)),
                "abandon_ratio": est(self.estimate(mode, lambda r: r.abandon_ratio)),
                "abandon_ratio_max": max(r.abandon_ratio for r in runs),
                "calls_placed": est(self.estimate(mode, lambda r: float(r.calls_placed))),
                "occupancy": est(self.estimate(mode, lambda r: r.occupancy)),
                "runs": [r.as_dict() for r in runs],
            }
        return {
            "agents": sc.agents,
            "hours": sc.hours,
            "answer_rate": sc.answer_rate,
            "ring_s": sc.ring_s,
            "ring_timeout_s": sc.timeout_s,
            "talk_s": sc.talk.mean_s,
            "wrap_s": sc.wrap_s,
            "abandon_cap": sc.abandon_cap,
            "replications": self.replications,
            "seed": self.seed,
            "modes": modes,
            "predictive_gain_ratio": self.predictive_gain_ratio,
        }


def compare_outbound(
    scenario: OutboundScenario,
    modes: Iterable[DialMode] = OUTBOUND_MODES,
    replications: int = 3,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> OutboundComparison:
    """Run each mode on the same contact list per replication (``replications`` lists from
    ``seed``). ``progress`` is called with the number of runs done."""
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications!r}")
    chosen: Sequence[DialMode] = tuple(dict.fromkeys(DialMode(m) for m in modes))
    runs: dict[DialMode, list[OutboundRun]] = {m: [] for m in chosen}
    done = 0
    for i in range(replications):
        for mode in chosen:
            contacts = ContactList(scenario, f"{seed}/{i}")
            runs[mode].append(run_outbound(scenario, mode, contacts))
            done += 1
            if progress is not None:
                progress(done)
    return OutboundComparison(scenario, replications, seed, {m: tuple(r) for m, r in runs.items()})
