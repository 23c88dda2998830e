"""Reference solutions of small birth–death chains by plain linear algebra, for the tests only.

Nothing here uses the product form or the series the models use: the stationary distribution comes
from Gaussian elimination on the balance equations ``πQ = 0, Σπ = 1``, and waiting-time
probabilities from uniformisation of the tagged caller's chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting."""
    size = len(rhs)
    m = [[*row, rhs[i]] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, size):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, size + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * size
    for r in range(size - 1, -1, -1):
        x[r] = (m[r][size] - sum(m[r][c] * x[c] for c in range(r + 1, size))) / m[r][r]
    return x


def stationary(up: Callable[[int], float], down: Callable[[int], float], states: int) -> list[float]:
    """Stationary distribution of a birth–death chain on 0..states-1 from ``πQ = 0`` and ``Σπ = 1``."""
    q = [[0.0] * states for _ in range(states)]
    for i in range(states):
        if i + 1 < states:
            q[i][i + 1] = up(i)
        if i > 0:
            q[i][i - 1] = down(i)
        q[i][i] = -sum(q[i])
    # Transpose to get the equations Σ_i π_i q_ij = 0; replace the last by normalisation.
    a = [[q[i][j] for i in range(states)] for j in range(states)]
    a[-1] = [1.0] * states
    b = [0.0] * states
    b[-1] = 1.0
    return solve(a, b)


def erlang_a_chain(traffic: float, agents: int, theta: float, states: int) -> list[float]:
    """M/M/N+M in handling-time units (μ = 1), truncated to ``states`` states."""
    return stationary(lambda i: traffic, lambda i: min(i, agents) + max(0, i - agents) * theta, states)


def answered_within(agents: int, theta: float, ahead: int, t: float) -> float:
    """P(a caller with ``ahead`` callers waiting in front is answered within t), by uniformisation.

    States: position 0..ahead (callers in front), plus absorbing 'answered' and 'abandoned'.
    From position i: rate N + iθ to i-1 (or to answered from 0), rate θ to abandoned.
    """
    size = ahead + 1
    rate = agents + ahead * theta + theta
    dist = [0.0] * size
    dist[ahead] = 1.0
    answered = 0.0
    # Poisson(rate·t) weights over jump counts; enough terms for 1e-15.
    lam = rate * t
    weight = math.exp(-lam)
    acc = 0.0
    cum_answered_by_jumps = 0.0
    jumps = 0
    while True:
        acc += weight * cum_answered_by_jumps
        if jumps > lam and weight < 1e-18:
            break
        new = [0.0] * size
        step_answered = 0.0
        for i in range(size):
            p = dist[i]
            if not p:
                continue
            move = (agents + i * theta) / rate
            stay = 1.0 - move - theta / rate
            new[i] += p * stay
            if i == 0:
                step_answered += p * move
            else:
                new[i - 1] += p * move
        dist = new
        cum_answered_by_jumps += step_answered
        jumps += 1
        weight *= lam / jumps
    answered = acc
    return answered


def answered_wait(agents: int, theta: float, ahead: int) -> tuple[float, float]:
    """(P(answered), E[wait · 1{answered}]) for a caller with ``ahead`` in front, by first-step analysis."""
    p, m = 1.0, 0.0
    for i in range(ahead + 1):
        out = agents + i * theta + theta
        move = (agents + i * theta) / out
        p_new = move * p
        m = p_new / out + move * m
        p = p_new
    return p, m
