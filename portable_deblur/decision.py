"""What a run recommends shipping, and how sure it is: the noise-aware front with its tie groups, a
recommendation in words (quality, speed, what to ship), and how stable the ranking is when the validation
frames are resampled. The console summary, ``pareto.csv``, the study and the top of the report all read one
``Decision``. Pure functions over result rows, no TensorFlow."""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from portable_deblur.confidence import resampled_frames, verdict
from portable_deblur.rank import (Objectives, competing, faster, front_rows, latency_ratio, pareto_front,
                                  quality_difference, ties)
from portable_deblur.records import OPTIMIZATION_KEYS, ResultRow


@dataclass(frozen=True)
class Decision:
    """The front (sorted by latency), the tie groups among the competing rows, the recommendation's lines and,
    per competing row, the share of frame resamples in which it is on the front and in which it is best."""

    front: Tuple[ResultRow, ...]
    ties: Tuple[Tuple[str, ...], ...]
    lines: Tuple[str, ...]
    stability: Tuple[Dict[str, object], ...] = ()

    def group_of(self, row_id: str) -> str:
        """The tie group's letter (``A``, ``B``, ...) of ``row_id``, or "" when it is tied with none."""
        return next((chr(ord("A") + i) for i, g in enumerate(self.ties) if row_id in g), "")


