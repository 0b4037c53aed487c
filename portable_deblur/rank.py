"""Rank stage: what a run optimises (``Objectives``: PSNR up, measured latency down, optionally the share of
MACs a delegate keeps) and the Pareto front over it. The Optuna study takes its directions from here, so the
sampler steers on the front the user sees. Pure functions, no TensorFlow.

The front the user sees knows noise (``noisy_front``): a point leaves it only when another is at least as
good within noise on every objective and better beyond noise on at least one. Quality is compared by the
paired difference over the validation frames, latency by the paired ratios (``confidence.py``); rows that are
indistinguishable on every objective form a tie group."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from portable_deblur.confidence import Interval, paired_difference, ratio_of, verdict
from portable_deblur.records import ResultRow, equally_trained
from portable_deblur.latency import latency_key

Verdicts = List[List[int]]  # [i][j]: +1 when i is better than j beyond noise, -1 worse, 0 tied

PSNR_OBJECTIVES = ("keras", "tflite")  # search.psnr: PSNR of the deployed .tflite, or of the Keras model


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """True if ``a`` is at least as good as ``b`` in every objective and strictly better in one."""
    better = [(x > y) if up else (x < y) for x, y, up in zip(a, b, maximize)]
    worse = [(x < y) if up else (x > y) for x, y, up in zip(a, b, maximize)]
    return any(better) and not any(worse)


def noisy_front(verdicts: Sequence[Verdicts]) -> List[int]:
    """Indices on the front that knows noise, one verdict matrix per objective (``Verdicts``): a point leaves it
    when another is at least as good within noise on every objective (never worse beyond it) and better beyond
    noise on at least one -- it is *beaten*.

    Beating within noise need not be transitive, and a duel can order two points against their estimates, so
    points can beat each other in a circle; read literally, such a circle would empty the front. So the front
    is every point no point outside its circle (its strongly connected component of the beaten-by graph) beats:
    a point beaten by no one stays, a circle beaten by no one stays whole (its points are a tie), and
    everything a kept point beats, or that something beaten beats, leaves."""
    n = len(verdicts[0]) if verdicts else 0
    beats = np.array([[i != j and all(v[i][j] >= 0 for v in verdicts) and any(v[i][j] > 0 for v in verdicts)
                       for j in range(n)] for i in range(n)], dtype=bool).reshape(n, n)
    reach = beats.copy()
    for k in range(n):  # transitive closure (Floyd-Warshall on booleans)
        reach |= np.outer(reach[:, k], reach[k, :])
    same = reach & reach.T | np.eye(n, dtype=bool)  # i and j in one circle (or i == j)
    from_outside = beats & ~same  # i beats k from outside k's circle
    return [j for j in range(n) if not from_outside[:, same[j]].any()]


def tie_groups(verdicts: Sequence[Verdicts], order: Optional[Sequence[int]] = None) -> List[List[int]]:
    """Tie groups (two or more indices) by leader: taking the indices in ``order`` (default: index order, e.g.
    front first, fastest first), each one not yet grouped leads a group of every ungrouped index tied with it
    on every objective. Ties do not chain: a ~ b and b ~ c does not put c with a when a beats c beyond noise."""
    order = list(range(len(verdicts[0]) if verdicts else 0)) if order is None else list(order)
    grouped, groups = set(), []
    for lead in order:
        if lead in grouped:
            continue
        members = [lead] + [j for j in order if j not in grouped and j != lead and all(v[lead][j] == 0 for v in verdicts)]
        grouped.update(members)
        if len(members) > 1:
            groups.append(members)
    return groups


def pareto_front(points: Sequence[Sequence[float]], maximize: Tuple[bool, ...] = (True, False)) -> List[int]:
    """Indices of the non-dominated points, in input order. Identical points are all kept.

    Default objectives: (PSNR, maximise) and (latency, minimise).
    """
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)]


def ranked_key(cfg) -> str:
    """The latency the front ranks by: ``search.latency``, else the largest measured resolution (the frames an
    app runs: latency does not scale with pixels alike for every op, so a small size can order networks
    differently) at the first thread count."""
    if cfg.search.latency:
        return cfg.search.latency
    largest = max(cfg.measure.shapes, key=lambda s: s[0] * s[1])  # the first of equal sizes
    return latency_key(largest, cfg.measure.threads[0])


@dataclass(frozen=True)
class Objectives:
    """What the front ranks: PSNR (``tflite`` or ``keras``, maximised) and the median latency at ``latency``
    (minimised)[, the accelerator MAC fraction on ``target``, maximised]; constraints keep rows off it."""

    latency: str
    psnr: str = "tflite"
    target: Optional[str] = None
    max_latency_ms: Optional[float] = None
    level: float = 0.95  # rank.confidence: every interval the front and its ties are judged by
    required: Tuple[str, ...] = ()  # portability.require: the accelerators a row must run on fully
    quality_margin_db: float = 0.0  # rank.quality_margin_db: a PSNR difference must clear it beyond noise
    latency_margin: float = 0.0  # rank.latency_margin: a latency ratio must clear 1 +- it beyond noise

    @classmethod
    def of(cls, cfg) -> "Objectives":
        return cls(ranked_key(cfg), cfg.search.psnr, cfg.portability.objective, cfg.search.max_latency_ms,
                   cfg.rank.confidence, tuple(cfg.portability.require), cfg.rank.quality_margin_db,
                   cfg.rank.latency_margin)

    @property
    def maximize(self) -> Tuple[bool, ...]:
        return (True, False, True) if self.target else (True, False)

    @property
    def directions(self) -> List[str]:
        """The Optuna study's directions: the same objectives, in the same order, as the front."""
        return ["maximize" if up else "minimize" for up in self.maximize]

    @property
    def names(self) -> List[str]:
        return [f"psnr_{self.psnr}", f"ms@{self.latency}"] + ([f"accel_macs_{self.target}"] if self.target else [])

    def values(self, row: ResultRow) -> Tuple[float, ...]:
        """The objective values of ``row``: its PSNR (``ResultRow.ranked_psnr``: a screened row's Keras model's),
        its ``best_ms`` latency, and the target's MAC share as measured on this host's GPU accelerator when it
        was, else as the op table predicts (``ResultRow.mac_fraction``)."""
        base = (row.ranked_psnr(self.psnr), row.best_ms(self.latency))
        return base + ((row.mac_fraction(self.target)[0],) if self.target else ())

    def constraints(self, row: ResultRow) -> Dict[str, float]:
        """Optuna constraints (feasible when every value is <= 0): required targets the row falls back on
        (``portability.on_violation=flag``), and latency over ``search.max_latency_ms``."""
        out = {"required_targets_missed": float(len(row.violations))}
        if self.max_latency_ms is not None:
            out["latency_over_budget_ms"] = self.values(row)[1] - self.max_latency_ms
        return out


