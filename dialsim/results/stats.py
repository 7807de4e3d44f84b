"""Confidence intervals for the mean over replications (Student's t distribution).

Replications of a scenario are independent runs with their own seeds, so the
mean of a metric over n replications has the interval

    mean ± t(1 - α/2, n - 1) · s / √n

with ``s`` the sample standard deviation.  The t quantile is computed here
(regularized incomplete beta function by its continued fraction, then
bisection) so that dialsim needs no SciPy; it matches the printed tables to
their four digits (t(0.975, 1) = 12.706, t(0.975, 9) = 2.262, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

__all__ = ["mean_confidence_interval", "student_t_cdf", "student_t_quantile"]

_EPS = 1e-15
_TINY = 1e-300


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _beta_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom.

    >>> round(student_t_cdf(0.0, 5), 6)
    0.5
    >>> round(student_t_cdf(2.262157, 9), 4)
    0.975
    """
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom.

    >>> round(student_t_quantile(0.975, 1), 3)
    12.706
    >>> round(student_t_quantile(0.975, 4), 3)
    2.776
    >>> round(student_t_quantile(0.025, 4), 3)
    -2.776
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# A summary asks for the same quantile for every metric (same confidence, same
# number of replications); each costs some 40 evaluations of the t CDF.
_quantile = cache(student_t_quantile)


def mean_confidence_interval(values: Iterable[float], confidence: float = 0.95
                             ) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the finite ``values``: Student's t interval for the
    mean.  With fewer than two values the bounds are NaN (no spread to judge by).

    >>> mean, low, high, n = mean_confidence_interval([10.0, 12.0, 11.0, 13.0])
    >>> (mean, n, round(low, 3), round(high, 3))
    (11.5, 4, 9.446, 13.554)
    """
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = math.fsum(v) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    var = math.fsum((x - mean) ** 2 for x in v) / (n - 1)
    half = _quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return mean, mean - half, mean + half, n