def label(row: ResultRow) -> str:
    """A row's searched values and optimization, short, as the console, the report and the plot name it:
    ``relu/depth_to_space``, ``relu/transpose int8``, ``1-1-2/relu`` (a list value), or the arch."""
    values = "/".join("-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                      for k, v in sorted(row.values.items()) if k not in OPTIMIZATION_KEYS)
    return (values or row.arch) + ("" if row.optimization == "fp32" else f" {row.optimization}")


def _pct(level: float) -> str:
    return f"{100 * level:g} %"


def quality_line(rows: Sequence[ResultRow], spec: Objectives) -> str:
    """``quality: the 6 are tied (largest paired difference 0.03 dB, 95 % interval +-0.02)``, or the best
    row and what it gains over the next best beyond noise."""
    if len(rows) < 2:
        return f"quality: one candidate ({label(rows[0])})" if rows else "quality: nothing to compare"
    margin = spec.quality_margin_db
    order = sorted(rows, key=lambda r: -spec.values(r)[0])
    pairs = [(quality_difference(a, b, spec), a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    widest = max(pairs, key=lambda p: abs(p[0].estimate))
    below = f"; differences under {margin:g} dB count as ties" if margin else ""
    if all(verdict(d, margin) == 0 for d, _, _ in pairs):
        return (f"quality: the {len(rows)} are tied (largest paired difference {abs(widest[0].estimate):.3f} dB, "
                f"{_pct(spec.level)} interval +-{widest[0].half_width:.3f}{below}): choose by latency and "
                f"portability")
    best, second = order[0], order[1]
    d = quality_difference(best, second, spec)
    tied = [label(r) for r in order[1:] if verdict(quality_difference(best, r, spec), margin) == 0]
    if tied:
        return (f"quality: {label(best)} is best, tied with {', '.join(tied)} (within the {_pct(spec.level)} "
                f"intervals{below}); the largest difference is {widest[0].estimate:+.3f} dB [{widest[0].low:+.3f}, "
                f"{widest[0].high:+.3f}] ({label(widest[1])} over {label(widest[2])})")
    return (f"quality: {label(best)} is best, {d.estimate:+.3f} dB [{d.low:+.3f}, {d.high:+.3f}] over "
            f"{label(second)}, the next")


def latency_line(rows: Sequence[ResultRow], spec: Objectives) -> str:
    """``fastest: relu/depth_to_space 9.2 ms [9.0, 9.4], 7 % [4, 10] faster than relu/bilinear``."""
    if not rows:
        return "fastest: nothing measured"
    order = sorted(rows, key=lambda r: r.best_ms(spec.latency))
    first = order[0]
    text = f"fastest: {label(first)} {first.latency_interval(spec.latency).text('.1f', ' ms')}"
    if len(order) > 1:
        ratio = latency_ratio(first, order[1], spec)
        gain = (1 - ratio.estimate) * 100, (1 - ratio.high) * 100, (1 - ratio.low) * 100
        how = "faster than" if faster(ratio, spec.latency_margin) > 0 else "tied with"
        margin = f" (differences under {100 * spec.latency_margin:g} % count as ties)" if spec.latency_margin else ""
        text += f", {gain[0]:.1f} % [{gain[1]:.1f}, {gain[2]:.1f}] {how} {label(order[1])}{margin}"
    return text


def ship_line(front: Sequence[ResultRow], groups: Sequence[Sequence[str]], spec: Objectives) -> str:
    """What to ship: the one front point, a tied group of them, or the trade-off between its ends."""
    within = [f"within search.max_latency_ms={spec.max_latency_ms:g}"] if spec.max_latency_ms is not None else []
    within += [f"running fully on {', '.join(spec.required)}"] if spec.required else []
    where = f" ({'; '.join(within)})" if within else ""
    if not front:
        return f"ship: no artifact qualifies{where}"
    ids = {r.id for r in front}
    if len(front) == 1:
        return f"ship: {label(front[0])}{where}, better beyond noise or tied on every objective"
    if any(ids <= set(g) for g in groups):
        pick = most_portable(front)
        return (f"ship: {label(pick)}{where}: tied on every objective ({_pct(spec.level)}) with "
                f"{', '.join(label(r) for r in front if r is not pick)}, and {_fallbacks(pick)}")
    fast, good = front[0], max(front, key=lambda r: spec.values(r)[0])
    if good is fast:  # the front's points order each other in a circle within noise: a tie all the same
        pick = most_portable(front)
        return (f"ship: {label(pick)}{where}: none of {', '.join(label(r) for r in front)} is beaten beyond noise "
                f"(they order each other in a circle), and {_fallbacks(pick)}")
    d, ratio = quality_difference(good, fast, spec), latency_ratio(good, fast, spec)
    return (f"ship: a trade-off{where}: {label(fast)} is fastest; {label(good)} gains {d.estimate:+.3f} dB "
            f"[{d.low:+.3f}, {d.high:+.3f}] for {100 * (ratio.estimate - 1):+.0f} % latency")


def most_portable(rows: Sequence[ResultRow]) -> ResultRow:
    """Of tied rows, the one the fewest portability targets reject ops of, then the fastest (rows are given
    fastest first)."""
    return min(rows, key=lambda r: sum(bool(rep["fallback"]) for rep in r.portability.values()))


def _fallbacks(row: ResultRow) -> str:
    """``every target runs all of it``, or which targets fall back on which ops."""
    rejected = {t: " ".join(rep["fallback"]) for t, rep in sorted(row.portability.items()) if rep["fallback"]}
    if not rejected:
        return "every portability target runs all of its ops" if row.portability else "no portability was checked"
    return "the fewest targets fall back (" + "; ".join(f"{t}: {ops}" for t, ops in rejected.items()) + ")"


def stability(rows: Sequence[ResultRow], spec: Objectives, resamples: int, seed: int = 0) -> List[Dict[str, object]]:
    """Per row: the share of ``resamples`` bootstrap resamples of the validation frames (the same resample for
    every row) in which it is on the Pareto front of the resampled mean quality against its latency, and in
    which its quality is the best. Rows without per-frame figures keep their mean in every resample."""
    if not rows:
        return []
    n = max((len(r.ranked_frames(spec.psnr)) for r in rows if r.frames is not None), default=0)
    scores = [np.asarray(r.ranked_frames(spec.psnr)) if r.frames is not None and n else None for r in rows]
    rest = [tuple(spec.values(r)[1:]) for r in rows]
    on_front, best = np.zeros(len(rows)), np.zeros(len(rows))
    for idx in resampled_frames(max(n, 1), resamples, seed):
        quality = [float(s[idx].mean()) if s is not None else spec.values(r)[0] for s, r in zip(scores, rows)]
        for i in pareto_front([(q, *o) for q, o in zip(quality, rest)], spec.maximize):
            on_front[i] += 1
        best[int(np.argmax(quality))] += 1
    return [{"artifact": r.id, "on_front_share": float(f / resamples), "best_quality_share": float(b / resamples)}
            for r, f, b in zip(rows, on_front, best)]


def decide(rows: Sequence[ResultRow], spec: Objectives, resamples: int = 200) -> Decision:
    """The ``Decision`` over ``rows`` (every row of a run; only the equally trained feasible ones compete)."""
    _, compete = competing(rows, spec)
    _, front = front_rows(rows, spec)
    groups = ties(rows, spec)
    lines = (quality_line(compete, spec), latency_line(compete, spec), ship_line(front, groups, spec))
    return Decision(tuple(front), tuple(tuple(g) for g in groups), lines,
                    tuple(stability(compete, spec, resamples)))
