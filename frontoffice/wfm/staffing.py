"""Minimum staffing for a service target: the true minimum, not a search that can overshoot.

Every target here (service level up, ASA down, abandonment down, occupancy down) is monotone in
the number of agents, so the smallest N that meets all of them is the largest of the smallest Ns
for each, and a search is minimal exactly when N meets the targets and N - 1 does not.

* Erlang C needs N > A, and an occupancy cap needs N >= A / cap; below that nothing can meet the
  target. The search starts at the larger of the two, computes Erlang B there once, and steps up
  with the one-line recursion: the first N that meets the targets is the minimum.
* Erlang A (callers abandon) may need fewer agents than erlangs offered, so its search starts at
  the offered load and moves down or up, guided by interpolating the margin to the target and
  safeguarded by doubling steps and bisection, keeping one point that fails and one that meets
  until they are adjacent. Nothing is assumed below the traffic.

Shrinkage (breaks, training, absence, as a share of paid time) turns agents on the phones into
agents to schedule: ``ceil(N / (1 - shrinkage))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from frontoffice.wfm.erlang_a import ErlangAMetrics, erlang_a_metrics
from frontoffice.wfm.erlang_b import _erlang_b

__all__ = [
    "Staffing",
    "StaffingTarget",
    "erlang_a_staffing",
    "erlang_c_staffing",
    "required_agents",
    "scheduled_agents",
]

# Searches give up beyond this many agents per erlang offered (plus a constant for tiny loads):
# no reachable target needs it, so a target that does is unreachable (e.g. ASA of 0 s).
_SEARCH_LIMIT_PER_ERLANG = 100
_SEARCH_LIMIT_CONSTANT = 1000


@dataclass(frozen=True, slots=True)
class StaffingTarget:
    """What the staffing must achieve. ``None`` leaves a target out; at least one must be set.

    ``service_level`` (a share, 0.8 for 80 %) of calls answered within ``answer_time_s``;
    ``asa_s`` maximum average speed of answer; ``abandon_rate`` maximum share of callers who hang
    up (Erlang A only); ``max_occupancy`` cap on agent busy share; ``shrinkage`` share of paid time
    off the phones, used to turn positions into scheduled agents.
    """

    service_level: float | None = 0.8
    answer_time_s: float = 20.0
    asa_s: float | None = None
    abandon_rate: float | None = None
    max_occupancy: float | None = None
    shrinkage: float = 0.0

    def __post_init__(self) -> None:
        if self.service_level is not None and not 0.0 < self.service_level < 1.0:
            raise ValueError(f"service_level must be between 0 and 1 exclusive, got {self.service_level!r}")
        if not (self.answer_time_s >= 0.0 and math.isfinite(self.answer_time_s)):
            raise ValueError(f"answer_time_s must be >= 0, got {self.answer_time_s!r}")
        if self.asa_s is not None and not self.asa_s > 0.0:
            raise ValueError(f"asa_s must be > 0, got {self.asa_s!r}")
        if self.abandon_rate is not None and not 0.0 < self.abandon_rate < 1.0:
            raise ValueError(f"abandon_rate must be between 0 and 1 exclusive, got {self.abandon_rate!r}")
        if self.max_occupancy is not None and not 0.0 < self.max_occupancy <= 1.0:
            raise ValueError(f"max_occupancy must be in (0, 1], got {self.max_occupancy!r}")
        if not 0.0 <= self.shrinkage < 1.0:
            raise ValueError(f"shrinkage must be in [0, 1), got {self.shrinkage!r}")
        targets = (self.service_level, self.asa_s, self.abandon_rate, self.max_occupancy)
        if all(value is None for value in targets):
            raise ValueError("set at least one target: service level, ASA, abandonment or occupancy")


class Staffing(NamedTuple):
    """The minimum staffing and the figures it achieves.

    ``agents``: positions on the phones; ``scheduled``: agents to schedule after shrinkage.
    ``limiting`` names the targets that ``agents - 1`` would miss (the ones that set the number).
    ``asa_s`` is the mean wait of answered callers, ``mean_wait_s`` over all callers (the same
    under Erlang C, whose callers never hang up and so have ``p_abandon`` 0).
    """

    model: str
    traffic: float
    aht_s: float
    agents: int
    scheduled: int
    service_level: float
    answer_time_s: float
    asa_s: float
    mean_wait_s: float
    p_wait: float
    p_abandon: float
    occupancy: float
    limiting: tuple[str, ...]


def scheduled_agents(agents: int, shrinkage: float) -> int:
    """Agents to schedule so that ``agents`` are on the phones after ``shrinkage``.

    ``ceil(agents / (1 - shrinkage))``, ignoring float noise in the division (14 / 0.7 is 20).
    """
    if shrinkage == 0.0:
        return agents
    if not 0.0 < shrinkage < 1.0:
        raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage!r}")
    exact = agents / (1.0 - shrinkage)
    nearest = round(exact)
    if abs(exact - nearest) <= 1e-9 * max(1.0, exact):
        return int(nearest)
    return math.ceil(exact)


def _occupancy_floor(traffic: float, cap: float) -> int:
    """Smallest N with ``traffic / N <= cap`` as the float comparison sees it."""
    n = max(1, math.ceil(traffic / cap))
    while n > 1 and traffic / (n - 1) <= cap:
        n -= 1
    while traffic / n > cap:
        n += 1
    return n


def _no_agents(model: str, aht_s: float, answer_time_s: float) -> Staffing:
    """No traffic, no agents: every target holds trivially."""
    return Staffing(
        model=model,
        traffic=0.0,
        aht_s=aht_s,
        agents=0,
        scheduled=0,
        service_level=1.0,
        answer_time_s=answer_time_s,
        asa_s=0.0,
        mean_wait_s=0.0,
        p_wait=0.0,
        p_abandon=0.0,
        occupancy=0.0,
        limiting=(),
    )


def _check_inputs(traffic: float, aht_s: float) -> None:
    if not (traffic >= 0.0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, got {traffic!r}")
    if not (aht_s > 0.0 and math.isfinite(aht_s)):
        raise ValueError(f"aht_s must be finite and > 0, got {aht_s!r}")


def _search_limit(traffic: float) -> int:
    return int(_SEARCH_LIMIT_PER_ERLANG * traffic) + _SEARCH_LIMIT_CONSTANT


def erlang_c_staffing(traffic: float, aht_s: float, target: StaffingTarget) -> Staffing:
    """Minimum agents for ``target`` under Erlang C (callers never abandon)."""
    _check_inputs(traffic, aht_s)
    if target.abandon_rate is not None:
        raise ValueError("an abandonment target needs a patience (Erlang A); Erlang C callers never hang up")
    a = traffic
    sl_target = target.service_level
    asa_target = target.asa_s
    t = target.answer_time_s
    if a == 0.0:
        return _no_agents("erlang_c", aht_s, t)
    n = math.floor(a) + 1
    if target.max_occupancy is not None:
        n = max(n, _occupancy_floor(a, target.max_occupancy))
    first = n
    limit = _search_limit(a)
    b = _erlang_b(a, n)
    exp = math.exp
    per_aht = t / aht_s  # grouped as in erlang_c_metrics, so the two round alike
    sl_floor = -1.0 if sl_target is None else sl_target
    asa_cap = math.inf if asa_target is None else asa_target
    previous_b = b
    while True:
        c = n * b / (n - a * (1.0 - b))
        if 1.0 - c * exp(-(n - a) * per_aht) >= sl_floor and c * aht_s / (n - a) <= asa_cap:
            break
        if n > limit:
            raise ValueError("staffing target is unreachable")
        previous_b = b
        n += 1
        ab = a * b
        b = ab / (n + ab)
    spare = n - a
    sl = 1.0 - c * exp(-spare * per_aht)
    asa = c * aht_s / spare
    missed: tuple[str, ...]
    if n == first:
        # The floor itself met the targets: what set it is stability (N > A) or the occupancy cap.
        occupancy_binds = target.max_occupancy is not None and n > math.floor(a) + 1
        missed = ("max_occupancy",) if occupancy_binds else ("stability",)
    else:
        # The targets n - 1 misses are the ones that set n.
        m = n - 1
        c_before = m * previous_b / (m - a * (1.0 - previous_b))
        sl_missed = 1.0 - c_before * exp(-(m - a) * per_aht) < sl_floor
        asa_missed = c_before * aht_s / (m - a) > asa_cap
        missed = ("service_level",) * sl_missed + ("asa",) * asa_missed
    return Staffing(
        model="erlang_c",
        traffic=a,
        aht_s=aht_s,
        agents=n,
        scheduled=scheduled_agents(n, target.shrinkage),
        service_level=sl,
        answer_time_s=t,
        asa_s=asa,
        mean_wait_s=asa,
        p_wait=c,
        p_abandon=0.0,
        occupancy=a / n,
        limiting=missed,
    )


def _misses(m: ErlangAMetrics, target: StaffingTarget) -> tuple[str, ...]:
    out: list[str] = []
    if target.service_level is not None and m.service_level < target.service_level:
        out.append("service_level")
    if target.asa_s is not None and m.asa_s > target.asa_s:
        out.append("asa")
    if target.abandon_rate is not None and m.p_abandon > target.abandon_rate:
        out.append("abandon_rate")
    if target.max_occupancy is not None and m.occupancy > target.max_occupancy:
        out.append("max_occupancy")
    return tuple(out)


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def _margin(m: ErlangAMetrics, target: StaffingTarget) -> float:
    """How far the figures are from the targets, on scales where they move about linearly in N.

    Probabilities compare on the logit scale and the ASA on the log scale; the tightest margin
    counts. It only guides the search: whether N meets the targets is decided by ``_misses``.
    """
    margins: list[float] = []
    if target.service_level is not None:
        margins.append(_logit(m.service_level) - _logit(target.service_level))
    if target.asa_s is not None:
        margins.append(math.log(target.asa_s) - (math.log(m.asa_s) if m.asa_s > 0.0 else -math.inf))
    if target.abandon_rate is not None:
        margins.append(_logit(target.abandon_rate) - _logit(m.p_abandon))
    if target.max_occupancy is not None:
        margins.append(_logit(target.max_occupancy) - _logit(m.occupancy))
    return min(margins)


def _root(n1: int, v1: float, n2: int, v2: float) -> float | None:
    """Where the line through two margins crosses zero, if they rise with n."""
    if n1 == n2 or not (math.isfinite(v1) and math.isfinite(v2)):
        return None
    slope = (v2 - v1) / (n2 - n1)
    if not slope > 0.0:
        return None
    return n2 - v2 / slope


def _smallest_meeting(probe: Callable[[int], tuple[bool, float]], guess: int, lowest: int, limit: int) -> int:
    """Smallest ``n >= lowest`` that meets, for a ``probe(n) -> (meets, margin)`` monotone in n.

    Keeps the largest n known to fail (``lo``; ``lowest - 1`` stands for "nothing below") and the
    smallest known to meet (``hi``), and returns when they are adjacent. Probes follow the straight
    line through the last two margins, which for the smooth Erlang figures lands next to the
    answer in a handful of evaluations. Safeguards keep the count logarithmic whatever the margins
    look like: outside the bracket each probe goes at least a doubling step further, and inside it
    two interpolated probes in a row that did not halve the bracket are followed by a bisection.
    """
    lo, lo_value = lowest - 1, math.nan
    hi, hi_value = -1, math.nan  # hi < 0: nothing known to meet yet
    n = max(guess, lowest)
    last: tuple[int, float] | None = None
    up = down = 1  # safeguard steps outside the bracket, doubled after each use
    width = -1  # bracket width before the last interpolated probe inside it
    stalls = 0  # interpolated probes in a row that did not halve the bracket
    while True:
        meets, value = probe(n)
        if meets:
            hi, hi_value = n, value
        else:
            lo, lo_value = n, value
        if hi >= 0 and hi - lo <= 1:
            return hi
        guide = _root(last[0], last[1], n, value) if last is not None else None
        last = (n, value)
        if hi < 0:  # only failures so far: go up
            n = lo + up
            up *= 2
            if guide is not None:
                n = max(n, math.ceil(guide))
            if n > limit:
                raise ValueError("staffing target is unreachable")
        elif lo < lowest:  # only successes so far: go down
            n = hi - down
            down *= 2
            if guide is not None:
                n = min(n, math.floor(guide))
            n = max(n, lowest)
        else:
            if 0 <= width < 2 * (hi - lo):
                stalls += 1  # the last interpolated probe did not halve the bracket
            inside = _root(lo, lo_value, hi, hi_value)
            if inside is None or stalls >= 2:
                n = (lo + hi) // 2
                width, stalls = -1, 0
            else:
                # The first n past the crossing; if that is hi itself, hi - 1 decides.
                width = hi - lo
                n = min(hi - 1, max(lo + 1, math.ceil(inside)))


def erlang_a_staffing(traffic: float, aht_s: float, patience_s: float, target: StaffingTarget) -> Staffing:
    """Minimum agents for ``target`` under Erlang A, callers hanging up after mean ``patience_s``.

    The answer may lie below the offered traffic: abandonment sheds load.
    """
    _check_inputs(traffic, aht_s)
    if not patience_s > 0.0:
        raise ValueError(f"patience_s must be > 0, got {patience_s!r}")
    a = traffic
    t = target.answer_time_s
    if a == 0.0:
        return _no_agents("erlang_a", aht_s, t)
    if target.service_level is None and target.asa_s is None and target.abandon_rate is None:
        raise ValueError("Erlang A staffing needs a service level, ASA or abandonment target")
    seen: dict[int, ErlangAMetrics] = {}

    def metrics(n: int) -> ErlangAMetrics:
        m = seen.get(n)
        if m is None:
            m = seen[n] = erlang_a_metrics(a, n, aht_s, patience_s, t)
        return m

    def probe(k: int) -> tuple[bool, float]:
        m = metrics(k)
        return not _misses(m, target), _margin(m, target)

    n = _smallest_meeting(probe, max(1, round(a)), lowest=1, limit=_search_limit(a))
    m = metrics(n)
    return Staffing(
        model="erlang_a",
        traffic=a,
        aht_s=aht_s,
        agents=n,
        scheduled=scheduled_agents(n, target.shrinkage),
        service_level=m.service_level,
        answer_time_s=t,
        asa_s=m.asa_s,
        mean_wait_s=m.mean_wait_s,
        p_wait=m.p_wait,
        p_abandon=m.p_abandon,
        occupancy=m.occupancy,
        limiting=_misses(metrics(n - 1), target) if n > 1 else (),
    )


def required_agents(
    traffic: float, aht_s: float, target: StaffingTarget, patience_s: float | None = None
) -> Staffing:
    """Minimum staffing: Erlang A when a finite ``patience_s`` is given, Erlang C otherwise."""
    if patience_s is None or math.isinf(patience_s):
        return erlang_c_staffing(traffic, aht_s, target)
    return erlang_a_staffing(traffic, aht_s, patience_s, target)