def competing(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, those that compete for the front): only rows trained equally compete
    (``records.equally_trained``: the most trained; rows of lower rungs stay out), and only feasible ones."""
    ok = [r for r in rows if r.status == "ok" and spec.latency in r.latency]
    return ok, [r for r in equally_trained(ok) if all(c <= 0 for c in spec.constraints(r).values())]


def quality_difference(a: ResultRow, b: ResultRow, spec: Objectives) -> Interval:
    """``a``'s PSNR minus ``b``'s, paired over the ranked validation frames, with its interval; a plain
    difference (zero-wide) for rows of runs that kept no per-frame figures."""
    if a.frames is not None and b.frames is not None and a.frames.names == b.frames.names:
        return paired_difference(a.ranked_frames(spec.psnr), b.ranked_frames(spec.psnr), spec.level)
    d = a.ranked_psnr(spec.psnr) - b.ranked_psnr(spec.psnr)
    return Interval(d, d, d, spec.level)


def gain_interval(row: ResultRow, spec: Objectives) -> Interval:
    """``row``'s PSNR gain over the blurry input, paired over the ranked frames, with its interval (zero-wide
    for rows of runs that kept no per-frame figures)."""
    if row.frames is None:
        return Interval(row.psnr_gain, row.psnr_gain, row.psnr_gain, spec.level)
    return paired_difference(row.ranked_frames(spec.psnr), row.frames.values("blurry"), spec.level)


def latency_ratio(a: ResultRow, b: ResultRow, spec: Objectives) -> Interval:
    """``a``'s latency over ``b``'s with its interval: their A/B duel where one was run, else the quotient of
    their ratios to the reference (conservative)."""
    duel = next((d for d in a.duels if d.other == b.id), None)
    if duel is not None:
        return Interval(duel.ratio, duel.low, duel.high, spec.level)
    back = next((d for d in b.duels if d.other == a.id), None)
    if back is not None:
        return Interval(1 / back.ratio, 1 / back.high, 1 / back.low, spec.level)
    return ratio_of(a.latency_interval(spec.latency), b.latency_interval(spec.latency))


def faster(ratio: Interval, margin: float = 0.0) -> int:
    """+1 when a latency ratio a/b is below ``1 - margin`` beyond noise (a is faster), -1 when above
    ``1 + margin``, 0 when its interval reaches into that band (a tie)."""
    return (ratio.high < 1.0 - margin) - (ratio.low > 1.0 + margin)


def verdicts(rows: Sequence[ResultRow], spec: Objectives) -> List[Verdicts]:
    """One ``Verdicts`` matrix per objective of ``spec`` over ``rows``: paired quality differences, latency
    ratios (duels first), and the accelerator MAC share exactly (it is counted, not measured with noise)."""
    n = range(len(rows))
    margin = spec.quality_margin_db
    quality = [[verdict(quality_difference(rows[i], rows[j], spec), margin) if i != j else 0 for j in n] for i in n]
    speed = [[faster(latency_ratio(rows[i], rows[j], spec), spec.latency_margin) if i != j else 0 for j in n]
             for i in n]
    out = [quality, speed]
    if spec.target:
        share = [r.mac_fraction(spec.target)[0] for r in rows]
        out.append([[(share[i] > share[j]) - (share[i] < share[j]) for j in n] for i in n])
    return out


def front_rows(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, the feasible rows on the noise-aware front sorted by latency): ``competing`` rows that no
    other beats beyond noise (``noisy_front``)."""
    ok, compete = competing(rows, spec)
    front = [compete[i] for i in noisy_front(verdicts(compete, spec))] if compete else []
    return ok, sorted(front, key=lambda r: spec.values(r)[1])



