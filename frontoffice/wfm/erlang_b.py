"""Erlang B: blocking on a group of lines with no queue (M/M/N/N), and its retrial extension.

Everything is computed with the stable forward recursion

    B(A, 0) = 1,    B(A, n) = A·B(A, n-1) / (n + A·B(A, n-1)),

in floating point: no factorials, no powers, no overflow from 0.01 to 1,000,000 erlangs.

For large groups the recursion does not start at zero lines but a little below the traffic, at a
point ``n0`` chosen so that the starting error is provably negligible (see ``_recursion_start``).
That keeps one evaluation at ``A`` erlangs to roughly ``9·sqrt(A)`` steps instead of ``A``.
"""

from __future__ import annotations

import math

__all__ = [
    "erlang_b",
    "extended_erlang_b",
    "extended_lines_for_blocking",
    "lines_for_blocking",
    "traffic_for_blocking",
]

# Relative error we accept from starting the recursion part-way: below a double's 2**-53 = 1.1e-16.
_START_REL_ERROR = 1e-16
_L = -math.log(_START_REL_ERROR)
_LOG_TWO_L = math.log(2.0 * _L)
# Above this many standard deviations of lines beyond the traffic, 1/B could approach the float
# range (B ~ exp(-z**2/2)), so the recursion runs on B instead of on 1/B.
_RECIPROCAL_FORM_MAX_Z = 25.0
# B is looked at for underflow only this many standard deviations above the traffic.
_UNDERFLOW_MIN_Z = 30.0
# Natural log of the smallest positive (subnormal) double.
_LOG_SMALLEST = math.log(5e-324)
# Below this many lines the full recursion from zero is as cheap as working out a start point.
_FULL_RECURSION_LINES = 48


