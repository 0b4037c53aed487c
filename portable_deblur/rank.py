"""Rank stage: what a run optimises (``Objectives``: PSNR up, measured latency down, optionally the share of
MACs a delegate keeps) and the Pareto front over it. The Optuna study takes its directions from here, so the
sampler steers on the front the user sees. Pure functions, no TensorFlow."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from portable_deblur.records import ResultRow, equally_trained, latency_key

PSNR_OBJECTIVES = ("keras", "tflite")  # search.psnr: PSNR of the deployed .tflite, or of the Keras model


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """True if ``a`` is at least as good as ``b`` in every objective and strictly better in one."""
    better = [(x > y) if up else (x < y) for x, y, up in zip(a, b, maximize)]
    worse = [(x < y) if up else (x > y) for x, y, up in zip(a, b, maximize)]
    return any(better) and not any(worse)


def pareto_front(points: Sequence[Sequence[float]], maximize: Tuple[bool, ...] = (True, False)) -> List[int]:
    """Indices of the non-dominated points, in input order. Identical points are all kept.

    Default objectives: (PSNR, maximise) and (latency, minimise).
    """
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)]


@dataclass(frozen=True)
class Objectives:
    """What the front ranks: PSNR (``tflite`` or ``keras``, maximised) and the median latency at ``latency``
    (minimised)[, the accelerator MAC fraction on ``target``, maximised]; constraints keep rows off it."""

    latency: str
    psnr: str = "tflite"
    target: Optional[str] = None
    max_latency_ms: Optional[float] = None

    @classmethod
    def of(cls, cfg) -> "Objectives":
        key = cfg.search.latency or latency_key(cfg.measure.shapes[0], cfg.measure.threads[0])
        return cls(key, cfg.search.psnr, cfg.portability.objective, cfg.search.max_latency_ms)

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
        """The objective values of ``row``: its ``best_ms`` latency, and the target's MAC share as measured on
        this host's GPU accelerator when it was, else as the op table predicts (``ResultRow.mac_fraction``)."""
        base = (getattr(row, f"psnr_{self.psnr}"), row.best_ms(self.latency))
        return base + ((row.mac_fraction(self.target)[0],) if self.target else ())

    def constraints(self, row: ResultRow) -> Dict[str, float]:
        """Optuna constraints (feasible when every value is <= 0): required targets the row falls back on
        (``portability.on_violation=flag``), and latency over ``search.max_latency_ms``."""
        out = {"required_targets_missed": float(len(row.violations))}
        if self.max_latency_ms is not None:
            out["latency_over_budget_ms"] = self.values(row)[1] - self.max_latency_ms
        return out


def front_rows(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, the feasible Pareto-optimal ones sorted by latency). Only rows trained equally compete
    (``records.equally_trained``: the most trained); rows of lower rungs stay out of the front."""
    ok = [r for r in rows if r.status == "ok" and spec.latency in r.latency]
    feasible = [r for r in equally_trained(ok) if all(c <= 0 for c in spec.constraints(r).values())]
    front = [feasible[i] for i in pareto_front([spec.values(r) for r in feasible], spec.maximize)]
    return ok, sorted(front, key=lambda r: spec.values(r)[1])


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
