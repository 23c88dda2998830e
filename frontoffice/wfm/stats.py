"""Confidence intervals across independent replications (Student's t), standard library only.

The t quantile is computed, not looked up: Student's distribution function has a closed form for
an integer number of degrees of freedom (a finite trigonometric sum), and Newton's method from the
Cornish–Fisher expansion converges to machine precision in a few steps.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Estimate", "estimate", "t_quantile"]

_NORMAL = statistics.NormalDist()
# Beyond this many degrees of freedom the expansion alone is within 1e-10 of the quantile (its next
# term is of order z⁹/ν⁴), and the distribution function's sum would need ν/2 terms.
_EXPANSION_DF = 200


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` (integer >= 1) degrees of freedom."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if df % 2 == 1:
        # A(t|ν) = 2/π·(θ + sinθ·cosθ·(1 + 2/3·cos²θ + ... + (2·4···(ν-3))/(1·3···(ν-2))·cos^(ν-3)θ))
        total = 0.0
        if df > 1:
            term = 1.0
            total = 1.0
            for k in range(1, (df - 3) // 2 + 1):
                term *= c2 * (2 * k) / (2 * k + 1)
                total += term
            total *= s * math.cos(theta)
        a = 2.0 / math.pi * (theta + total)
    else:
        # A(t|ν) = sinθ·(1 + 1/2·cos²θ + (1·3)/(2·4)·cos⁴θ + ... + (1·3···(ν-3))/(2·4···(ν-2))·cos^(ν-2)θ)
        term = 1.0
        total = 1.0
        for k in range(1, (df - 2) // 2 + 1):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        a = s * total
    return 0.5 * (1.0 + a)


def _t_pdf(t: float, df: int) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``t_quantile(0.975, 9)`` =
    2.2622)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be between 0 and 1 exclusive, got {p!r}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = _NORMAL.inv_cdf(p)
    v = float(df)
    t = (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )
    if df > _EXPANSION_DF:
        return t
    for _ in range(20):
        step = (_t_cdf(t, df) - p) / _t_pdf(t, df)
        t -= step
        if abs(step) <= 1e-13 * max(1.0, abs(t)):
            break
    return t


class Estimate(NamedTuple):
    """A mean over independent replications and its confidence interval.

    ``half_width`` is that of the 95 % Student-t interval ``mean ± t(0.975, n-1)·std/√n``; ``std``
    is the sample standard deviation across replications and ``n`` the number of replications that
    had a value (a replication where nothing was answered has no ASA). With ``n < 2`` the half
    width is infinite.
    """

    mean: float
    half_width: float
    std: float
    n: int

    @property
    def low(self) -> float:
        """Lower end of the 95 % interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the 95 % interval."""
        return self.mean + self.half_width

    @property
    def stderr(self) -> float:
        """Standard error of the mean: ``std / √n``."""
        return self.std / math.sqrt(self.n) if self.n > 0 else math.inf

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The two-sided Student-t interval at another confidence ``level`` (e.g. 0.99)."""
        if self.n < 2:
            return (-math.inf, math.inf)
        half = t_quantile(0.5 + level / 2.0, self.n - 1) * self.stderr
        return (self.mean - half, self.mean + half)

    def contains(self, value: float, level: float = 0.95) -> bool:
        """Whether ``value`` lies in the interval at ``level``."""
        low, high = self.interval(level)
        return low <= value <= high


def estimate(values: Sequence[float]) -> Estimate:
    """Mean, 95 % t-interval half width and standard deviation of per-replication ``values``."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.inf, math.nan, 0)
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, math.inf, 0.0, 1)
    std = statistics.stdev(values, mean)
    return Estimate(mean, t_quantile(0.975, n - 1) * std / math.sqrt(n), std, n)