def _check_traffic(traffic: float) -> None:
    if not (traffic >= 0.0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, got {traffic!r}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


def _recursion_start(traffic: float, lines: int) -> tuple[int, float]:
    """Where to start the recursion for ``B(traffic, lines)``: ``(n0, 1/B estimate at n0)``.

    Write ``x(n) = 1/B(n)``; the recursion is linear, ``x(n) = 1 + (n/A)·x(n-1)``, so an error
    ``e`` in ``x(n0)`` reaches ``x(N)`` multiplied by ``p = prod_{n0<n<=N} n/A``, and ``x(N) >= 1``:
    the relative error of the result is at most ``p·e``. With ``s = A - n0``, ``δ = N - A`` and
    ``ln u <= u - 1``,

        ln p <= Σ (n - A)/A = -(s² - s - δ(δ+1)) / (2A).

    Bounds on ``x(n0) = Σ_j prod_{i<j} (n0 - i)/A`` for ``q = n0/A < 1``: every product is at most
    ``q^j``, and at least ``q^j·(1 - j(j-1)/(2·n0))``, so with ``U = 1/(1-q)``,

        U - D <= x(n0) <= U,    D = q²/(n0·(1-q)³) <= A³/(n0·s³).

    Starting from the middle errs by at most ``D/2 <= A²/s³`` once ``n0 >= A/2``. The slack
    ``s = 1 + sqrt(max(0, δ(δ+1)) + 2A(L + c))``, ``L = -ln(_START_REL_ERROR)``, makes
    ``s² - s >= (s-1)²``; ``c`` is chosen with ``c >= ½·ln A - 1.5·ln(2(L + c))``, which covers
    ``ln(A²/s³)``, so ``p·D/2 <= _START_REL_ERROR``. When ``n0 < A/2`` (small traffic) the cruder
    bracket ``1 <= x(n0) <= A/s`` is used instead (carried traffic cannot exceed ``n0`` lines),
    with ``c = ½·ln(A/2L)`` covering ``ln(A/s)``. Either way about ``8·sqrt(A)`` steps at
    ``N ≈ A`` instead of ``N``; if ``n0 <= 0`` the recursion simply starts from ``B(0) = 1``.
    """
    if lines <= _FULL_RECURSION_LINES or traffic <= 1.0:
        return 0, 1.0
    a = traffic
    delta = lines - a
    excess = max(0.0, delta * (delta + 1.0))
    half_log_a = 0.5 * math.log(a)
    c = half_log_a - 1.5 * _LOG_TWO_L
    if c < 0.0:
        c = half_log_a - 1.5 * math.log(2.0 * (_L + c))
    n0 = math.floor(a - 1.0 - math.sqrt(excess + 2.0 * a * (_L + c)))
    if n0 <= 0:
        return 0, 1.0
    if 2 * n0 >= a:
        q = n0 / a
        u = a / (a - n0)
        return n0, u - 0.5 * q * q * u * u * u / n0
    n0 = math.floor(a - 1.0 - math.sqrt(excess + 2.0 * a * (_L + max(0.0, half_log_a - 0.5 * _LOG_TWO_L))))
    if n0 <= 0:
        return 0, 1.0
    return n0, a / (a - n0)


def _erlang_b(traffic: float, lines: int) -> float:
    """Erlang B without argument checks (``traffic > 0``, ``lines >= 0``)."""
    a = traffic
    # B = P(X = N)/P(X <= N) for X ~ Poisson(A), and P(X <= N) >= 1/2 once N exceeds the median
    # (<= A + 1/3), so B <= 2·P(X = N); when that is below the float range, B is 0.
    if (
        lines > a + _UNDERFLOW_MIN_Z * math.sqrt(a) + 1.0
        and math.log(2.0) - a + lines * math.log(a) - math.lgamma(lines + 1.0) < _LOG_SMALLEST
    ):
        return 0.0
    n0, x = _recursion_start(traffic, lines)
    if n0 > 0 and lines - a <= _RECIPROCAL_FORM_MAX_Z * math.sqrt(a):
        # x(n) = 1/B(n) = 1 + x(n-1)·n/A: the fastest form. Dividing by A each time (rather than
        # multiplying by a rounded 1/A) keeps rounding errors random instead of compounding.
        for n in range(n0 + 1, lines + 1):
            x = 1.0 + x * n / a
        return 1.0 / x
    b = 1.0 / x
    for n in range(n0 + 1, lines + 1):
        ab = a * b
        b = ab / (n + ab)
    return b


def erlang_b(traffic: float, lines: int) -> float:
    """Probability that a call offered to ``lines`` lines carrying ``traffic`` erlangs is blocked.

    Erlang's loss formula (M/M/N/N; insensitive to the holding-time distribution). ``traffic`` may
    be fractional; ``lines`` is a whole number >= 0.
    """
    _check_traffic(traffic)
    if lines < 0:
        raise ValueError(f"lines must be >= 0, got {lines!r}")
    if lines == 0:
        return 1.0
    if traffic == 0.0:
        return 0.0
    return _erlang_b(traffic, lines)


def lines_for_blocking(traffic: float, blocking: float) -> int:
    """Smallest number of lines whose Erlang B blocking at ``traffic`` erlangs is ``<= blocking``."""
    _check_traffic(traffic)
    _check_probability("blocking", blocking)
    if traffic == 0.0:
        return 0
    return _lines_for_blocking(traffic, blocking)


def _lines_for_blocking(traffic: float, blocking: float) -> int:
    """``lines_for_blocking`` without argument checks (``traffic > 0``, ``0 < blocking < 1``)."""
    # B(n) >= 1 - n/A (the lines cannot carry more than n erlangs), so every n < A·(1 - blocking)
    # fails; start at the largest such n and step up: the first n that meets the target is minimal.
    n = max(0, math.ceil(traffic * (1.0 - blocking)) - 1)
    b = _erlang_b(traffic, n) if n > 0 else 1.0
    a = traffic
    while b > blocking:
        n += 1
        ab = a * b
        b = ab / (n + ab)
    return n


def traffic_for_blocking(lines: int, blocking: float) -> float:
    """Largest offered traffic (erlangs) that ``lines`` lines serve with Erlang B blocking ``<= blocking``.

    B is increasing in traffic, so this is a bisection between 0 and ``lines / (1 - blocking)``
    (where ``B >= 1 - lines/A`` already reaches the target), to a relative width of 1e-13.
    """
    _check_probability("blocking", blocking)
    if lines <= 0:
        return 0.0
    low, high = 0.0, lines / (1.0 - blocking)
    while high - low > 1e-13 * high:
        mid = 0.5 * (low + high)
        if _erlang_b(mid, lines) <= blocking:
            low = mid
        else:
            high = mid
    return low


def extended_erlang_b(traffic: float, lines: int, recall: float) -> float:
    """Blocking when a fraction ``recall`` of blocked callers try again (extended Erlang B).

    The erlang.com method: the offered load grows by the retrying share of the blocked load,
    ``offered = traffic + recall·offered·B(offered, lines)``, iterated to a fixed point; the result
    is the blocking of that total offered load. ``recall`` is in [0, 1).
    """
    _check_traffic(traffic)
    if not 0.0 <= recall < 1.0:
        raise ValueError(f"recall must be in [0, 1), got {recall!r}")
    if lines <= 0:
        return 1.0
    if traffic == 0.0:
        return 0.0
    offered = traffic
    for _ in range(10_000):
        blocking = _erlang_b(offered, lines)
        following = traffic + recall * offered * blocking
        if abs(following - offered) <= 1e-12 * following:
            return _erlang_b(following, lines)
        offered = following
    return _erlang_b(offered, lines)


def extended_lines_for_blocking(traffic: float, blocking: float, recall: float) -> int:
    """Smallest number of lines whose extended Erlang B blocking (with retrials) is ``<= blocking``."""
    _check_probability("blocking", blocking)
    n = lines_for_blocking(traffic, blocking)
    while extended_erlang_b(traffic, n, recall) > blocking:
        n += 1
    return n