def ties(rows: Sequence[ResultRow], spec: Objectives) -> List[List[str]]:
    """The tie groups among the rows competing for the front (``tie_groups``, led by front rows, fastest
    first): ids indistinguishable on every objective from their group's first."""
    _, compete = competing(rows, spec)
    if not compete:
        return []
    judged = verdicts(compete, spec)
    on_front = set(noisy_front(judged))
    order = sorted(range(len(compete)), key=lambda i: (i not in on_front, spec.values(compete[i])[1]))
    return [[compete[i].id for i in g] for g in tie_groups(judged, order)]


def nondominated_sort(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> List[List[int]]:
    """Indices of ``points`` in successive Pareto fronts (NSGA-II's non-dominated sorting): the first front
    is ``pareto_front``, the second is the front of what is left, and so on."""
    left, fronts = list(range(len(points))), []
    while left:
        front = [i for i in left if not any(dominates(points[j], points[i], maximize) for j in left if j != i)]
        fronts.append(front)
        left = [i for i in left if i not in front]
    return fronts


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> Dict[int, float]:
    """NSGA-II crowding distance of each index in ``front``: the sum over objectives of the normalised gap
    between its neighbours; the extremes of every objective get infinity (they are always kept first)."""
    unique = sorted({tuple(points[i]) for i in front})  # identical points share one distance
    dist = {p: 0.0 for p in unique}
    for k in range(len(unique[0]) if unique else 0):
        ordered = sorted(unique, key=lambda p: p[k])
        low, high = ordered[0][k], ordered[-1][k]
        dist[ordered[0]] = dist[ordered[-1]] = float("inf")
        if high == low:
            continue
        for before, p, after in zip(ordered, ordered[1:-1], ordered[2:]):
            dist[p] += (after[k] - before[k]) / (high - low)
    return {i: dist[tuple(points[i])] for i in front}


def promote(points: Sequence[Sequence[float]], maximize: Sequence[bool], keep: int,
            feasible: Optional[Sequence[bool]] = None, names: Optional[Sequence[str]] = None) -> List[int]:
    """The ``keep`` best indices of ``points`` for a rung's promotion: feasible before infeasible, then by
    non-dominated front, within a front by crowding distance (extremes first), exact ties by ``names``
    (else index) so every worker computes the same set. Returned in that order."""
    feasible = list(feasible) if feasible is not None else [True] * len(points)
    names = list(names) if names is not None else [f"{i:09d}" for i in range(len(points))]
    order: List[int] = []
    for group in ([i for i, f in enumerate(feasible) if f], [i for i, f in enumerate(feasible) if not f]):
        sub = [points[i] for i in group]
        for front in nondominated_sort(sub, maximize):
            dist = crowding_distance(sub, front)
            order += [group[i] for i in sorted(front, key=lambda i: (-dist[i], names[group[i]]))]
    return order[:max(keep, 0)]


def promotion_count(candidates: int, eta: int) -> int:
    """How many of ``candidates`` a rung promotes with ``search.eta``: the best 1/eta, at least one."""
    return max(1, candidates // eta) if candidates else 0


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float], maximize: Sequence[bool]) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (exact, by slicing: fine for the
    tens of points of a front). Points not better than the reference in every objective add nothing."""
    flip = [-1.0 if up else 1.0 for up in maximize]  # as minimisation
    ref = [r * f for r, f in zip(reference, flip)]
    pts = [[v * f for v, f in zip(p, flip)] for p in points]
    pts = [p for p in pts if all(v < r for v, r in zip(p, ref))]
    return _hv_min(pts, ref)


def _hv_min(points: List[List[float]], ref: List[float]) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    ordered = sorted(points, key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(ordered):  # slab between this point's last coordinate and the next one's
        top = ordered[i + 1][-1] if i + 1 < len(ordered) else ref[-1]
        if top > p[-1]:
            volume += (top - p[-1]) * _hv_min([q[:-1] for q in ordered[:i + 1]], ref[:-1])
    return volume


def hv_reference(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[float, ...]:
    """A hypervolume reference point for ``rows``: the blurry input's PSNR (a network must beat doing
    nothing), 1.1x the slowest latency, and 0 for an accelerator MAC fraction. Pass the union of the runs
    being compared so every front is measured from the same point."""
    ok = [r for r in rows if r.status == "ok" and spec.latency in r.latency]
    psnr = min((r.psnr_blurry for r in ok), default=0.0)
    slowest = max((r.best_ms(spec.latency) for r in ok), default=1.0)
    return (psnr, 1.1 * slowest) + ((0.0,) if spec.target else ())


def front_hypervolume(rows: Sequence[ResultRow], spec: Objectives, reference: Sequence[float]) -> float:
    """Hypervolume of the feasible front of ``rows`` (dB x ms[ x fraction]) from ``reference``."""
    _, front = front_rows(rows, spec)
    return hypervolume([spec.values(r) for r in front], reference, spec.maximize)
