"""Result rows: one per artifact (a trained candidate's float model, or one of its optimized variants).

The rows live in the run's Optuna study (``portable_deblur.study``); ``results.csv`` is written from them.
"""
import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from portable_deblur.files import atomic_write


# Keys a row's ``values`` gains when it is an optimized variant of a candidate (absent: the trained float
# model), in the order they are applied: pruning or sparsity first, then quantization.
OPTIMIZATION_KEYS = ("prune", "sparsity", "ptq", "qat")


def optimization(values: Dict[str, Any]) -> str:
    """Label of the optimizations in a row's ``values``: ``fp32`` for the trained float model, else e.g.
    ``int8``, ``qat-int8``, ``pruned-30%``, ``pruned-30%+int8``, ``sparse-2:4+fp16``."""
    parts = []
    if "prune" in values:
        parts.append(f"pruned-{round(100 * float(values['prune']))}%")
    if "sparsity" in values:
        parts.append(f"sparse-{values['sparsity']}")
    if "ptq" in values:
        parts.append(str(values["ptq"]))
    if "qat" in values:
        parts.append(f"qat-{values['qat']}")
    return "+".join(parts) or "fp32"


def searched(values: Dict[str, Any]) -> Dict[str, Any]:
    """A row's candidate values without its optimization keys (what rebuilds the candidate)."""
    return {k: v for k, v in values.items() if k not in OPTIMIZATION_KEYS}


@dataclass(frozen=True)
class ResultRow:
    """One candidate's outcome: what it is, how good, how fast, where its files are, or why it failed."""

    id: str
    arch: str
    values: Dict[str, Any]
    status: str  # "ok" or "failed"
    error: str = ""
    params: int = 0
    macs: int = 0
    size_kb: float = float("nan")  # the primary .tflite file
    psnr_blurry: float = float("nan")
    ssim_blurry: float = float("nan")
    psnr_keras: float = float("nan")
    ssim_keras: float = float("nan")
    psnr_tflite: float = float("nan")
    ssim_tflite: float = float("nan")
    fidelity_psnr: float = float("nan")
    fidelity_l2: float = float("nan")
    latency: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # "HxW_tN" -> Latency fields
    ops: Dict[str, int] = field(default_factory=dict)
    inventory: List[Dict[str, Any]] = field(default_factory=list)  # flatbuffer.inventory_table rows
    portability: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # target -> TargetReport fields
    xnnpack: Dict[str, Any] = field(default_factory=dict)  # measured delegation on this host
    violations: List[str] = field(default_factory=list)  # required targets this candidate falls back on
    artifacts: Dict[str, str] = field(default_factory=dict)  # name -> path relative to the run dir
    seconds: Dict[str, float] = field(default_factory=dict)  # stage -> wall seconds
    trial: int = -1  # the Optuna trial that produced it
    worker: str = ""  # host:pid of the process that ran that trial (the artifacts are on that host)

    @property
    def psnr_gain(self) -> float:
        return self.psnr_tflite - self.psnr_blurry

    def flat(self) -> Dict[str, Any]:
        """One CSV row: nested fields flattened to ``latency_256x256_median_ms``-style columns."""
        nested = ("values", "latency", "ops", "artifacts", "seconds", "inventory", "portability", "xnnpack", "violations")
        row = {k: v for k, v in asdict(self).items() if k not in nested}
        row.update({f"value_{k}": _cell(v) for k, v in self.values.items()})
        row["psnr_gain"] = self.psnr_gain
        for res, lat in self.latency.items():
            row.update({f"latency_{res}_{k}": v for k, v in lat.items()})
        row["ops"] = " ".join(f"{k}:{v}" for k, v in self.ops.items())
        row["violations"] = " ".join(self.violations)
        for target, rep in self.portability.items():
            row[f"fallback_{target}"] = " ".join(rep["fallback"])
            row[f"accel_macs_{target}"] = round(rep["accelerator_mac_fraction"], 4)
        if self.xnnpack:
            row["xnnpack_delegated"] = f"{self.xnnpack['delegated_nodes']}/{self.xnnpack['nodes']}"
            row["xnnpack_undelegated"] = " ".join(f"{k}:{v}" for k, v in self.xnnpack["undelegated_ops"].items())
        row.update({f"artifact_{k}": v for k, v in self.artifacts.items()})
        row.update({f"seconds_{k}": round(v, 2) for k, v in self.seconds.items()})
        return row


def _cell(value: Any) -> Any:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def latency_key(shape, threads: int) -> str:
    """Key of one latency measurement: ``256x256_t2`` (height x width, threads)."""
    return f"{shape[0]}x{shape[1]}_t{threads}"


def write_csv(path: Path, rows: List[Dict[str, Any]], columns: Optional[List[str]] = None) -> None:
    """Write dict rows as CSV with the union of their keys as columns (first-seen order)."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())
