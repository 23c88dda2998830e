"""Erlang A (M/M/N+M): N agents, a queue, and callers who hang up after an exponential patience.

The model is the birth–death chain on the number of calls in the system, with arrival rate λ,
service rate μ per agent and abandonment rate θ per waiting caller: from state N+k (k waiting)
the chain moves down at rate Nμ + kθ. Time is measured in handling times here (μ = 1), so the
offered traffic A (erlangs) is the arrival rate and θ = AHT / mean patience.

With ``r_k = prod_{j=1..k} A/(N + jθ)`` the stationary probabilities are
``π_{N+k} = π_N·r_k`` above N and Erlang's ``π_n ∝ A^n/n!`` below, so with Erlang B ``B = B(A, N)``

    P(wait) = π_N·Σ r_k,     π_N = 1 / ((1 - B)/B + Σ r_k).

A caller who finds k waiting would be answered after ``V_k``, a sum of exponentials with rates
``N + iθ`` (i = 0..k), and is answered if ``V_k`` is shorter than their patience. Mixing over k, the
weighted density ``Σ r_k f_{V_k}(τ) = N·exp(-Nτ + (A/θ)(1 - e^{-θτ}))`` integrates to the incomplete
gamma closed forms of Mandelbaum & Zeltyn; in series form:

* answered after waiting:     ``Σ r_k · N/(N + (k+1)θ)``  (``E[e^{-θV_k}]`` telescopes)
* their total wait:           ``Σ r_k · N/(N + (k+1)θ) · Σ_{i=1..k+1} 1/(N + iθ)``
* mean queue length:          ``Σ k·r_k``, and P(abandon) = θ·E[queue]/A (Little)
* answered within t:          ``N/(N+θ)·[S(A) - exp(-(N+θ)t + (A/θ)(1 - e^{-θt}))·S(A·e^{-θt})]``
  with ``S(x) = Σ_j prod_{i=1..j} x/(N + (i+1)θ)``.

The series are summed from k = 0 with the running term rescaled, or, when the most likely queue
is long, from their largest term outwards in both directions (its logarithm from Stirling's series
regrouped so that nothing large cancels). They stop once the terms decrease and a geometric bound on
everything left is below 1e-17 of every sum: the truncation is provably negligible. Nothing is
approximated.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from frontoffice.wfm.erlang_b import _erlang_b
from frontoffice.wfm.erlang_c import erlang_c_metrics

__all__ = ["ErlangAMetrics", "erlang_a_metrics"]

# Bound on the neglected tail of every series, relative to its sum.
_TAIL_REL_ERROR = 1e-17
# The running term is rescaled by this factor to stay within the float range.
_RESCALE = 1e200
_LOG_RESCALE = math.log(_RESCALE)
# Sum from the largest term outwards once it lies this far from k = 0.
_PEAK_FROM_ZERO = 64
# Refuse work beyond this many terms each way (about a second). The sums need about
# 18·sqrt(traffic·patience/AHT) terms when agents are below the traffic, so this only happens
# with patience many thousands of handling times long at large traffic.
_MAX_TERMS = 2_000_000
_TOO_MANY_TERMS = (
    "Erlang A is out of its numerical range here: the patience is too many handling times for this "
    "traffic with agents at or below it (queues of millions); use a shorter patience or Erlang C"
)


class ErlangAMetrics(NamedTuple):
    """Steady-state figures of an M/M/N+M queue (Erlang A).

    ``p_wait``: share of callers who find every agent busy. ``p_abandon``: share of all callers who
    hang up before an answer. ``service_level``: share of all callers answered within
    ``answer_time_s``; ``service_level_answered``: the same among answered callers only.
    ``asa_s``: mean wait of answered callers; ``mean_wait_s``: mean wait over all callers,
    abandoned included. ``occupancy``: share of agent time busy (carried traffic / agents).
    """

    traffic: float
    agents: int
    patience_s: float
    answer_time_s: float
    p_wait: float
    p_abandon: float
    service_level: float
    service_level_answered: float
    asa_s: float
    mean_wait_s: float
    occupancy: float


def _digamma_difference(z1: float, z2: float) -> float:
    """``ψ(z2) - ψ(z1)`` for ``z2 >= z1 + 20 > 20``, without cancelling two large ψ values."""
    acc = 0.0
    while z1 < 20.0:  # ψ(z) = ψ(z + 1) - 1/z
        acc += 1.0 / z1
        z1 += 1.0

    def tail(z: float) -> float:  # ψ(z) - ln z for z >= 20 (asymptotic series, error < 1e-17)
        w = 1.0 / (z * z)
        return -0.5 / z - w * (1.0 / 12 - w * (1.0 / 120 - w * (1.0 / 252 - w * (1.0 / 240 - w / 132))))

    return acc + math.log1p((z2 - z1) / z1) + tail(z2) - tail(z1)


def _log_gamma_tail(z: float) -> float:
    """``lgamma(z) - [(z - ½)·ln z - z + ½·ln 2π]`` for z >= 20 (Stirling series, error < 1e-19)."""
    w = 1.0 / (z * z)
    return (1.0 / 12 - w * (1.0 / 360 - w * (1.0 / 1260 - w * (1.0 / 1680 - w / 1188)))) / z


def _one_plus_u_log_minus_u(u: float) -> float:
    """``(1 + u)·ln(1 + u) - u`` for u >= 0 without cancellation (≈ u²/2 for small u)."""
    if u > 0.5:
        return (1.0 + u) * math.log1p(u) - u
    # Σ_{m>=2} (-u)^m / (m(m-1)): alternating, terms below 2**-m, 60 terms reach 1e-18.
    total = 0.0
    power = u * u
    for m in range(2, 62):
        total += power / (m * (m - 1)) if m % 2 == 0 else -power / (m * (m - 1))
        power *= u
        if power < 1e-18 * total:
            break
    return total


def _log_term(a: float, base: float, theta: float, k: int) -> float:
    """``ln prod_{j=1..k} a/(base + jθ)``, accurate to about 1e-16 of the result's own size.

    ``lgamma`` differences would lose everything below ``1e-16·(base/θ)·ln(base/θ)``. Instead, with
    ``z = base/θ + 1`` and ``u = k/z`` (Stirling, terms regrouped so nothing large cancels):

        Σ ln(a/(base + jθ)) = k·ln(a/(base + θ)) - z·((1+u)·ln(1+u) - u) + ½·ln(1+u) - (c(z+k) - c(z)).
    """
    total = 0.0
    while k > 0 and base / theta + 1.0 < 20.0:  # peel terms until Stirling's tail is tiny
        base += theta
        total += math.log(a / base)
        k -= 1
    if k == 0:
        return total
    z = base / theta + 1.0
    u = k / z
    first = base + theta
    ratio_log = math.log1p((a - first) / first)
    return (
        total
        + k * ratio_log
        - z * _one_plus_u_log_minus_u(u)
        + 0.5 * math.log1p(u)
        - (_log_gamma_tail(z + k) - _log_gamma_tail(z))
    )


class _Sums(NamedTuple):
    """Sums over the waiting states, each divided by ``exp(log_scale)``."""

    log_scale: float
    mass: float  # Σ r_k
    queue: float  # Σ k·r_k
    answered: float  # Σ r_k·N/(N + (k+1)θ)
    answered_wait: float  # Σ r_k·N/(N + (k+1)θ)·H_k


def _waiting_sums(a: float, base: float, theta: float) -> _Sums:
    """The sums over ``r_k = prod_{j=1..k} a/(base + jθ)``, k >= 0, with ``H_k = Σ_{i<=k+1} 1/(base + iθ)``.

    If the terms grow for a while (``base < a``) the sum starts at the largest term, whose logarithm
    comes from Stirling's series (``_log_term``) and ``H`` from a digamma difference, and runs
    outwards both ways; then every term is at most 1 and the work is about ``18·sqrt(a/θ)`` terms
    wherever the peak is.
    Otherwise it runs up from k = 0. Either way it stops once a geometric bound on everything left
    (each further factor is at most the current one, ``f < 1``, so the rest is below
    ``r·f/(1-f)``, with weights k and H bounded alongside) is below ``_TAIL_REL_ERROR`` of every sum.
    """
    peak = math.floor((a - base) / theta) if a > base else 0
    n = base
    inv_n = 1.0 / n
    eps = _TAIL_REL_ERROR
    if peak < _PEAK_FROM_ZERO:
        k0 = 0
        log_scale = 0.0
        h0 = 1.0 / (n + theta)
    else:
        x = n / theta
        k0 = peak
        log_scale = _log_term(a, n, theta, k0)
        h0 = _digamma_difference(x + 1.0, x + k0 + 2.0) / theta
    mass = queue = answered = answered_wait = 0.0
    # Upwards from k0 (included); the factor r_{k+1}/r_k = a/d falls as k grows.
    r, k, h = 1.0, k0, h0
    stop = k0 + _MAX_TERMS
    while True:
        d = n + (k + 1) * theta
        sv = r * n / d
        mass += r
        queue += k * r
        answered += sv
        answered_wait += sv * h
        q = a / d
        if q < 1.0:
            g = q / (1.0 - q)
            rest = r * g
            if (
                rest <= eps * mass
                and rest * (k + 1.0 / (1.0 - q)) <= eps * queue
                and rest * (h + inv_n / (1.0 - q)) <= eps * answered_wait
            ):
                break
        r *= q
        k += 1
        h += 1.0 / (n + (k + 1) * theta)
        if r > _RESCALE:  # only from k = 0, before the terms peak
            r /= _RESCALE
            mass /= _RESCALE
            queue /= _RESCALE
            answered /= _RESCALE
            answered_wait /= _RESCALE
            log_scale += _LOG_RESCALE
        if k > stop:
            raise ValueError(_TOO_MANY_TERMS)
    # Downwards from k0 - 1: the factor r_{k-1}/r_k = (base + kθ)/a falls as k falls.
    r, k, h = 1.0, k0, h0
    stop = k0 - _MAX_TERMS
    while k > 0:
        r *= (n + k * theta) / a
        h -= 1.0 / (n + (k + 1) * theta)
        k -= 1
        sv = r * n / (n + (k + 1) * theta)
        mass += r
        queue += k * r
        answered += sv
        answered_wait += sv * h
        f = (n + k * theta) / a
        if f < 1.0:
            rest = r * f / (1.0 - f)  # weights below are <= k and <= h
            if rest <= eps * mass and k * rest <= eps * queue and h * rest <= eps * answered_wait:
                break
        if k < stop:
            raise ValueError(_TOO_MANY_TERMS)
    return _Sums(log_scale, mass, queue, answered, answered_wait)


def _log_mass(a: float, base: float, theta: float) -> float:
    """``ln Σ_k prod_{j=1..k} a/(base + jθ)``: the mass sum of ``_waiting_sums`` alone, for speed."""
    peak = math.floor((a - base) / theta) if a > base else 0
    eps = _TAIL_REL_ERROR
    k0 = peak if peak >= _PEAK_FROM_ZERO else 0
    log_scale = _log_term(a, base, theta, k0) if k0 else 0.0
    total = 0.0
    r, k = 1.0, k0
    while True:
        total += r
        q = a / (base + (k + 1) * theta)
        if q < 1.0 and r * q / (1.0 - q) <= eps * total:
            break
        r *= q
        k += 1
        if r > _RESCALE:
            r /= _RESCALE
            total /= _RESCALE
            log_scale += _LOG_RESCALE
        if k - k0 > _MAX_TERMS:
            raise ValueError(_TOO_MANY_TERMS)
    r, k = 1.0, k0
    while k > 0:
        r *= (base + k * theta) / a
        k -= 1
        total += r
        f = (base + k * theta) / a
        if f < 1.0 and r * f / (1.0 - f) <= eps * total:
            break
        if k0 - k > _MAX_TERMS:
            raise ValueError(_TOO_MANY_TERMS)
    return log_scale + math.log(total)


def _certain(
    traffic: float,
    agents: int,
    patience_s: float,
    answer_time_s: float,
    *,
    p_wait: float,
    p_abandon: float,
    asa_s: float,
    occupancy: float,
) -> ErlangAMetrics:
    """Figures for the degenerate cases where nobody waits (p_wait 0) or nobody is answered (1)."""
    served = p_abandon == 0.0
    return ErlangAMetrics(
        traffic=traffic,
        agents=agents,
        patience_s=patience_s,
        answer_time_s=answer_time_s,
        p_wait=p_wait,
        p_abandon=p_abandon,
        service_level=1.0 if served else 0.0,
        service_level_answered=1.0 if served else 0.0,
        asa_s=asa_s,
        mean_wait_s=0.0 if served else patience_s,
        occupancy=occupancy,
    )


def _logistic_of_log(log_ratio: float) -> float:
    """``1 / (1 + exp(log_ratio))`` without overflow."""
    if log_ratio > 0.0:
        e = math.exp(-log_ratio) if log_ratio < 745.0 else 0.0
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(log_ratio))


def erlang_a_metrics(
    traffic: float, agents: int, aht_s: float, patience_s: float, answer_time_s: float = 20.0
) -> ErlangAMetrics:
    """Exact Erlang A figures for ``agents`` agents, ``traffic`` erlangs and mean patience ``patience_s``.

    ``patience_s = math.inf`` gives Erlang C (with infinite waits when ``agents <= traffic``).
    """
    if not (traffic >= 0.0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, got {traffic!r}")
    if agents < 0:
        raise ValueError(f"agents must be >= 0, got {agents!r}")
    if not (aht_s > 0.0 and math.isfinite(aht_s)) or answer_time_s < 0.0:
        raise ValueError("aht_s must be finite and > 0, answer_time_s >= 0")
    if not patience_s > 0.0:
        raise ValueError(f"patience_s must be > 0, got {patience_s!r}")
    a, n, t = traffic, agents, answer_time_s
    if math.isinf(patience_s):
        c = erlang_c_metrics(traffic, agents, aht_s, answer_time_s)
        return ErlangAMetrics(
            a,
            n,
            patience_s,
            t,
            c.p_wait,
            0.0,
            c.service_level,
            c.service_level,
            c.asa_s,
            c.asa_s,
            c.occupancy,
        )
    if a == 0.0:
        return _certain(a, n, patience_s, t, p_wait=0.0, p_abandon=0.0, asa_s=0.0, occupancy=0.0)
    if n == 0:
        return _certain(a, n, patience_s, t, p_wait=1.0, p_abandon=1.0, asa_s=math.inf, occupancy=0.0)

    theta = aht_s / patience_s
    t_u = t / aht_s
    blocking = _erlang_b(a, n)
    if blocking == 0.0:
        # B(A, N) below the smallest float: nobody waits to double precision.
        return _certain(a, n, patience_s, t, p_wait=0.0, p_abandon=0.0, asa_s=0.0, occupancy=a / n)
    log_scale, q0, q1, answered, answered_wait = _waiting_sums(a, float(n), theta)
    log_q0 = log_scale + math.log(q0)
    p_wait = _logistic_of_log(math.log1p(-blocking) - math.log(blocking) - log_q0)
    p_abandon = min(1.0, theta / a * p_wait * (q1 / q0))
    answered_share = answered / q0  # P(answered | waited)
    if t_u > 0.0:
        decayed = a * math.exp(-theta * t_u)
        exponent = -(n + theta) * t_u - (a / theta) * math.expm1(-theta * t_u)
        log_s2 = _log_mass(decayed, n + theta, theta)
        late = n / (n + theta) * math.exp(min(0.0, exponent + log_s2 - log_q0))
        answered_in_time = max(0.0, answered_share - late)
    else:
        answered_in_time = 0.0
    sl_all = min(1.0, (1.0 - p_wait) + p_wait * answered_in_time)
    p_answered = 1.0 - p_abandon
    return ErlangAMetrics(
        traffic=a,
        agents=n,
        patience_s=patience_s,
        answer_time_s=t,
        p_wait=p_wait,
        p_abandon=p_abandon,
        service_level=sl_all,
        service_level_answered=min(1.0, sl_all / p_answered) if p_answered > 0.0 else 0.0,
        asa_s=aht_s * p_wait * (answered_wait / q0) / p_answered if p_answered > 0.0 else math.inf,
        mean_wait_s=aht_s * p_abandon / theta,
        occupancy=min(1.0, a * p_answered / n),
    )
