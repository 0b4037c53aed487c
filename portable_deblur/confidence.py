"""How sure a comparison is: intervals for the figures the front ranks by. Pure functions, no TensorFlow.

Quality is compared *paired*: two artifacts are judged on the same validation frames, so a frame's difficulty
(0.37 dB a frame between two starts, 0.03-0.05 dB between two upsamplers of one network) cancels in the
per-frame difference. The interval of a mean -- a gain over the blurry input, or the mean paired difference
of two artifacts -- is Student's t on the per-frame values: exact for normal per-frame differences, close for
the 24-48 frames of a default validation, deterministic (the same run gives the same verdict), and cheap
enough to compute for every pair of a front. A percentile bootstrap over so few frames is narrower than its
nominal level (it ignores that the spread itself is estimated), so it would call ties decisions; the
bootstrap is used where only resampling answers the question: how often a candidate stays on the front
(``resampled_frames``).

Latency is compared as a ratio to a network timed in alternation with it (the run's reference, or a front
neighbour): a slow window of the machine slows both runs of a pair alike and cancels in their ratio. The
interval of the median ratio is distribution-free (order statistics of the binomial), since run times are
skewed and have outliers.
"""
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from portable_deblur.registry import ConfigError

LEVELS = (0.5, 0.999)  # the range rank.confidence may take (exclusive at neither end)


def check_level(level: float, name: str = "rank.confidence") -> float:
    """``level`` as a float, or a ConfigError naming the valid range."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        value = float("nan")
    if not LEVELS[0] <= value <= LEVELS[1]:
        raise ConfigError(f"{name} must be a confidence level between {LEVELS[0]} and {LEVELS[1]} "
                          f"(e.g. 0.95 for 95 % intervals); got {level!r}")
    return value


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval [low, high] at ``level``."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (a difference that covers 0 is a tie)."""
        return self.low <= value <= self.high

    def scaled(self, factor: float) -> "Interval":
        """The interval of ``factor`` times the estimate (a ratio turned into milliseconds)."""
        ends = sorted((self.low * factor, self.high * factor))
        return Interval(self.estimate * factor, ends[0], ends[1], self.level)

    def text(self, fmt: str = ".2f", unit: str = "") -> str:
        """``9.20 ms [9.00, 9.40]``."""
        return f"{self.estimate:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student-t interval (infinitely wide for fewer than two values; zero
    wide when every value is the same)."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level)
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, -float("inf"), float("inf"), level)
    from scipy import stats

    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return Interval(mean, mean - half, mean + half, level)


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of ``a - b`` over the same items (frames), with the paired t interval: what ``a`` gains over ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a paired difference needs the same frames on both sides; got {a.shape} and {b.shape}")
    return mean_interval(a - b, level)


def median_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The median of ``values`` with a distribution-free interval: the order statistics x(k) and x(n+1-k)
    for the largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2. With too few values for the level
    (fewer than 6 at 95 %) the interval is their whole range, which covers the median less often."""
    x = np.sort(np.asarray(values, np.float64)[np.isfinite(values)])
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level)
    k = max(_median_rank(n, (1 - level) / 2), 1)
    return Interval(float(np.median(x)), float(x[k - 1]), float(x[n - k]), level)


def _median_rank(n: int, alpha: float) -> int:
    """The smallest k with P(Binomial(n, 1/2) <= k) >= ``alpha`` (SciPy's ``binom.ppf``), summed in floats from
    ten standard deviations below the mean, where the tail left out is below 1e-22: a few hundred terms even
    for the tens of thousands of pairs a duel of tiny files reaches, and no SciPy in the timing processes,
    which start once per measured file."""
    start = max(0, int(n / 2 - 5 * math.sqrt(n)))
    pmf = math.exp(math.lgamma(n + 1) - math.lgamma(start + 1) - math.lgamma(n - start + 1) - n * math.log(2))
    cdf = 0.0
    for k in range(start, n + 1):
        cdf += pmf
        if cdf >= alpha:
            return k
        pmf *= (n - k) / (k + 1)
    return n


def ratio_of(a: Interval, b: Interval) -> Interval:
    """``a / b`` for two positive intervals measured independently (each against the same reference): the
    extremes of the quotient, a conservative interval."""
    return Interval(a.estimate / b.estimate, a.low / b.high, a.high / b.low, a.level)


def resampled_frames(n: int, count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` bootstrap resamples of ``n`` frames (indices drawn with replacement), the same for every
    artifact so each resample is one paired world."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.integers(0, n, n)


def verdict(difference: Interval, margin: float = 0.0) -> int:
    """+1 when the difference is above ``margin`` beyond noise (its whole interval is), -1 when below
    ``-margin``, 0 otherwise (a tie: the interval reaches into [-margin, margin])."""
    if difference.low > margin:
        return 1
    if difference.high < -margin:
        return -1
    return 0
