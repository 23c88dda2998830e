"""The pacer: how many calls a campaign places now.

The live dialler (and the planning simulation) calls :meth:`Pacer.calls_to_place` whenever something
changed — an agent became free, a call ended — and on a steady tick (a second is plenty), with a
:class:`PacingSnapshot` of the campaign at that moment; it feeds back every result through the
``observe_*`` methods. The pacer holds only running statistics; it reads no clock.

The predictive model
--------------------

A call placed now is answered, if at all, about ``R`` seconds from now (``R``: the measured mean ring
time of answered calls), and may then wait :data:`ABANDON_AFTER_S` for an agent. Over that horizon
``H = R + 2 s``:

* **supply** — agents who will be free: the ready ones, plus each busy agent with the probability
  that it is free within ``H``: exactly 1 or 0 when its remaining time is known (a wrap-up with a
  fixed end), else ``P(wrap + residual talk <= H)`` with the residual talk taken as exponential with
  the measured mean (memoryless: exact for exponential talk times, a fair guess for others);
* **demand** — answered calls already waiting for an agent, plus each call still ringing times the
  chance that a call which has rung that long is answered, ``p·Sa(a) / (p·Sa(a) + (1-p)·Sn(a))``
  (``p``: the measured live-answer rate; ``Sa``, ``Sn``: the empirical survival functions of the ring
  times of answered and of other calls; when the snapshot gives no ring ages, the steady-stream
  average ``p·Ra / (p·Ra + (1-p)·Rn)`` by Little's law), plus ``p`` for each new call.

Measurements are unbiased against bursts: a call's outcome and ring time are counted only once every
call placed at the same moment has had the time to end (the ring timeout), so a burst's fast busy
signals do not read as a low answer rate; and the talk-time prior holds longer than the others,
because after a start the short calls end first.

Both are sums of independent Bernoulli trials, so the pacer places the largest number ``n`` of new
calls for which ``demand + z·σ <= supply`` (``σ²``: the sum of the trials' variances). The safety
factor ``z`` is tuned by a feedback controller on the abandon rate (a Robbins–Monro step per live
answered call: up by ``gain·(1-target)`` on an abandon, down by ``gain·target`` otherwise), so that
the long-run abandon rate settles at ``target`` = ``abandon_target`` × the cap. A second condition
guards the cap itself: ``demand + 4σ - supply`` may not exceed the abandons the day can still absorb
before reaching the cap (``k`` with ``(abandoned + k) / (answered + k) = cap``), so the calls in
flight can take the day over the cap only with a tiny chance; and while the day can absorb fewer
than 10 abandons, where counts are small and the normal tail too thin, also
``P(answers > agents sure to be free + spare) <= 1e-4`` with the answers taken as Poisson. With a
day's answers behind it neither binds; early in the day, in a small team or near the cap they do.
Predictive never places fewer calls than progressive would.

The cap
-------

The abandon rate (abandoned / live answered calls) is counted over the day (:meth:`Pacer.start_day`
resets it) and over a rolling window (``rolling_window_s``). :attr:`Pacer.effective_mode` is
``progressive`` (no call placed without a free agent for it, so no abandon) while the window's rate
is at or above the cap, or while one more abandon would put the day's rate above it — the day, the
regulators' measure, is judged one abandon ahead, so a day starts progressive until it has enough
live answers (about 33 at 3 %) to absorb one — and predictive again once both are back under.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .exceptions import DialerError
from .outcomes import ABANDON_AFTER_S, DEFAULT_ABANDON_CAP, CallOutcome, DialMode

__all__ = [
    "Pacer",
    "PacingSettings",
    "PacingSnapshot",
    "PacingStats",
]

# Bounds of the controller's safety factor: below -1 the pacer would plan on more answers than
# expected (nothing justifies that), above 4 it would almost never dial ahead.
_Z_MIN: Final = -1.0
_Z_MAX: Final = 4.0
# The answer chance of a ringing call by its age is tabulated in half seconds (far below the spread of
# ring times) and the table rebuilt after this many new ring times: cheap at every decision.
_AGE_STEP_S: Final = 0.5
_TABLE_REFRESH: Final = 25
# Shares compared with products of counts: absorb the rounding of cap × count (0.03 × 100).
_EPSILON: Final = 1e-9
# The cap's own guard: the answers in flight may exceed the free agents by as many abandons as the
# day can still absorb only with a tiny chance, judged as mean + _CAP_Z standard deviations. The
# normal approximation and the single horizon understate clusters (a burst of early answers while
# agents are still talking); in the planning simulation 3 still let about 6 % of small, 1 %-cap
# campaigns end an hour over their cap, 4 let none of 400. With a day's answers behind it the spare
# is tens of abandons and the guard never binds; early in the day, in small teams or near the cap it
# does.
_CAP_Z: Final = 4.0
# With little spare the counts are small and the normal tail far too thin (four answers from calls
# expected to give 0.4 happen about once in 1,500 moments, not once in 30,000), and answers may come
# before talking agents finish: there the answers are also held to a Poisson tail against the agents
# sure to be free, P(answers > sure agents + spare) <= _CAP_RISK.
_POISSON_SPARE: Final = 10.0
_CAP_RISK: Final = 1e-4
# Talk and wrap-up priors weigh this many times ``prior_weight`` (see Pacer.__init__).
_TALK_PRIOR_FACTOR: Final = 5


def _share(name: str, value: float, *, zero: bool, one: bool) -> None:
    low = value >= 0.0 if zero else value > 0.0
    high = value <= 1.0 if one else value < 1.0
    if not (low and high) or math.isnan(value):
        raise DialerError(f"{name} must be a share {'from 0' if zero else 'above 0'} to 1, got {value!r}")


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if not ((value >= 0.0 if zero else value > 0.0) and math.isfinite(value)):
        raise DialerError(f"{name} must be a finite number {'>= 0' if zero else '> 0'}, got {value!r}")


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """How a campaign paces its calls.

    * ``mode``: the campaign's dialling mode.
    * ``abandon_cap``: the highest share of live answered calls that may be abandoned, over the day and
      over the last ``rolling_window_s`` seconds (default 3 %, the regulators' ceiling).
    * ``abandon_target``: where the predictive controller aims, as a share of the cap (below 1 leaves
      room for chance before the cap forces progressive dialling).
    * ``max_concurrent_calls``: the campaign's own limit on its calls at once (ringing, answered and
      waiting, connected); required in notification mode, where it is the pace.
    * ``max_ringing_per_agent``: predictive ceiling on calls ringing per logged-in agent, a guard
      against a model gone wrong (a 5 % answer rate needs ~20 calls per free agent).
    * ``ring_timeout_s``: the dialler's ring timeout; an outcome is counted once the calls placed with
      it have all had the time to end (so a burst's fast busy signals do not read as a low answer
      rate).
    * ``answer_rate``, ``ring_s``, ``talk_s``, ``wrap_s``: what to assume before measurements come
      in; each counts as ``prior_weight`` observations and is forgotten as real ones arrive.
    * ``memory``: observations the running means keep (an exponential moving average over about that
      many), so the pacer follows the day's changes.
    * ``initial_z``, ``gain``: the controller's starting safety factor and step.
    """

    mode: DialMode = DialMode.PROGRESSIVE
    abandon_cap: float = DEFAULT_ABANDON_CAP
    rolling_window_s: float = 3600.0
    abandon_target: float = 0.7
    max_concurrent_calls: int | None = None
    max_ringing_per_agent: float = 25.0
    ring_timeout_s: float = 30.0
    answer_rate: float = 0.25
    ring_s: float = 20.0
    talk_s: float = 120.0
    wrap_s: float = 10.0
    prior_weight: int = 20
    memory: int = 500
    initial_z: float = 1.5
    gain: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", DialMode(self.mode))
        _share("abandon_cap", self.abandon_cap, zero=True, one=True)
        if self.abandon_cap > DEFAULT_ABANDON_CAP:
            raise DialerError(f"the abandon cap may not exceed {DEFAULT_ABANDON_CAP:.0%} (Ofcom, FTC)")
        _positive("rolling_window_s", self.rolling_window_s)
        _share("abandon_target", self.abandon_target, zero=False, one=True)
        if self.max_concurrent_calls is not None and self.max_concurrent_calls < 1:
            raise DialerError("max_concurrent_calls must be >= 1 (or None: no limit of the campaign's own)")
        if self.mode is DialMode.NOTIFICATION and self.max_concurrent_calls is None:
            raise DialerError("a notification campaign needs max_concurrent_calls: it is its pace")
        _positive("max_ringing_per_agent", self.max_ringing_per_agent)
        _share("answer_rate", self.answer_rate, zero=False, one=True)
        _positive("ring_s", self.ring_s)
        _positive("ring_timeout_s", self.ring_timeout_s)
        _positive("talk_s", self.talk_s)
        _positive("wrap_s", self.wrap_s, zero=True)
        if self.prior_weight < 1 or self.memory < self.prior_weight:
            raise DialerError("need 1 <= prior_weight <= memory")
        if not _Z_MIN <= self.initial_z <= _Z_MAX:
            raise DialerError(f"initial_z must be within {_Z_MIN}..{_Z_MAX}")
        _positive("gain", self.gain)


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """The campaign at one moment, as the dialler sees it.

    * ``now``: seconds (any epoch, never going backwards; the same clock as the ``observe_*`` calls);
    * ``agents_ready``: agents free for this campaign now;
    * ``agents_busy``: one entry per agent of the campaign on a call or in wrap-up: the seconds until
      it is free when known exactly (a wrap-up with a fixed end), else None;
    * ``calls_in_progress``: calls dialled and not yet answered nor ended;
    * ``calls_ringing_s``: optional, how long each of those calls has been ringing (predictive pacing
      is sharper with it: a call that has rung for 25 s is less likely to be answered than a fresh
      one). When given, ``calls_in_progress`` may be left 0: it is then the list's length;
    * ``answered_waiting``: calls answered and waiting for an agent (at most 2 s each);
    * ``calls_connected``: answered calls still on the line (with an agent, or hearing the message);
    * ``trunk_free``: lines still free on the campaign's trunk (None: no limit known).
    """

    now: float
    agents_ready: int = 0
    agents_busy: Sequence[float | None] = ()
    calls_in_progress: int = 0
    calls_ringing_s: Sequence[float] = ()
    answered_waiting: int = 0
    calls_connected: int = 0
    trunk_free: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.now):
            raise DialerError(f"now must be a finite time, got {self.now!r}")
        if self.calls_ringing_s:
            if self.calls_in_progress == 0:
                object.__setattr__(self, "calls_in_progress", len(self.calls_ringing_s))
            elif self.calls_in_progress != len(self.calls_ringing_s):
                raise DialerError("calls_ringing_s needs one entry per call in progress")
            for age in self.calls_ringing_s:
                if not (age >= 0.0 and math.isfinite(age)):
                    raise DialerError(f"a call's ringing time must be >= 0 s, got {age!r}")
        for name in ("agents_ready", "calls_in_progress", "answered_waiting", "calls_connected"):
            if getattr(self, name) < 0:
                raise DialerError(f"{name} must be >= 0")
        if self.trunk_free is not None and self.trunk_free < 0:
            raise DialerError("trunk_free must be >= 0")
        for remaining in self.agents_busy:
            if remaining is not None and not (remaining >= 0.0 and math.isfinite(remaining)):
                raise DialerError(f"a busy agent's remaining time must be >= 0 s, got {remaining!r}")


@dataclass(frozen=True, slots=True)
class PacingStats:
    """What the pacer has measured (for the supervisor's campaign view and the simulation)."""

    effective_mode: DialMode
    answer_rate: float
    ring_answered_s: float
    ring_other_s: float
    talk_s: float
    wrap_s: float
    answered_today: int
    abandoned_today: int
    abandon_rate_today: float
    answered_window: int
    abandoned_window: int
    abandon_rate_window: float
    safety_z: float


@dataclass(slots=True)
class _RunningMean:
    """A mean that starts at a prior worth ``weight`` observations and then forgets slowly: an
    exponential moving average over about ``memory`` observations."""

    value: float
    weight: float
    memory: float

    def add(self, x: float) -> None:
        self.weight = min(self.weight + 1.0, self.memory)
        self.value += (x - self.value) / self.weight


def _poisson_tail(mean: float, k: int) -> float:
    """P(X >= k) for X Poisson with ``mean`` (an upper bound for a sum of Bernoulli trials' tail)."""
    if k <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for i in range(1, k):
        term *= mean / i
        below += term
    return max(0.0, 1.0 - below)


class _RingTimes:
    """The last ``memory`` ring times of one kind of call (answered, or not), kept sorted: an
    empirical survival function, whatever the distribution."""

    __slots__ = ("_fifo", "_memory", "_sorted")

    def __init__(self, memory: int) -> None:
        self._memory = memory
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, x: float) -> None:
        self._fifo.append(x)
        bisect.insort(self._sorted, x)
        if len(self._fifo) > self._memory:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def survival(self, t: float) -> float:
        """The share of these calls that rang longer than ``t``."""
        n = len(self._sorted)
        return (n - bisect.bisect_right(self._sorted, t)) / n if n else 1.0

    @property
    def longest(self) -> float:
        return self._sorted[-1] if self._sorted else 0.0


