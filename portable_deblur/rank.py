"""Rank stage: what a run optimises (``Objectives``: PSNR up, measured latency down, optionally the share of
MACs a delegate keeps) and the Pareto front over it. The Optuna study takes its directions from here, so the
sampler steers on the front the user sees. Pure functions, no TensorFlow."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from portable_deblur.records import ResultRow, latency_key

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
        """The objective values of ``row``; the interleaved re-measurement is preferred when there is one."""
        base = (getattr(row, f"psnr_{self.psnr}"), row.best_ms(self.latency))
        return base + ((row.portability[self.target]["accelerator_mac_fraction"],) if self.target else ())

    def constraints(self, row: ResultRow) -> Dict[str, float]:
        """Optuna constraints (feasible when every value is <= 0): required targets the row falls back on
        (``portability.on_violation=flag``), and latency over ``search.max_latency_ms``."""
        out = {"required_targets_missed": float(len(row.violations))}
        if self.max_latency_ms is not None:
            out["latency_over_budget_ms"] = self.values(row)[1] - self.max_latency_ms
        return out


def front_rows(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, the feasible Pareto-optimal ones sorted by latency)."""
    ok = [r for r in rows if r.status == "ok" and spec.latency in r.latency]
    feasible = [r for r in ok if all(c <= 0 for c in spec.constraints(r).values())]
    front = [feasible[i] for i in pareto_front([spec.values(r) for r in feasible], spec.maximize)]
    return ok, sorted(front, key=lambda r: spec.values(r)[1])
