"""Rank stage: the Pareto front of (quality up, latency down). Pure functions, no TensorFlow."""
from typing import List, Sequence, Tuple


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
