"""Erlang C: an infinitely patient queue in front of N agents (M/M/N).

Traffic is in erlangs (calls per second × handling time in seconds); times are in seconds.
The probability of waiting comes from Erlang B, ``C = N·B / (N - A·(1 - B))``, so it inherits that
recursion's stability. With ``N <= A`` the queue grows without bound: every call waits, the
average wait is infinite and the service level is 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from frontoffice.wfm.erlang_b import _erlang_b, erlang_b

__all__ = [
    "ErlangCMetrics",
    "average_speed_of_answer",
    "erlang_c",
    "erlang_c_metrics",
    "occupancy",
    "service_level",
]


class ErlangCMetrics(NamedTuple):
    """Steady-state figures of an M/M/N queue.

    ``p_wait``: share of calls that wait at all. ``service_level``: share answered within
    ``answer_time_s``. ``asa_s``: average speed of answer (mean wait over all calls, which in
    Erlang C are all answered). ``occupancy``: share of agent time busy.
    """

    traffic: float
    agents: int
    p_wait: float
    service_level: float
    asa_s: float
    occupancy: float
    answer_time_s: float


def _check(traffic: float, agents: int) -> None:
    if not (traffic >= 0.0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, got {traffic!r}")
    if agents < 0:
        raise ValueError(f"agents must be >= 0, got {agents!r}")


def _erlang_c_from_b(traffic: float, agents: int, blocking: float) -> float:
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def erlang_c(traffic: float, agents: int) -> float:
    """Probability that a call waits (Erlang C formula); 1.0 when ``agents <= traffic``."""
    _check(traffic, agents)
    if agents <= traffic:
        return 1.0
    if traffic == 0.0:
        return 0.0
    return _erlang_c_from_b(traffic, agents, _erlang_b(traffic, agents))


def service_level(traffic: float, agents: int, aht_s: float, answer_time_s: float) -> float:
    """Share of calls answered within ``answer_time_s``: ``1 - C·exp(-(N - A)·T / AHT)``."""
    _check(traffic, agents)
    if aht_s <= 0.0 or answer_time_s < 0.0:
        raise ValueError("aht_s must be > 0 and answer_time_s >= 0")
    if agents <= traffic:
        return 0.0
    c = erlang_c(traffic, agents)
    return 1.0 - c * math.exp(-(agents - traffic) * (answer_time_s / aht_s))


def average_speed_of_answer(traffic: float, agents: int, aht_s: float) -> float:
    """Mean wait in seconds over all calls: ``C·AHT / (N - A)``; infinite when ``agents <= traffic``."""
    _check(traffic, agents)
    if aht_s <= 0.0:
        raise ValueError("aht_s must be > 0")
    if agents <= traffic:
        return math.inf
    return erlang_c(traffic, agents) * aht_s / (agents - traffic)


def occupancy(traffic: float, agents: int) -> float:
    """Share of agent time spent handling calls: ``A / N``, at most 1 (0 with no agents)."""
    _check(traffic, agents)
    if agents == 0:
        return 0.0
    return min(1.0, traffic / agents)


def erlang_c_metrics(
    traffic: float, agents: int, aht_s: float, answer_time_s: float = 20.0
) -> ErlangCMetrics:
    """All Erlang C figures for one staffing level, computing Erlang B once."""
    _check(traffic, agents)
    if aht_s <= 0.0 or answer_time_s < 0.0:
        raise ValueError("aht_s must be > 0 and answer_time_s >= 0")
    if agents <= traffic:
        return ErlangCMetrics(
            traffic=traffic,
            agents=agents,
            p_wait=1.0,
            service_level=0.0,
            asa_s=math.inf,
            occupancy=occupancy(traffic, agents),
            answer_time_s=answer_time_s,
        )
    if traffic == 0.0:
        return ErlangCMetrics(
            traffic=traffic,
            agents=agents,
            p_wait=0.0,
            service_level=1.0,
            asa_s=0.0,
            occupancy=0.0,
            answer_time_s=answer_time_s,
        )
    c = _erlang_c_from_b(traffic, agents, erlang_b(traffic, agents))
    spare = agents - traffic
    return ErlangCMetrics(
        traffic=traffic,
        agents=agents,
        p_wait=c,
        service_level=1.0 - c * math.exp(-spare * (answer_time_s / aht_s)),
        asa_s=c * aht_s / spare,
        occupancy=traffic / agents,
        answer_time_s=answer_time_s,
    )