@dataclass(slots=True)
class _AbandonCounts:
    answered_day: int = 0
    abandoned_day: int = 0
    # (time, abandoned) of the live answered calls within the rolling window, oldest first.
    window: deque[tuple[float, bool]] = field(default_factory=deque)
    abandoned_window: int = 0


class Pacer:
    """Decides how many calls to place; see the module docstring for the model."""

    __slots__ = (
        "_age_table",
        "_answer",
        "_counts",
        "_last_now",
        "_pending",
        "_ring_answered",
        "_ring_max",
        "_ring_other",
        "_ring_times_answered",
        "_ring_times_other",
        "_stale",
        "_talk",
        "_wrap",
        "_z",
        "settings",
    )

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings
        prior = float(settings.prior_weight)
        memory = float(settings.memory)
        self._answer = _RunningMean(settings.answer_rate, prior, memory)
        self._ring_answered = _RunningMean(settings.ring_s, prior, memory)
        # Before measurements: unanswered calls ring about as long as answered ones (an assumption
        # the measurements soon replace; busy and failed calls end sooner, no-answers later).
        self._ring_other = _RunningMean(settings.ring_s, prior, memory)
        self._ring_times_answered = _RingTimes(settings.memory)
        self._ring_times_other = _RingTimes(settings.memory)
        self._age_table: list[float] | None = None
        self._stale = 0
        self._pending: list[tuple[float, bool, float]] = []  # (dialled at, live answer, ring time)
        self._ring_max = settings.ring_timeout_s
        # After a start (all agents taking calls at once) the short calls end first: the first talk
        # times read far too short. The prior holds longer for them.
        talk_prior = min(memory, prior * _TALK_PRIOR_FACTOR)
        self._talk = _RunningMean(settings.talk_s, talk_prior, memory)
        self._wrap = _RunningMean(settings.wrap_s, talk_prior, memory)
        self._z = settings.initial_z
        self._counts = _AbandonCounts()
        self._last_now = -math.inf

    # --- feedback ---------------------------------------------------------------------------------

    def observe_attempt(self, now: float, outcome: CallOutcome, ring_s: float) -> None:
        """A dialled call stopped ringing at ``now`` after ``ring_s`` seconds, with ``outcome``
        (``answered`` or ``abandoned``: a person answered; ``voicemail``: a machine, detected;
        ``busy``, ``no_answer``, ``failed``). ``rejected_dnc`` was never dialled and is ignored."""
        outcome = CallOutcome(outcome)
        self._advance(now)
        if not outcome.dialled:
            return
        if not (ring_s >= 0.0 and math.isfinite(ring_s)):
            raise DialerError(f"ring_s must be >= 0, got {ring_s!r}")
        # Counted later, in the order the calls were placed, once every call placed at the same time
        # has had the time to end: busy and failed calls come back within seconds and answered ones
        # after ~20 s, so counting outcomes as they arrive would read a burst of calls as a low
        # answer rate and short ring times, and over-dial.
        self._ring_max = max(self._ring_max, ring_s)
        heapq.heappush(self._pending, (now - ring_s, outcome.live_answer, ring_s))
        self._settle(now)

    def observe_connected(self, now: float, talk_s: float, wrap_s: float) -> None:
        """An agent finished a call that lasted ``talk_s`` and its wrap-up of ``wrap_s`` seconds."""
        self._advance(now)
        _positive("talk_s", talk_s, zero=True)
        _positive("wrap_s", wrap_s, zero=True)
        self._talk.add(talk_s)
        self._wrap.add(wrap_s)

    def observe_answered(self, now: float, abandoned: bool) -> None:
        """A person answered at about ``now``; ``abandoned``: no agent took the call within 2 s.

        Counts towards the abandon rate of the day and of the rolling window; while the campaign
        dials predictively, it also steps the controller."""
        self._advance(now)
        predictive = self.effective_mode is DialMode.PREDICTIVE
        counts = self._counts
        counts.answered_day += 1
        counts.window.append((now, abandoned))
        if abandoned:
            counts.abandoned_day += 1
            counts.abandoned_window += 1
        self._expire(now)
        if predictive:
            target = self.settings.abandon_cap * self.settings.abandon_target
            step = self.settings.gain * ((1.0 - target) if abandoned else -target)
            self._z = min(_Z_MAX, max(_Z_MIN, self._z + step))

    def start_day(self) -> None:
        """A new day for the cap: the day's counts start again (the rolling window goes on)."""
        self._counts.answered_day = 0
        self._counts.abandoned_day = 0

    def restore_day(self, answered: int, abandoned: int) -> None:
        """After a restart: the day's live answered and abandoned calls so far, from the store."""
        if not 0 <= abandoned <= answered:
            raise DialerError("need 0 <= abandoned <= answered")
        self._counts.answered_day = answered
        self._counts.abandoned_day = abandoned

    # --- decisions --------------------------------------------------------------------------------

    @property
    def effective_mode(self) -> DialMode:
        """The mode the pacer dials in now: the campaign's, except predictive while the abandon rate
        of the day or of the rolling window is at or above the cap (then progressive)."""
        mode = self.settings.mode
        if mode is DialMode.PREDICTIVE and self._cap_reached():
            return DialMode.PROGRESSIVE
        return mode

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        """How many calls to dial now (never more than the trunk's free lines or the campaign's own
        limit allow)."""
        self._advance(snapshot.now)
        self._settle(snapshot.now)
        self._expire(snapshot.now)
        room = self._room(snapshot)
        if room <= 0:
            return 0
        mode = self.effective_mode
        if mode is DialMode.PREVIEW:
            return 0
        if mode is DialMode.NOTIFICATION:
            return room
        progressive = snapshot.agents_ready - snapshot.calls_in_progress - snapshot.answered_waiting
        progressive = max(0, min(room, progressive))
        if mode is DialMode.PROGRESSIVE:
            return progressive
        return max(progressive, self._predictive(snapshot, room))

    def stats(self) -> PacingStats:
        """The measured figures and the abandon counts now."""
        c = self._counts
        return PacingStats(
            effective_mode=self.effective_mode,
            answer_rate=self._answer.value,
            ring_answered_s=self._ring_answered.value,
            ring_other_s=self._ring_other.value,
            talk_s=self._talk.value,
            wrap_s=self._wrap.value,
            answered_today=c.answered_day,
            abandoned_today=c.abandoned_day,
            abandon_rate_today=c.abandoned_day / c.answered_day if c.answered_day else 0.0,
            answered_window=len(c.window),
            abandoned_window=c.abandoned_window,
            abandon_rate_window=c.abandoned_window / len(c.window) if c.window else 0.0,
            safety_z=self._z,
        )

    # --- internals --------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if not math.isfinite(now):
            raise DialerError(f"now must be a finite time, got {now!r}")
        if now < self._last_now:
            raise DialerError(f"time went backwards: {now!r} after {self._last_now!r}")
        self._last_now = now

    def _settle(self, now: float) -> None:
        """Count the outcomes of calls placed long enough ago that all their contemporaries ended."""
        pending = self._pending
        horizon = now - self._ring_max
        while pending and pending[0][0] <= horizon:
            _, live, ring_s = heapq.heappop(pending)
            self._answer.add(1.0 if live else 0.0)
            (self._ring_answered if live else self._ring_other).add(ring_s)
            (self._ring_times_answered if live else self._ring_times_other).add(ring_s)
            self._stale += 1

    def _expire(self, now: float) -> None:
        counts = self._counts
        horizon = now - self.settings.rolling_window_s
        window = counts.window
        while window and window[0][0] <= horizon:
            _, abandoned = window.popleft()
            if abandoned:
                counts.abandoned_window -= 1

    def _cap_reached(self) -> bool:
        c = self._counts
        cap = self.settings.abandon_cap
        # The day is the regulators' measure, judged one abandon ahead: dial ahead of free agents only
        # while one more abandon would still leave the day's rate within the cap. (A day's first ~33
        # live answers at a 3 % cap are therefore dialled progressively: there is nothing yet to
        # absorb an abandon.)
        if c.abandoned_day + 1 > cap * (c.answered_day + 1) + _EPSILON:
            return True
        # The rolling window watches the recent past: reached when its rate is at the cap.
        return bool(c.abandoned_window) and c.abandoned_window >= cap * len(c.window) - _EPSILON

    def _room(self, s: PacingSnapshot) -> int:
        room = math.inf
        limit = self.settings.max_concurrent_calls
        if limit is not None:
            room = limit - s.calls_in_progress - s.answered_waiting - s.calls_connected
        if s.trunk_free is not None:
            room = min(room, s.trunk_free)
        if room == math.inf:
            # No line limit at all: calls still need somewhere to go; bound by the predictive
            # ceiling (progressive never exceeds the ready agents anyway).
            agents = s.agents_ready + len(s.agents_busy)
            room = math.floor(self.settings.max_ringing_per_agent * agents)
        return max(0, int(room))

    def _predictive(self, s: PacingSnapshot, room: int) -> int:
        p = self._answer.value
        ra = self._ring_answered.value
        rn = self._ring_other.value
        # A new call is answered about ra seconds from now and may wait ABANDON_AFTER_S for an agent.
        horizon = ra + ABANDON_AFTER_S
        # Supply: agents free within the horizon.
        supply = float(s.agents_ready)
        variance = 0.0
        talk = self._talk.value
        free_unknown = 0.0
        if horizon > self._wrap.value:
            free_unknown = 1.0 - math.exp(-(horizon - self._wrap.value) / talk)
        # Agents sure to be free in time: the ready ones and those whose wrap-up ends in time.
        sure = s.agents_ready
        for remaining in s.agents_busy:
            q = (1.0 if remaining <= horizon else 0.0) if remaining is not None else free_unknown
            supply += q
            variance += q * (1.0 - q)
            if remaining is not None and remaining <= ABANDON_AFTER_S:
                sure += 1
        # Demand: answered calls waiting, calls ringing, new calls.
        ringing, ringing_variance = self._ringing_answers(s, p, ra, rn)
        demand = s.answered_waiting + ringing
        variance += ringing_variance
        agents = s.agents_ready + len(s.agents_busy)
        ceiling = math.floor(self.settings.max_ringing_per_agent * agents) - s.calls_in_progress
        limit = min(room, ceiling)
        z = self._z
        per_call_variance = p * (1.0 - p)
        # The abandons the day can still absorb (see _CAP_Z).
        spare = self._day_spare()
        n = 0
        # Few calls per decision (a handful per second): a plain search is cheaper than solving the
        # quadratic and exact at integer steps.
        while n < limit:
            m = n + 1
            mean = demand + p * m - supply
            deviation = math.sqrt(variance + per_call_variance * m)
            if mean + z * deviation > 0.0 or mean + _CAP_Z * deviation > spare:
                break
            if spare < _POISSON_SPARE and _poisson_tail(demand + p * m, sure + int(spare) + 1) > _CAP_RISK:
                break
            n = m
        return n

    def _day_spare(self) -> float:
        """How many more abandons the day can take and stay within the cap (each also adds a live
        answer): the k with (abandoned + k) / (answered + k) = cap."""
        c = self._counts
        cap = self.settings.abandon_cap
        return max(0.0, (cap * c.answered_day - c.abandoned_day) / (1.0 - cap)) if cap < 1.0 else math.inf

    def _ringing_answers(self, s: PacingSnapshot, p: float, ra: float, rn: float) -> tuple[float, float]:
        """Expected answers among the calls ringing now, and their variance."""
        if not s.calls_ringing_s:
            # Ages unknown: by Little's law, the share of ringing calls that will be answered is
            # p·Ra / (p·Ra + (1-p)·Rn) in a steady stream of calls.
            weight = p * ra + (1.0 - p) * rn
            q = p * ra / weight if weight > 0.0 else p
            n = s.calls_in_progress
            return q * n, q * (1.0 - q) * n
        table = self._answer_by_age(p)
        if table is None:
            # Too few ring times yet: every ringing call counts as fresh (the cautious guess: a call
            # only gets less likely to be answered as it rings on).
            n = len(s.calls_ringing_s)
            return p * n, p * (1.0 - p) * n
        last = len(table) - 1
        total = 0.0
        variance = 0.0
        for age in s.calls_ringing_s:
            index = int(age / _AGE_STEP_S)
            q = table[index] if index <= last else 0.0
            total += q
            variance += q * (1.0 - q)
        return total, variance

    def _answer_by_age(self, p: float) -> list[float] | None:
        """P(answered | still ringing after a seconds) by half second of ``a``, from the ring times
        of answered and other calls: p·Sa(a) / (p·Sa(a) + (1-p)·Sn(a))."""
        answered, other = self._ring_times_answered, self._ring_times_other
        if min(len(answered), len(other)) < self.settings.prior_weight:
            return None
        if self._age_table is not None and self._stale < _TABLE_REFRESH:
            return self._age_table
        longest = max(answered.longest, other.longest)
        table: list[float] = []
        for i in range(int(longest / _AGE_STEP_S) + 1):
            age = (i + 0.5) * _AGE_STEP_S
            a = p * answered.survival(age)
            n = (1.0 - p) * other.survival(age)
            table.append(a / (a + n) if a + n > 0.0 else 0.0)
        self._age_table = table
        self._stale = 0
        return table
