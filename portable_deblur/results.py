"""The run directory: resolved config, one result row per candidate (JSON Lines + CSV), artifacts.

Rows are appended as candidates finish (fsync'd), so an interrupted search loses at most the candidate in
flight; re-running the same command skips every candidate that already has a row.
"""
import csv
import io
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from portable_deblur.config import Config, to_yaml
from portable_deblur.files import atomic_write
from portable_deblur.registry import ConfigError


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


def _comparable(cfg: Config) -> Dict[str, Any]:
    """The config minus the ``run`` block: what must match for a run to be resumed."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    data.pop("run")
    return data


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.jsonl = self.dir / "results.jsonl"

    @classmethod
    def open(cls, cfg: Config) -> "RunStore":
        """Create the run dir, or reopen it to resume if its saved config matches ``cfg``."""
        store = cls(cfg.run_dir)
        saved = store.dir / "config.yaml"
        if saved.is_file() and cfg.run.overwrite:
            shutil.rmtree(store.dir)
        elif saved.is_file():
            from omegaconf import OmegaConf

            old = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(saved)))
            if _comparable(old) != _comparable(cfg):
                raise ConfigError(f"run directory {str(store.dir)!r} holds a run with a different config; "
                                  f"resume with the same settings, pick another run.name=..., or pass run.overwrite=true")
        store.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(saved, to_yaml(cfg))
        return store

    def rows(self) -> List[ResultRow]:
        """Latest row per candidate id, in first-seen order."""
        latest: Dict[str, ResultRow] = {}
        if self.jsonl.is_file():
            for line in self.jsonl.read_text().splitlines():
                if line.strip():
                    data = json.loads(line)
                    latest[data["id"]] = ResultRow(**data)
        return list(latest.values())

    def finished(self) -> Dict[str, ResultRow]:
        return {r.id: r for r in self.rows()}

    def append(self, row: ResultRow) -> None:
        """Append ``row`` durably, then rewrite ``results.csv`` from all rows."""
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(asdict(row)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        write_csv(self.dir / "results.csv", [r.flat() for r in self.rows()])


def write_csv(path: Path, rows: List[Dict[str, Any]], columns: Optional[List[str]] = None) -> None:
    """Write dict rows as CSV with the union of their keys as columns (first-seen order)."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())
