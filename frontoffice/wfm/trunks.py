"""Trunk sizing: how many lines (channels of a SIP trunk or E1 timeslots) a queue needs.

A call holds a line from the moment it is answered by the switch until the caller hangs up:
through the IVR, while it waits in the queue, and while it talks to an agent; not during the
agent's wrap-up. Two ways to size the group, both reported:

* Erlang B on the line-holding traffic: ``λ·(IVR + mean queue wait + answered share·talk time)``,
  lines = the smallest group whose blocking at that traffic is within the target. Waits come from
  Erlang C (or Erlang A, with abandonment) for the given agents.
* M/M/N/K: N agents and K positions in all (talking plus waiting), blocking and waiting computed
  together; the smallest K within the blocking target, plus Erlang B IVR ports sized separately
  (that split is conservative: one shared pool needs no more). It assumes a line is held for the
  whole handling time, wrap-up included, and is ``None`` when the agents are too few for any K.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from frontoffice.wfm.erlang_a import erlang_a_metrics
from frontoffice.wfm.erlang_b import erlang_b, lines_for_blocking
from frontoffice.wfm.erlang_c import erlang_c_metrics
from frontoffice.wfm.mmnk import capacity_for_blocking

__all__ = ["TrunkPlan", "line_traffic", "size_trunks"]


class TrunkPlan(NamedTuple):
    """Lines for a queue. ``lines`` is the Erlang B answer on line-holding traffic.

    ``line_hold_s``: mean time a call holds a line; ``line_traffic``: erlangs on the lines;
    ``queue_wait_s``: mean wait over all callers used for it; ``blocking``: Erlang B blocking with
    ``lines``. ``mmnk_positions``: agents + queue positions from M/M/N/K; ``ivr_ports``: Erlang B
    lines for the IVR share alone; ``mmnk_lines``: their sum. ``lines_per_agent`` is the ratio the
    rules of thumb talk about.
    """

    traffic: float
    agents: int
    target_blocking: float
    queue_wait_s: float
    line_hold_s: float
    line_traffic: float
    lines: int
    blocking: float
    mmnk_positions: int | None
    ivr_ports: int
    mmnk_lines: int | None
    lines_per_agent: float


def line_traffic(
    traffic: float,
    aht_s: float,
    queue_wait_s: float,
    ivr_s: float = 0.0,
    wrap_s: float = 0.0,
    answered: float = 1.0,
) -> float:
    """Erlangs on the lines: call rate × (IVR + queue wait + answered share × (AHT - wrap-up))."""
    if not 0.0 <= wrap_s < aht_s:
        raise ValueError("wrap_s must be >= 0 and shorter than aht_s")
    rate = traffic / aht_s
    return rate * (ivr_s + queue_wait_s + answered * (aht_s - wrap_s))


def size_trunks(
    traffic: float,
    aht_s: float,
    agents: int,
    blocking: float = 0.01,
    ivr_s: float = 0.0,
    wrap_s: float = 0.0,
    queue_wait_s: float | None = None,
    patience_s: float | None = None,
) -> TrunkPlan:
    """Lines needed for ``blocking`` with ``agents`` agents on ``traffic`` erlangs of calls.

    ``queue_wait_s`` overrides the modelled mean wait; otherwise it comes from Erlang C, or from
    Erlang A when ``patience_s`` is given (then abandoned callers stop holding a line when they
    hang up and only answered callers talk). Without patience the agents must exceed the traffic.
    """
    if not (traffic >= 0.0 and math.isfinite(traffic)) or aht_s <= 0.0:
        raise ValueError("traffic must be >= 0 and aht_s > 0")
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents!r}")
    if ivr_s < 0.0:
        raise ValueError(f"ivr_s must be >= 0, got {ivr_s!r}")
    answered = 1.0
    if queue_wait_s is None:
        if patience_s is not None and math.isfinite(patience_s):
            m = erlang_a_metrics(traffic, agents, aht_s, patience_s)
            queue_wait_s = m.mean_wait_s
            answered = 1.0 - m.p_abandon
        elif agents > traffic:
            queue_wait_s = erlang_c_metrics(traffic, agents, aht_s).asa_s
        else:
            raise ValueError(
                "with agents <= traffic the Erlang C queue never empties: give patience_s or queue_wait_s"
            )
    if queue_wait_s < 0.0:
        raise ValueError(f"queue_wait_s must be >= 0, got {queue_wait_s!r}")
    carried = line_traffic(traffic, aht_s, queue_wait_s, ivr_s, wrap_s, answered)
    lines = lines_for_blocking(carried, blocking)
    ivr_ports = lines_for_blocking(traffic * ivr_s / aht_s, blocking)
    positions = capacity_for_blocking(traffic, agents, blocking)
    return TrunkPlan(
        traffic=traffic,
        agents=agents,
        target_blocking=blocking,
        queue_wait_s=queue_wait_s,
        line_hold_s=carried / traffic * aht_s if traffic > 0.0 else 0.0,
        line_traffic=carried,
        lines=lines,
        # No traffic, no call to block (Erlang B's B(0, 0) = 1 is the time congestion of no lines).
        blocking=erlang_b(carried, lines) if carried > 0.0 else 0.0,
        mmnk_positions=positions,
        ivr_ports=ivr_ports,
        mmnk_lines=None if positions is None else positions + ivr_ports,
        lines_per_agent=lines / agents,
    )
