"""Contact-center statistics computed from the append-only event log.

The live wallboard and the historical reports read the same log through the same definitions, so a
restarted server recomputes exactly the figures it showed before (there are no counters to lose).
``docs/metrics.md`` explains every figure for supervisors; this module is its executable form.

How the log is read
-------------------
Each interaction's events are folded into *queue visits*. A visit starts with the first ``queued``
for a queue and ends with one outcome: answered (``connected``), abandoned, overflowed (to another
queue), transferred, failed, or still waiting. A repeated ``queued`` for the same queue while waiting
(an offer was rejected and the contact went back) does not start a new visit: the wait counts from
the first one. Visits linked by overflow form one *contact*: grouped by queue, every visit counts in
its queue (the second queue sees an "overflowed in" contact with its own wait); grouped by channel,
project or overall, the contact counts once, from the moment it first entered a queue. A supervisor's
move of a waiting contact to another queue (``transferred`` with ``to_queue_id``) links visits the same
way; one to a named agent of the same queue (``to_queue_id`` unchanged) does not end the visit.

Every figure of a visit is credited to the interval in which the contact entered the queue (the
visit for queue reports, the contact otherwise), never to the interval of the answer or hang-up, so a
15-minute row answers "of the contacts that arrived in this quarter hour, how were they served".
Agent time (occupancy, utilization) is clock time and is split across the intervals it spans.

Two ways to compute, one result
-------------------------------
:func:`compute_report` folds a list of events in one go; :class:`MetricsAccumulator` applies events as
they happen (``add``) and can report at any moment. Both derive a visit's contribution from the same
pure function of the visit's state; the accumulator subtracts the old contribution and adds the new
one on each event, so the two agree by construction (and a property test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, Literal, TypeAlias

from frontoffice.domain.model import InteractionEventType as Ev

__all__ = [
    "AGENT_STATES",
    "DEFAULT_INTERVAL_S",
    "DEFAULT_SHORT_ABANDON_S",
    "DEFAULT_SL_THRESHOLD_S",
    "GROUP_BY_VALUES",
    "SL_VARIANTS",
    "AgentStateRecord",
    "Figures",
    "GroupBy",
    "GroupKey",
    "InteractionEventRecord",
    "LiveQueueFigures",
    "MetricsAccumulator",
    "MetricsError",
    "Report",
    "ReportRow",
    "SLVariant",
    "compute_live_queue_figures",
    "compute_report",
    "local_day_start",
]

# Industry-standard reporting interval (and what WFM forecasts use): 15 minutes.
DEFAULT_INTERVAL_S: Final = 900
# The classic "80/20" service-level target measures answers within 20 seconds.
DEFAULT_SL_THRESHOLD_S: Final = 20
# Callers who hang up within a few seconds usually misdialled or changed their mind while the
# greeting played; counting them would punish the queue for something no staffing could fix.
DEFAULT_SHORT_ABANDON_S: Final = 5

GroupBy: TypeAlias = Literal["queue", "agent", "channel", "project", "overall"]
SLVariant: TypeAlias = Literal["default", "asterisk_sl", "asterisk_sl2"]
GroupKey: TypeAlias = int | str | None
GROUP_BY_VALUES: Final = ("queue", "agent", "channel", "project", "overall")
SL_VARIANTS: Final = ("default", "asterisk_sl", "asterisk_sl2")
AGENT_STATES: Final = ("offline", "available", "not_ready", "on_contact", "wrap_up")

_US: Final = timedelta(microseconds=1)
_HANDLING_STATES: Final = frozenset({"on_contact", "wrap_up"})


def local_day_start(now: datetime, zone: tzinfo) -> datetime:
    """The start of ``now``'s day in the site's time zone: where "today" begins for the wallboard,
    the live figures and the agents' contacts-today count."""
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class MetricsError(ValueError):
    """Invalid report parameters (naive datetimes, unknown grouping, non-positive interval...)."""

    error_id = "invalid-report-parameters"


@dataclass(frozen=True, slots=True)
class InteractionEventRecord:
    """One row of the interaction event log, as statistics need it.

    ``type`` is a value of :class:`frontoffice.domain.model.InteractionEventType`; unknown types are
    ignored. ``data`` may carry ``{"hold_s": float}`` on ``wrap_up`` and ``{"to_queue_id": int}`` on
    ``overflowed``.
    """

    interaction_id: int
    at: datetime
    type: str
    queue_id: int | None = None
    agent_id: int | None = None
    project_id: int | None = None
    channel: str = ""
    data: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class AgentStateRecord:
    """An agent entered ``state`` (one of :data:`AGENT_STATES`) at ``at``; lasts until the next record."""

    agent_id: int
    at: datetime
    state: str
    reason: str | None = None


