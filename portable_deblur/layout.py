"""``RunLayout``: where every file of a run lives. The only code that knows the run directory's file names.

```
<run.root>/<run.name or space>/
  config.yaml  study.db  results.csv  frames.csv  pareto.csv  stability.csv  pareto.png
  latency_vs_resolution.{csv,png}
  report.html  crops/  handoff/<artifact id>/
  supernet/  weights.npz  weights.json  progress.json  training.lock  checkpoint/  tensorboard/
             (search.weight_sharing=supernet)
  <candidate id>/  model.keras  checkpoint/  tensorboard/  <label>_<H>x<W>.tflite  start.json  mixed_plan.json
                   <variant id>/  model.keras  <label>_<H>x<W>.tflite   (pruned / sparse float models)
```
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class RunLayout:
    """The files of one run directory ``root``."""

    root: Path

    @classmethod
    def of(cls, cfg) -> "RunLayout":
        return cls(Path(cfg.run.root) / (cfg.run.name or cfg.space))

    def __truediv__(self, relative: Union[str, Path]) -> Path:
        """A path the run stores relative to its directory (a row's ``artifacts``)."""
        return self.root / relative

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def study_url(self) -> str:
        return f"sqlite:///{self.root.resolve() / 'study.db'}"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def frames_csv(self) -> Path:
        """Every artifact's PSNR/SSIM on every validation frame: what the intervals are computed from."""
        return self.root / "frames.csv"

    @property
    def stability_csv(self) -> Path:
        """Per competing artifact: how often it stays on the front, and is best, over frame resamples."""
        return self.root / "stability.csv"

    @property
    def pareto_csv(self) -> Path:
        return self.root / "pareto.csv"

    @property
    def pareto_png(self) -> Path:
        return self.root / "pareto.png"

    @property
    def latency_csv(self) -> Path:
        return self.root / "latency_vs_resolution.csv"

    @property
    def latency_png(self) -> Path:
        return self.root / "latency_vs_resolution.png"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def handoff(self) -> Path:
        return self.root / "handoff"

    @property
    def supernet(self) -> Path:
        """The run's weight-sharing supernet: ``weights.npz`` (its weight table), ``weights.json`` (record)."""
        return self.root / "supernet"

    def reference(self, shape: Tuple[int, int]) -> Path:
        """The run's fixed reference network at one input shape (``deploy.reference``)."""
        return self.root / "reference" / f"reference_{shape[0]}x{shape[1]}.tflite"

    def folder(self, candidate_id: str, variant_id: str = "") -> Path:
        """A candidate's folder, or its pruned / sparse float variant's subfolder."""
        return self.root / candidate_id / variant_id if variant_id else self.root / candidate_id

    @staticmethod
    def model(folder: Path) -> Path:
        return folder / MODEL_FILE

    @staticmethod
    def start_record(folder: Path) -> Path:
        """A candidate's start's own quality, measured once before its own training (``search.trial``)."""
        return folder / "start.json"

    @staticmethod
    def mixed_plan(folder: Path) -> Path:
        """A float model's per-layer mixed-precision plan (``optimize.mixed``)."""
        return folder / "mixed_plan.json"

    @staticmethod
    def weight_table(folder: Path) -> Path:
        """A supernet folder's weight table (``models.supernet``): a run's, or a pretraining stage's."""
        return folder / "weights.npz"

    @staticmethod
    def weight_record(folder: Path) -> Path:
        """A supernet folder's record: steps, seconds, each path's quality; written once training is done."""
        return folder / "weights.json"

    @staticmethod
    def training_progress(folder: Path) -> Path:
        """A supernet folder's progress while it trains in pieces (steps and seconds so far)."""
        return folder / "progress.json"

    @staticmethod
    def training_lock(folder: Path) -> Path:
        """Held by the one worker that trains a run's supernet."""
        return folder / "training.lock"

    @staticmethod
    def checkpoint(folder: Path) -> Path:
        return folder / "checkpoint"

    @staticmethod
    def tensorboard(folder: Path) -> Path:
        return folder / "tensorboard"

    @staticmethod
    def artifact(folder: Path, label: str, shape: Tuple[int, int]) -> Path:
        """``<folder>/fp32_256x256.tflite`` (label, height x width)."""
        return folder / f"{label}_{shape[0]}x{shape[1]}.tflite"

    @staticmethod
    def artifact_parts(path: Path) -> Tuple[str, Tuple[int, int]]:
        """The inverse of ``artifact``: (label, (height, width)) of an artifact file."""
        label, size = Path(path).stem.rsplit("_", 1)
        height, width = size.split("x")
        return label, (int(height), int(width))

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))


def saved_model(init: Union[str, Path], candidate_id: str) -> Optional[Path]:
    """The ``.keras`` file a warm start names: the file itself, a candidate folder's, or the candidate's in a
    run directory; None when there is none."""
    path = Path(init).expanduser()
    for option in (path, path / MODEL_FILE, path / candidate_id / MODEL_FILE):
        if option.is_file():
            return option
    return None
