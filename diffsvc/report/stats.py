"""The statistics behind every verdict (pure; no scipy).

- `fisher_greater`: Fisher's exact test, one-sided: is the candidate's rate (x1 of n1) higher
  than the baseline's (x0 of n0)? The p-value is the hypergeometric upper tail.
- `binomial_greater`: the exact binomial test, one-sided: is x of n above a rate p0? Used
  when there is no baseline sample at all (the null rate is then the margins' floor).
- `wilson`: the Wilson score interval of one proportion; `newcombe`: the interval of a
  difference of two proportions (Newcombe's hybrid score method), the effect size shown.

Tails are summed in log space from the observed value outwards and stop once the terms no
longer matter, so a test over a million pairs costs a few hundred terms."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

_NEGLIGIBLE = 1e-17


def _upper_tail(log_term: Callable[[int], float], start: int, stop: int) -> float:
    """sum(exp(log_term(k)) for k in start..stop), stopping when terms become negligible
    after they started to fall."""
    total, previous = 0.0, -math.inf
    for k in range(start, stop + 1):
        t = math.exp(log_term(k))
        total += t
        if t < previous and t <= _NEGLIGIBLE * max(total, 1e-300):
            break
        previous = t
    return min(1.0, total)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def binomial_greater(x: int, n: int, p0: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p0): small when x of n is above p0."""
    if x <= 0:
        return 1.0
    if p0 <= 0.0:
        return 0.0
    if p0 >= 1.0:
        return 1.0
    lp, lq = math.log(p0), math.log1p(-p0)
    return _upper_tail(lambda k: _log_comb(n, k) + k * lp + (n - k) * lq, x, n)


def fisher_greater(x1: int, n1: int, x0: int, n0: int) -> float:
    """One-sided Fisher's exact p-value that x1/n1 is greater than x0/n0."""
    if n1 <= 0 or x1 <= 0:
        return 1.0
    if n0 <= 0:
        return 1.0
    total, successes = n1 + n0, x1 + x0
    top = min(successes, n1)
    log_den = _log_comb(total, n1)
    return _upper_tail(lambda k: _log_comb(successes, k) + _log_comb(total - successes, n1 - k)
                       - log_den, x1, top)


def z_of(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.96 for 0.95)."""
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(x: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of x/n ((0, 1) with no observations)."""
    if n <= 0:
        return 0.0, 1.0
    z = z_of(confidence)
    p = x / n
    z2n = z * z / n
    centre = p + z2n / 2
    spread = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return max(0.0, (centre - spread) / (1 + z2n)), min(1.0, (centre + spread) / (1 + z2n))


def newcombe(x1: int, n1: int, x0: int, n0: int, confidence: float) -> tuple[float, float, float]:
    """The difference x1/n1 - x0/n0 and its interval (Newcombe's method 10)."""
    p1 = x1 / n1 if n1 else 0.0
    p0 = x0 / n0 if n0 else 0.0
    l1, u1 = wilson(x1, n1, confidence)
    l0, u0 = wilson(x0, n0, confidence) if n0 else (0.0, 0.0)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, max(-1.0, low), min(1.0, high)