# --- per-interaction fold ---------------------------------------------------------------------------


class _Visit:
    """One stay of an interaction in one queue (or a direct, unqueued handling by an agent)."""

    __slots__ = (
        "abandon_agents",
        "agent_id",
        "chain_start",
        "channel",
        "connected_at",
        "direct",
        "done_at",
        "entered",
        "handled",
        "hold_us",
        "moved_in",
        "offer_agents",
        "offers",
        "outcome",
        "outcome_at",
        "overflow_in",
        "project_id",
        "queue_id",
        "start",
        "talk_end_at",
        "transferred",
    )

    def __init__(
        self,
        *,
        queue_id: int | None,
        channel: str,
        project_id: int | None,
        start: datetime,
        chain_start: datetime,
        overflow_in: bool = False,
        moved_in: bool = False,
        direct: bool = False,
        entered: bool = True,
    ) -> None:
        self.queue_id = queue_id
        self.channel = channel
        self.project_id = project_id
        self.start = start  # entered the queue (or was connected, for a direct visit)
        self.chain_start = chain_start  # the contact first entered a queue (before any overflow)
        self.overflow_in = overflow_in
        self.moved_in = moved_in  # moved here from another queue while waiting (a supervisor's move)
        self.direct = direct
        # False for a contact the queue turned away at its door (closed, full, no agents): it never
        # entered the queue, so it is not offered there.
        self.entered = entered
        # answered, abandoned, overflowed, transferred, failed, turned_away
        self.outcome: str | None = None
        self.outcome_at: datetime | None = None
        self.offers: list[list[object]] = []  # [agent_id, "offered" | "rejected" | "timed_out"]
        # Agents the contact is ringing at now (several for a ring-all offer), and those it was ringing
        # at when the customer left (an abandon counts against each of them).
        self.offer_agents: tuple[int, ...] = ()
        self.abandon_agents: tuple[int, ...] = ()
        self.agent_id: int | None = None
        self.connected_at: datetime | None = None
        self.talk_end_at: datetime | None = None
        self.hold_us = 0
        self.done_at: datetime | None = None
        self.handled = False
        self.transferred = False

    @property
    def waiting(self) -> bool:
        return not self.direct and self.outcome is None

    @property
    def talking(self) -> bool:
        return self.connected_at is not None and not self.handled


class _Interaction:
    __slots__ = ("channel", "current", "pending_move", "pending_overflow", "project_id")

    def __init__(self) -> None:
        self.channel = ""
        self.project_id: int | None = None
        self.current: _Visit | None = None
        self.pending_overflow = False  # last visit overflowed; the next queued continues the contact
        self.pending_move = False  # last visit was moved to another queue; the same


def _hold_us(data: Mapping[str, object]) -> int:
    value = data.get("hold_s")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return round(value * 1_000_000)
        except (OverflowError, ValueError):
            return 0
    return 0


def _agents_of(e: InteractionEventRecord, key: str) -> tuple[int, ...]:
    """The agents an offer event concerns. The ACD names them in the event's data (``agent_ids`` for
    an offer, its time-out or withdrawal, ``rejected_by`` for a rejection): a ring-all offer rings
    several agents at once, so the event's agent column (the contact's agent) is empty then."""
    value = e.data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(a for a in value if isinstance(a, int) and not isinstance(a, bool))
    return () if e.agent_id is None else (e.agent_id,)


