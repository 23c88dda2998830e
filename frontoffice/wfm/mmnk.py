"""M/M/N/K: N agents and K lines in all, so at most K - N callers wait; a caller who finds every line
busy gets a busy signal. Blocking and waiting together, the model of a queue behind a trunk group.

Traffic is in erlangs, times in seconds. The stationary probabilities ``π_n`` are built by stable
ratio recursions outward from the most likely state (``A/(n+1)`` below N, ``ρ = A/N`` above), so
neither factorials nor powers appear and nothing overflows; states further than a double's range
from the mode simply come out as zero.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from frontoffice.wfm.erlang_b import _erlang_b

__all__ = ["MMNKMetrics", "capacity_for_blocking", "mmnk_metrics"]


class MMNKMetrics(NamedTuple):
    """Steady-state figures of an M/M/N/K queue.

    ``p_block``: share of callers who find all K lines busy. ``p_wait``, ``service_level`` and
    ``asa_s`` are among accepted callers (the ones who got a line). ``mean_in_system`` and
    ``mean_in_queue`` are time averages. ``occupancy``: carried traffic per agent.
    """

    traffic: float
    agents: int
    capacity: int
    p_empty: float
    p_block: float
    p_wait: float
    service_level: float
    asa_s: float
    mean_in_system: float
    mean_in_queue: float
    occupancy: float
    answer_time_s: float


def _distribution(traffic: float, agents: int, capacity: int) -> list[float]:
    """Normalised ``π_0 .. π_K``."""
    a, n = traffic, agents

    def ratio(i: int) -> float:  # π_{i+1} / π_i
        return a / (i + 1) if i < n else a / n

    mode = 0
    while mode < capacity and ratio(mode) >= 1.0:
        mode += 1
    weights = [0.0] * (capacity + 1)
    weights[mode] = 1.0
    w = 1.0
    for i in range(mode, capacity):
        w *= ratio(i)
        weights[i + 1] = w
    w = 1.0
    for i in range(mode - 1, -1, -1):
        w /= ratio(i)
        weights[i] = w
    total = math.fsum(weights)
    return [x / total for x in weights]


def _poisson_tail_below(count: int, mean: float) -> list[float]:
    """``P(Poisson(mean) < j)`` for j = 1..count: the chance an Erlang(j) wait exceeds its target."""
    out: list[float] = []
    acc = 0.0
    log_mean = math.log(mean) if mean > 0.0 else -math.inf
    for i in range(count):
        acc += math.exp(-mean + i * log_mean - math.lgamma(i + 1)) if mean > 0.0 else float(i == 0)
        out.append(min(1.0, acc))
    return out


def mmnk_metrics(
    traffic: float, agents: int, capacity: int, aht_s: float, answer_time_s: float = 20.0
) -> MMNKMetrics:
    """Figures for ``agents`` agents and ``capacity`` lines (``capacity >= agents >= 1``)."""
    if not (traffic >= 0.0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, got {traffic!r}")
    if agents < 1 or capacity < agents:
        raise ValueError(f"need capacity >= agents >= 1, got agents={agents!r}, capacity={capacity!r}")
    if aht_s <= 0.0 or answer_time_s < 0.0:
        raise ValueError("aht_s must be > 0 and answer_time_s >= 0")
    a, n, k = traffic, agents, capacity
    if a == 0.0:
        return MMNKMetrics(
            traffic=a,
            agents=n,
            capacity=k,
            p_empty=1.0,
            p_block=0.0,
            p_wait=0.0,
            service_level=1.0,
            asa_s=0.0,
            mean_in_system=0.0,
            mean_in_queue=0.0,
            occupancy=0.0,
            answer_time_s=answer_time_s,
        )
    pi = _distribution(a, n, k)
    p_block = pi[k]
    accepted = 1.0 - p_block
    waiting_states = pi[n:k]  # an arrival finding n + j (j < K - N) waits behind j others
    p_wait = math.fsum(waiting_states) / accepted
    mean_in_system = math.fsum(i * p for i, p in enumerate(pi))
    mean_in_queue = math.fsum(j * p for j, p in enumerate(pi[n:]))
    # A caller arriving to n + j waits for j + 1 completions at rate N/AHT: Erlang(j+1).
    late_given = _poisson_tail_below(len(waiting_states), n * answer_time_s / aht_s)
    late = math.fsum(p * q for p, q in zip(waiting_states, late_given, strict=True)) / accepted
    return MMNKMetrics(
        traffic=a,
        agents=n,
        capacity=k,
        p_empty=pi[0],
        p_block=p_block,
        p_wait=p_wait,
        service_level=max(0.0, 1.0 - late),
        asa_s=mean_in_queue / (a * accepted) * aht_s,
        mean_in_system=mean_in_system,
        mean_in_queue=mean_in_queue,
        occupancy=min(1.0, a * accepted / n),
        answer_time_s=answer_time_s,
    )


def capacity_for_blocking(traffic: float, agents: int, blocking: float) -> int | None:
    """Smallest K (lines, agents included) with M/M/N/K blocking ``<= blocking``; ``None`` if none.

    With ``ρ = A/N >= 1`` blocking never falls below ``1 - N/A`` (the agents cannot carry more
    than N erlangs), so a lower target is unreachable. Blocking falls as K grows, and with
    ``W = 1/B(A, N) - 1`` (the states below N relative to state N) and ``m = K - N``:

        1 / P(block) = W·ρ^-m + Σ_{i=0..m} ρ^-i,

    stepped in m with two multiply-adds, without powers.
    """
    if not 0.0 < blocking < 1.0:
        raise ValueError(f"blocking must be strictly between 0 and 1, got {blocking!r}")
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents!r}")
    if traffic <= 0.0:
        return agents
    b = _erlang_b(traffic, agents)
    if b <= blocking:
        return agents
    rho = traffic / agents
    if rho >= 1.0 and blocking <= 1.0 - 1.0 / rho:
        return None
    inv_rho = 1.0 / rho
    below = 1.0 / b - 1.0
    geometric = 1.0
    m = 0
    target = 1.0 / blocking
    while below + geometric < target:
        below *= inv_rho
        geometric = 1.0 + geometric * inv_rho
        m += 1
    return agents + m
