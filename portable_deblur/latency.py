"""Latency keys and the figure a row is ranked by: ``LatencyKey`` (``256x256_t2``: input height x width,
threads), a measurement's own median, and the paired ratio to the run's reference read in the run's unit."""
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, Tuple

from portable_deblur.estimates import PairedLatency
from portable_deblur.registry import ConfigError


@dataclass(frozen=True)
class LatencyKey:
    """Which latency measurement: input height x width and thread count, written ``256x256_t2``."""

    height: int
    width: int
    threads: int

    def __str__(self) -> str:
        return f"{self.height}x{self.width}_t{self.threads}"

    @property
    def shape(self) -> Tuple[int, int]:
        return self.height, self.width

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @classmethod
    def parse(cls, text: str) -> "LatencyKey":
        match = re.fullmatch(r"(\d+)x(\d+)_t(\d+)", str(text))
        if match is None:
            raise ConfigError(f"a latency key looks like HxW_tN (e.g. 256x256_t2); got {text!r}")
        return cls(*map(int, match.groups()))


def latency_key(shape, threads: int) -> str:
    """Key of one latency measurement: ``256x256_t2`` (height x width, threads)."""
    return str(LatencyKey(int(shape[0]), int(shape[1]), int(threads)))


def best_ms(latency: Dict[str, Any]) -> float:
    """A measurement's own trial median over its undisturbed runs (``deploy.measure``: runs whose threads
    queued for a CPU are left out): what a row is ranked by where no paired estimate exists (an adb phone run,
    rows of runs made before pairing). ``ResultRow.best_ms`` prefers the paired estimate."""
    value = latency.get("median_ms")
    return float("nan") if value is None else value


def with_paired_latency(rows: list, unit: Dict[str, float], level: float = 0.95) -> list:
    """``rows`` with their ``PairedLatency`` at every latency key whose measurement has a reference ratio and
    ``unit`` a reference figure (latency key -> the reference's ms): the ranked latency (``best_ms``), and
    ``stable_ms`` beside it in the CSV. Used for each trial's rows (``search.rows.RowStore.stabilize``) and
    to put two runs in one unit (``benchmarks/multi_fidelity.py``)."""
    def paired(r: Any) -> Dict[str, PairedLatency]:
        out = dict(r.paired)
        for k, lat in r.latency.items():
            if lat.get("reference_ratio") and k in unit and k not in out:
                ratio = lat["reference_ratio"]
                out[k] = PairedLatency(ratio, lat.get("ratio_low") or ratio, lat.get("ratio_high") or ratio,
                                       unit[k], lat.get("pairs") or lat.get("runs") or 0, level)
        return out

    return [replace(r, paired=paired(r),
                    latency={k: ({**lat, "stable_ms": lat["reference_ratio"] * unit[k]}
                                 if lat.get("reference_ratio") and k in unit else lat)
                             for k, lat in r.latency.items()}) for r in rows]


def latency_basis(row: Any, key: str) -> str:
    """Which figure ``ResultRow.best_ms`` used at ``key``, in words (the report says it), with a flag when too
    few runs were undisturbed even after the retries."""
    latency = row.latency.get(key, {})
    if latency.get("median_ms") is None:
        return "nothing measured"
    flag = " (disturbed: flagged)" if latency.get("disturbed") else ""
    if key in row.paired:
        how = "interleaved re-timing" if latency.get("settled") else "trial"
        return f"paired ratio to the reference ({how}) x the run's unit{flag}"
    return "undisturbed trial median" + flag