def _queue_of(e: InteractionEventRecord) -> int | None:
    """The queue a refusal or fallback concerns: named in the event's data by the ACD (after an
    overflow it is not the interaction's first queue), else the event's queue column."""
    value = e.data.get("queue_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return e.queue_id


class _Tracker:
    """Folds events into visits. Shared by the batch and the incremental computations."""

    def __init__(self) -> None:
        self.interactions: dict[int, _Interaction] = {}

    def current(self, interaction_id: int) -> _Visit | None:
        state = self.interactions.get(interaction_id)
        return state.current if state is not None else None

    def apply(self, e: InteractionEventRecord) -> _Visit | None:
        """Apply one event; return a visit created by it (the previous one may have changed too)."""
        state = self.interactions.get(e.interaction_id)
        if state is None:
            state = self.interactions[e.interaction_id] = _Interaction()
        if e.channel and not state.channel:
            state.channel = e.channel
        if e.project_id is not None:
            state.project_id = e.project_id
        cur = state.current
        kind = e.type
        created: _Visit | None = None

        if kind == Ev.QUEUED:
            if cur is not None and cur.waiting and cur.queue_id == e.queue_id:
                return None  # back in the same queue (e.g. after a rejected offer): keep the first time
            chain_start = e.at
            overflow_in = moved_in = False
            if cur is not None and cur.waiting:
                # Moved to another queue without an explicit "overflowed": same thing.
                cur.outcome, cur.outcome_at = "overflowed", e.at
                chain_start, overflow_in = cur.chain_start, True
            elif cur is not None and (state.pending_overflow or state.pending_move):
                chain_start = cur.chain_start
                overflow_in, moved_in = state.pending_overflow, state.pending_move
            elif cur is not None and cur.talking:
                # Re-queued while connected without a "transferred" event: the agent's part ended.
                cur.talk_end_at = cur.talk_end_at or e.at
                cur.handled = cur.transferred = True
            state.pending_overflow = state.pending_move = False
            created = _Visit(
                queue_id=e.queue_id,
                channel=state.channel,
                project_id=state.project_id,
                start=e.at,
                chain_start=chain_start,
                overflow_in=overflow_in,
                moved_in=moved_in,
            )
            state.current = created
        elif kind in (Ev.REFUSED, Ev.FALLBACK):
            # Turned away: refused, or handed to the queue's fallback action (voicemail, callback...).
            if cur is not None and cur.waiting:
                cur.outcome, cur.outcome_at = "turned_away", e.at  # at its maximum wait
            else:
                chained = cur is not None and (state.pending_overflow or state.pending_move)
                created = _Visit(
                    queue_id=_queue_of(e),
                    channel=state.channel,
                    project_id=state.project_id,
                    start=e.at,
                    chain_start=cur.chain_start if chained and cur is not None else e.at,
                    overflow_in=chained and state.pending_overflow,
                    moved_in=chained and state.pending_move,
                    entered=False,
                )
                created.outcome, created.outcome_at = "turned_away", e.at
                state.pending_overflow = state.pending_move = False
                state.current = created
        elif cur is None:
            if kind == Ev.CONNECTED:
                created = state.current = self._direct(state, e)
        elif kind == Ev.OFFERED:
            if cur.waiting:
                agents = _agents_of(e, "agent_ids")
                cur.offers.extend([agent, "offered"] for agent in agents)
                cur.offer_agents = agents
        elif kind in (Ev.OFFER_REJECTED, Ev.OFFER_TIMED_OUT, Ev.OFFER_WITHDRAWN):
            if cur.waiting:
                key = "rejected_by" if kind == Ev.OFFER_REJECTED else "agent_ids"
                ended = _agents_of(e, key)
                if kind != Ev.OFFER_WITHDRAWN:
                    result = "rejected" if kind == Ev.OFFER_REJECTED else "timed_out"
                    for agent in ended or cur.offer_agents:
                        for offer in reversed(cur.offers):
                            if offer[1] == "offered" and offer[0] == agent:
                                offer[1] = result
                                break
                # Without agents named (an old log), the whole offer ended.
                cur.offer_agents = tuple(a for a in cur.offer_agents if ended and a not in ended)
        elif kind == Ev.CONNECTED:
            if cur.waiting:
                cur.outcome, cur.outcome_at = "answered", e.at
                if e.agent_id is not None:
                    cur.agent_id = e.agent_id
                elif len(cur.offer_agents) == 1:
                    cur.agent_id = cur.offer_agents[0]
                cur.connected_at = e.at
            elif not cur.talking:
                # An unqueued contact (outbound call, agent-initiated email) handled directly.
                state.pending_overflow = state.pending_move = False
                created = state.current = self._direct(state, e)
        elif kind == Ev.WRAP_UP:
            if cur.talking and cur.talk_end_at is None:
                cur.talk_end_at = e.at
                cur.hold_us = _hold_us(e.data)
        elif kind == Ev.DONE:
            if cur.talking:
                cur.talk_end_at = cur.talk_end_at or e.at
                cur.done_at = e.at
                cur.handled = True
        elif kind in (Ev.ABANDONED, Ev.FAILED):
            if cur.waiting:
                cur.outcome = "abandoned" if kind == Ev.ABANDONED else "failed"
                cur.outcome_at = e.at
                cur.abandon_agents = cur.offer_agents
        elif kind == Ev.OVERFLOWED:
            if cur.waiting:
                cur.outcome, cur.outcome_at = "overflowed", e.at
                state.pending_overflow = True
        elif kind == Ev.TRANSFERRED:
            if cur.waiting:
                to_queue = e.data.get("to_queue_id")
                if to_queue is not None and to_queue == cur.queue_id:
                    return None  # reserved for an agent of the same queue: still waiting in it
                # Moved to another queue while waiting: the contact goes on there, as after an overflow.
                cur.outcome, cur.outcome_at = "transferred", e.at
                cur.transferred = True
                state.pending_move = to_queue is not None
            elif cur.talking:
                cur.talk_end_at = cur.talk_end_at or e.at
                cur.handled = cur.transferred = True
        return created

    @staticmethod
    def _direct(state: _Interaction, e: InteractionEventRecord) -> _Visit:
        visit = _Visit(
            queue_id=e.queue_id,
            channel=state.channel,
            project_id=state.project_id,
            start=e.at,
            chain_start=e.at,
            direct=True,
        )
        visit.outcome = "direct"
        visit.agent_id = e.agent_id
        visit.connected_at = e.at
        return visit


# --- aggregation ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    """Integer sums (durations in microseconds, so any summation order gives the same result)."""

    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    abandoned_within: int = 0
    overflowed_in: int = 0
    overflowed_out: int = 0
    transferred: int = 0
    failed: int = 0
    turned_away: int = 0
    handled: int = 0
    offers: int = 0
    offers_rejected: int = 0
    offers_timed_out: int = 0
    wait_answered_us: int = 0
    talk_us: int = 0
    hold_us: int = 0
    wrap_us: int = 0
    handling_us: int = 0
    available_us: int = 0
    not_ready_us: int = 0
    logged_in_us: int = 0
    longest_wait_us: int = -1  # -1: no answered or abandoned contact yet

    def add(self, other: _Counts, sign: int = 1) -> None:
        # Replaced below by straight-line code for the same fields (the live statistics run it a few
        # times per event; a getattr/setattr loop over twenty fields was most of their cost).
        for name in _SUMMED_FIELDS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        if sign > 0:
            # A visit's longest wait appears once, with its outcome, and never changes afterwards,
            # so the maximum never needs to be "subtracted".
            self.longest_wait_us = max(self.longest_wait_us, other.longest_wait_us)

    def is_empty(self) -> bool:
        return self.longest_wait_us < 0 and all(getattr(self, name) == 0 for name in _SUMMED_FIELDS)


_SUMMED_FIELDS: Final = tuple(f.name for f in fields(_Counts) if f.name != "longest_wait_us")


def _compile_add() -> None:
    """Give ``_Counts.add`` a body without the loop: one statement per summed field."""
    lines = ["def add(self, other, sign=1):"]
    lines += [f"    self.{name} += sign * other.{name}" for name in _SUMMED_FIELDS]
    lines += ["    if sign > 0 and other.longest_wait_us > self.longest_wait_us:"]
    lines += ["        self.longest_wait_us = other.longest_wait_us"]
    namespace: dict[str, Callable[[_Counts, _Counts, int], None]] = {}
    exec("\n".join(lines), namespace)  # the text names only the dataclass's own fields
    _Counts.add = namespace["add"]  # type: ignore[method-assign,assignment]


_compile_add()


_Cell: TypeAlias = tuple[GroupKey, datetime]


@dataclass(frozen=True, slots=True)
class _Params:
    start: datetime
    end: datetime | None
    interval: timedelta | None
    group_by: str
    sl_us: int
    short_us: int
    variant: str

    def bucket(self, t: datetime) -> datetime | None:
        if t < self.start or (self.end is not None and t >= self.end):
            return None
        if self.interval is None:
            return self.start
        return self.start + ((t - self.start) // self.interval) * self.interval


def _make_params(
    start: datetime,
    end: datetime | None,
    interval_s: int | None,
    group_by: str,
    sl_threshold_s: float,
    short_abandon_s: float,
    sl_variant: str,
) -> _Params:
    for name, value in (("start", start), ("end", end)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise MetricsError(f"{name} must be timezone-aware")
    if end is not None and end <= start:
        raise MetricsError("end must be after start")
    if interval_s is not None and interval_s <= 0:
        raise MetricsError("interval_s must be positive (or None for the whole range)")
    if group_by not in GROUP_BY_VALUES:
        raise MetricsError(f"group_by must be one of {', '.join(GROUP_BY_VALUES)}")
    if sl_variant not in SL_VARIANTS:
        raise MetricsError(f"sl_variant must be one of {', '.join(SL_VARIANTS)}")
    if sl_threshold_s < 0 or short_abandon_s < 0:
        raise MetricsError("thresholds must not be negative")
    return _Params(
        start=start.astimezone(UTC),  # bucket arithmetic must be absolute time, not wall-clock
        end=end.astimezone(UTC) if end is not None else None,
        interval=timedelta(seconds=interval_s) if interval_s is not None else None,
        group_by=group_by,
        sl_us=round(sl_threshold_s * 1_000_000),
        short_us=round(short_abandon_s * 1_000_000),
        variant=sl_variant,
    )


def _visit_cells(v: _Visit, p: _Params) -> dict[_Cell, _Counts]:
    """Everything one visit contributes to the report, as a pure function of its current state."""
    group = p.group_by
    entry = v.start if (group == "queue" or v.direct) else v.chain_start
    bucket = p.bucket(entry)
    cells: dict[_Cell, _Counts] = {}
    if bucket is None:
        return cells

    def cell(key: GroupKey) -> _Counts:
        found = cells.get((key, bucket))
        if found is None:
            found = cells[(key, bucket)] = _Counts()
        return found

    key: GroupKey
    if group == "agent":
        for agent, result in v.offers:
            if isinstance(agent, int):
                c = cell(agent)
                c.offers += 1
                c.offered += 1
                c.offers_rejected += result == "rejected"
                c.offers_timed_out += result == "timed_out"
        outcome_keys: tuple[GroupKey, ...] = (
            v.abandon_agents
            if v.outcome == "abandoned"
            else ((v.agent_id,) if v.agent_id is not None else ())
        )
    else:
        key = {"queue": v.queue_id, "channel": v.channel, "project": v.project_id}.get(group)
        c = cell(key)
        if not v.direct and v.entered and (group == "queue" or not (v.overflow_in or v.moved_in)):
            c.offered += 1
        c.turned_away += v.outcome == "turned_away"
        # The offers made to agents for the contact while in this group (ring-all: one per agent).
        for _agent, result in v.offers:
            c.offers += 1
            c.offers_rejected += result == "rejected"
            c.offers_timed_out += result == "timed_out"
        c.overflowed_in += v.overflow_in
        c.overflowed_out += v.outcome == "overflowed"
        c.failed += v.outcome == "failed"
        if v.outcome == "transferred":
            c.transferred += 1
        outcome_keys = (key,)

    if v.outcome_at is not None and v.outcome in ("answered", "abandoned"):
        wait = (v.outcome_at - entry) // _US
        for outcome_key in outcome_keys:
            c = cell(outcome_key)
            c.longest_wait_us = max(c.longest_wait_us, wait)
            if v.outcome == "answered":
                c.answered += 1
                c.answered_within += wait <= p.sl_us
                c.wait_answered_us += wait
            else:
                c.abandoned += 1
                c.short_abandoned += wait < p.short_us
                c.abandoned_within += wait <= p.sl_us

    if v.handled and v.connected_at is not None and v.talk_end_at is not None:
        handler: GroupKey = v.agent_id if group == "agent" else outcome_keys[0]
        if group != "agent" or handler is not None:
            c = cell(handler)
            c.handled += 1
            elapsed = max(0, (v.talk_end_at - v.connected_at) // _US)
            hold = min(v.hold_us, elapsed)
            c.talk_us += elapsed - hold  # talk excludes hold: AHT = talk + hold + wrap-up
            c.hold_us += hold
            if v.done_at is not None:
                c.wrap_us += max(0, (v.done_at - v.talk_end_at) // _US)
            if group == "agent" and v.transferred:
                c.transferred += 1
    return {k: c for k, c in cells.items() if not c.is_empty()}


def _agent_span_cells(
    agent_id: int, state: str, a: datetime, b: datetime, p: _Params, cutoff: datetime | None
) -> dict[_Cell, _Counts]:
    """Agent time in ``state`` over ``[a, b)``, clipped to the report range and split into intervals."""
    cells: dict[_Cell, _Counts] = {}
    if p.group_by not in ("agent", "overall") or state == "offline":
        return cells
    key: GroupKey = agent_id if p.group_by == "agent" else None
    lo = max(a, p.start)
    hi = b
    for limit in (p.end, cutoff):
        if limit is not None:
            hi = min(hi, limit)
    while lo < hi:
        bucket = p.bucket(lo)
        if bucket is None:
            break
        bucket_end = bucket + p.interval if p.interval is not None else hi
        piece_end = min(hi, bucket_end)
        us = (piece_end - lo) // _US
        c = cells.setdefault((key, bucket), _Counts())
        c.logged_in_us += us
        if state in _HANDLING_STATES:
            c.handling_us += us
        elif state == "available":
            c.available_us += us
        else:  # not_ready, and any state this version does not know: logged in, not productive
            c.not_ready_us += us
        lo = piece_end
    return cells


def _merge_into(target: dict[_Cell, _Counts], cells: Mapping[_Cell, _Counts], sign: int = 1) -> None:
    for cell_key, counts in cells.items():
        existing = target.get(cell_key)
        if existing is None:
            existing = target[cell_key] = _Counts()
        existing.add(counts, sign)


# --- public results ---------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _seconds(us: int) -> float:
    return us / 1_000_000


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one group in one interval. Ratios are 0..1; None when the denominator is 0.

    See ``docs/metrics.md`` for definitions. Totals (``*_s`` without ``avg``) are sums in seconds so
    rows can be re-aggregated; ``service_level`` follows the report's ``sl_variant``.
    """

    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    abandoned_within_threshold: int
    overflowed_in: int
    overflowed_out: int
    transferred: int
    failed: int
    turned_away: int
    handled: int
    offers: int
    offers_rejected: int
    offers_timed_out: int
    wait_answered_s: float
    longest_wait_s: float | None
    talk_s: float
    hold_s: float
    wrap_up_s: float
    handling_s: float
    available_s: float
    not_ready_s: float
    logged_in_s: float
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandonment_rate: float | None
    occupancy: float | None
    utilization: float | None


def _service_level(c: _Counts, variant: str) -> float | None:
    if variant == "asterisk_sl":
        return _ratio(c.answered_within, c.answered + c.abandoned)
    if variant == "asterisk_sl2":
        return _ratio(c.answered_within + c.abandoned_within, c.answered + c.abandoned)
    return _ratio(c.answered_within, c.answered + c.abandoned - c.short_abandoned)


def _figures(c: _Counts, variant: str) -> Figures:
    handle_us = c.talk_us + c.hold_us + c.wrap_us
    return Figures(
        offered=c.offered,
        answered=c.answered,
        answered_within_threshold=c.answered_within,
        abandoned=c.abandoned,
        short_abandoned=c.short_abandoned,
        abandoned_within_threshold=c.abandoned_within,
        overflowed_in=c.overflowed_in,
        overflowed_out=c.overflowed_out,
        transferred=c.transferred,
        failed=c.failed,
        turned_away=c.turned_away,
        handled=c.handled,
        offers=c.offers,
        offers_rejected=c.offers_rejected,
        offers_timed_out=c.offers_timed_out,
        wait_answered_s=_seconds(c.wait_answered_us),
        longest_wait_s=_seconds(c.longest_wait_us) if c.longest_wait_us >= 0 else None,
        talk_s=_seconds(c.talk_us),
        hold_s=_seconds(c.hold_us),
        wrap_up_s=_seconds(c.wrap_us),
        handling_s=_seconds(c.handling_us),
        available_s=_seconds(c.available_us),
        not_ready_s=_seconds(c.not_ready_us),
        logged_in_s=_seconds(c.logged_in_us),
        service_level=_service_level(c, variant),
        asa_s=_seconds(c.wait_answered_us) / c.answered if c.answered else None,
        aht_s=_seconds(handle_us) / c.handled if c.handled else None,
        abandonment_rate=_ratio(c.abandoned - c.short_abandoned, c.offered - c.short_abandoned),
        occupancy=_ratio(c.handling_us, c.handling_us + c.available_us),
        utilization=_ratio(c.handling_us, c.logged_in_us),
    )


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One group (``key``: queue id, agent id, channel, project id, or None for overall) in one interval."""

    key: GroupKey
    interval_start: datetime
    interval_end: datetime
    figures: Figures


@dataclass(frozen=True, slots=True)
class Report:
    """Rows sorted by interval, then key. Only intervals and groups with any activity have a row."""

    start: datetime
    end: datetime
    interval_s: int | None
    group_by: str
    sl_threshold_s: float
    short_abandon_s: float
    sl_variant: str
    rows: tuple[ReportRow, ...]


@dataclass(frozen=True, slots=True)
class LiveQueueFigures:
    """A queue's wallboard tile: now, and since the start of the day (``since``)."""

    queue_id: int
    waiting: int
    longest_current_wait_s: float | None
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    service_level: float | None
    asa_s: float | None
    longest_wait_s: float | None
    turned_away: int = 0
    offers: int = 0
    # Contacts that left for another queue (overflow; a supervisor's move: transferred) or came in
    # by overflow, as in reports grouped by queue.
    overflowed_in: int = 0
    overflowed_out: int = 0
    transferred: int = 0
    # Contacts that failed while waiting (lost with the voice node that held the call, ...): not
    # abandoned by the customer.
    failed: int = 0


def _key_order(key: GroupKey) -> tuple[int, int, str]:
    if key is None:
        return (0, 0, "")
    if isinstance(key, int):
        return (1, key, "")
    return (2, 0, key)


def _build_report(
    cells: Mapping[_Cell, _Counts],
    p: _Params,
    end: datetime,
    interval_s: int | None,
    sl_threshold_s: float,
    short_abandon_s: float,
) -> Report:
    rows = []
    for (key, bucket), counts in sorted(cells.items(), key=lambda item: (item[0][1], _key_order(item[0][0]))):
        if counts.is_empty():
            continue
        interval_end = min(bucket + p.interval, end) if p.interval is not None else end
        rows.append(ReportRow(key, bucket, interval_end, _figures(counts, p.variant)))
    return Report(
        start=p.start,
        end=end,
        interval_s=interval_s,
        group_by=p.group_by,
        sl_threshold_s=sl_threshold_s,
        short_abandon_s=short_abandon_s,
        sl_variant=p.variant,
        rows=tuple(rows),
    )


# --- incremental ------------------------------------------------------------------------------------


class MetricsAccumulator:
    """Applies log events one at a time and reports at any moment (the live wallboard's engine).

    Feed events in log order (``add``) and agent state changes (``add_agent_state``). With ``end``
    None the range is open, and :meth:`report` needs ``now``. Memory is proportional to the number of
    interactions and the number of (group, interval) cells, not to the number of events.
    """

    def __init__(
        self,
        *,
        start: datetime,
        end: datetime | None = None,
        interval_s: int | None = DEFAULT_INTERVAL_S,
        group_by: GroupBy = "queue",
        sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
        short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
        sl_variant: SLVariant = "default",
    ) -> None:
        self._params = _make_params(
            start, end, interval_s, group_by, sl_threshold_s, short_abandon_s, sl_variant
        )
        self._interval_s = interval_s
        self._sl_threshold_s = sl_threshold_s
        self._short_abandon_s = short_abandon_s
        self._tracker = _Tracker()
        self._cells: dict[_Cell, _Counts] = {}
        # queue id -> interaction id -> time the current visit entered the queue
        self._waiting: dict[int | None, dict[int, datetime]] = {}
        self._agents: dict[int, tuple[str, datetime]] = {}

    def add(self, event: InteractionEventRecord) -> None:
        """Apply one interaction event."""
        p = self._params
        before_visit = self._tracker.current(event.interaction_id)
        before = _visit_cells(before_visit, p) if before_visit is not None else {}
        was_waiting = before_visit is not None and before_visit.waiting
        created = self._tracker.apply(event)
        if before_visit is not None:
            _merge_into(self._cells, before, -1)
            _merge_into(self._cells, _visit_cells(before_visit, p))
            if was_waiting and not before_visit.waiting:
                self._waiting.get(before_visit.queue_id, {}).pop(event.interaction_id, None)
        if created is not None:
            _merge_into(self._cells, _visit_cells(created, p))
            if created.waiting:
                self._waiting.setdefault(created.queue_id, {})[event.interaction_id] = created.start

    def add_many(self, events: Iterable[InteractionEventRecord]) -> None:
        """Apply events in the given order."""
        for event in events:
            self.add(event)

    def add_agent_state(self, record: AgentStateRecord) -> None:
        """Apply one agent state change; the previous state's time is counted up to ``record.at``."""
        previous = self._agents.get(record.agent_id)
        if previous is not None:
            state, since = previous
            if record.at > since:
                _merge_into(
                    self._cells,
                    _agent_span_cells(record.agent_id, state, since, record.at, self._params, None),
                )
        if previous is None or record.at >= previous[1]:
            self._agents[record.agent_id] = (record.state, record.at)

    def report(self, now: datetime | None = None) -> Report:
        """The report so far. Agents' current states are counted up to ``now`` (or ``end``)."""
        p = self._params
        end = p.end
        if end is None:
            if now is None:
                raise MetricsError("report() needs now when the accumulator has no end")
            end = now.astimezone(UTC)
        cutoff = min(end, now) if now is not None else end
        cells: dict[_Cell, _Counts] = {}
        _merge_into(cells, self._cells)
        for agent_id, (state, since) in self._agents.items():
            _merge_into(cells, _agent_span_cells(agent_id, state, since, cutoff, p, cutoff))
        return _build_report(cells, p, end, self._interval_s, self._sl_threshold_s, self._short_abandon_s)

    def live_queue_figures(self, now: datetime) -> dict[int, LiveQueueFigures]:
        """Per queue: waiting now, longest current wait, and today's figures (needs group_by="queue")."""
        p = self._params
        if p.group_by != "queue":
            raise MetricsError('live queue figures need group_by="queue"')
        totals: dict[int, _Counts] = {}
        for (key, _bucket), counts in self._cells.items():
            if isinstance(key, int):
                totals.setdefault(key, _Counts()).add(counts)
        queues = set(totals) | {q for q, waiting in self._waiting.items() if isinstance(q, int) and waiting}
        result: dict[int, LiveQueueFigures] = {}
        for queue_id in sorted(queues):
            counts = totals.get(queue_id, _Counts())
            waiting = self._waiting.get(queue_id, {})
            oldest = min(waiting.values(), default=None)
            figures = _figures(counts, p.variant)
            result[queue_id] = LiveQueueFigures(
                queue_id=queue_id,
                waiting=len(waiting),
                longest_current_wait_s=max(0.0, _seconds((now - oldest) // _US)) if oldest else None,
                offered=figures.offered,
                answered=figures.answered,
                abandoned=figures.abandoned,
                short_abandoned=figures.short_abandoned,
                service_level=figures.service_level,
                asa_s=figures.asa_s,
                longest_wait_s=figures.longest_wait_s,
                turned_away=figures.turned_away,
                offers=figures.offers,
                overflowed_in=figures.overflowed_in,
                overflowed_out=figures.overflowed_out,
                transferred=figures.transferred,
                failed=figures.failed,
            )
        return result


# --- batch ------------------------------------------------------------------------------------------


def _sorted_by_time(records: Iterable[InteractionEventRecord]) -> list[InteractionEventRecord]:
    # Stable: events with the same timestamp keep their log order.
    return sorted(records, key=lambda r: r.at)


def compute_report(
    events: Iterable[InteractionEventRecord],
    agent_states: Iterable[AgentStateRecord] = (),
    *,
    start: datetime,
    end: datetime,
    interval_s: int | None = DEFAULT_INTERVAL_S,
    group_by: GroupBy = "queue",
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
    sl_variant: SLVariant = "default",
    now: datetime | None = None,
) -> Report:
    """Statistics for ``[start, end)`` in intervals of ``interval_s`` seconds (None: one row per group).

    ``events`` should include events before ``start`` for contacts still in progress at ``start``
    (they are needed to know the state, and are not counted); they are processed in time order, ties
    in the given order. ``agent_states`` should include each agent's last record before ``start``.
    Agent states still open are counted up to ``end`` or ``now``, whichever is earlier.
    """
    p = _make_params(start, end, interval_s, group_by, sl_threshold_s, short_abandon_s, sl_variant)
    assert p.end is not None
    tracker = _Tracker()
    visits: list[_Visit] = []
    for event in _sorted_by_time(events):
        created = tracker.apply(event)
        if created is not None:
            visits.append(created)
    cells: dict[_Cell, _Counts] = {}
    for visit in visits:
        _merge_into(cells, _visit_cells(visit, p))
    cutoff = min(p.end, now.astimezone(UTC)) if now is not None else p.end
    by_agent: dict[int, list[AgentStateRecord]] = {}
    for record in sorted(agent_states, key=lambda r: r.at):
        by_agent.setdefault(record.agent_id, []).append(record)
    for agent_id, records in by_agent.items():
        for current, following in zip(records, [*records[1:], None], strict=True):
            until = following.at if following is not None else cutoff
            if until > current.at:
                # Closed spans are clipped only to the range, open ones also to ``now``.
                limit = cutoff if following is None else None
                _merge_into(cells, _agent_span_cells(agent_id, current.state, current.at, until, p, limit))
    return _build_report(cells, p, p.end, interval_s, sl_threshold_s, short_abandon_s)


def compute_live_queue_figures(
    events: Iterable[InteractionEventRecord],
    *,
    since: datetime,
    now: datetime,
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
    sl_variant: SLVariant = "default",
) -> dict[int, LiveQueueFigures]:
    """The wallboard's per-queue figures, recomputed from the log (e.g. after a restart).

    Pass the events since the start of the day (``since``), and ``now``. Gives the same result as a
    :class:`MetricsAccumulator` that was fed the same events as they happened.
    """
    accumulator = MetricsAccumulator(
        start=since,
        interval_s=None,
        group_by="queue",
        sl_threshold_s=sl_threshold_s,
        short_abandon_s=short_abandon_s,
        sl_variant=sl_variant,
    )
    accumulator.add_many(_sorted_by_time(events))
    return accumulator.live_queue_figures(now)
