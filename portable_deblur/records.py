"""The small frozen records the stages pass each other, and the result row they end in.

``Variant`` (what ``optimize.plan`` asks of a trained candidate) -> ``Artifact`` (a ``.tflite`` the trial
made) -> ``estimates.FrameScores`` (its quality on every validation frame) + ``latency.LatencyKey`` + latency fields
(what ``deploy.measure`` timed) -> ``ResultRow`` (one per artifact, with its ``estimates.PairedLatency`` in
the run's unit and the ``estimates.Duel`` timings against front points; serialised only at the study
boundary, ``search.rows``, and read back typed by ``ResultRow.from_dict``; ``results.csv`` and ``frames.csv``
are written from them).
"""
import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from portable_deblur.confidence import Interval
from portable_deblur.estimates import Duel, FrameScores, PairedLatency
from portable_deblur.deploy.fp16_range import risk_text
from portable_deblur.files import atomic_write
from portable_deblur.latency import best_ms


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
    psnr_gpu: float = float("nan")  # the same file through LiteRT's GPU accelerator (measure.gpu_psnr)
    ssim_gpu: float = float("nan")
    fidelity_psnr: float = float("nan")
    fidelity_l2: float = float("nan")
    latency: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # "HxW_tN" -> Latency fields
    ops: Dict[str, int] = field(default_factory=dict)
    inventory: List[Dict[str, Any]] = field(default_factory=list)  # flatbuffer.inventory_table rows
    portability: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # target -> TargetReport fields
    xnnpack: Dict[str, Any] = field(default_factory=dict)  # measured delegation on this host
    gpu_measured: Dict[str, Any] = field(default_factory=dict)  # deploy.gpu.GpuPlacement on this host's Vulkan
    violations: List[str] = field(default_factory=list)  # required targets this candidate falls back on
    artifacts: Dict[str, str] = field(default_factory=dict)  # name -> path relative to the run dir
    seconds: Dict[str, float] = field(default_factory=dict)  # stage -> wall seconds
    channels: Dict[str, int] = field(default_factory=dict)  # conv layer -> output channels it really has
    # int8 files: the layers quantization damages most and those XNNPACK leaves off (search.artifact)
    quantization_errors: List[Dict[str, Any]] = field(default_factory=list)
    float_islands: Dict[str, str] = field(default_factory=dict)  # mixed files: Keras layer -> dtype kept
    # Float files: per measured size, the largest quantity (activation or a sum inside a reduction) and those
    # within reach of fp16's 65504, which LiteRT's GPU accelerator computes in (deploy.fp16_range).
    fp16_range: Dict[str, Any] = field(default_factory=dict)
    mixed_plan: Dict[str, Any] = field(default_factory=dict)  # mixed files: islands, why each, plans tried
    # Embedded validation per camera pipeline: {"srgb": {"psnr_blurry": .., "psnr_keras": .., "psnr_tflite": ..,
    # and the ssim_ twins}, "linear": {..}}; the psnr_* fields above are the ranked frames' (data.blur_space).
    pipelines: Dict[str, Dict[str, float]] = field(default_factory=dict)
    rung: int = 0  # search.rungs: the rung it was trained to (0 without rungs)
    # Judged only for its rung's promotion (search.screen): its Keras model's quality and its .tflite timed at
    # the ranked latency; the file's own quality, the other sizes and the fp16 / GPU checks were not made.
    screened: bool = False
    steps: int = 0  # its own training steps (this run's)
    # Where its weights started (train/start.py): the steps that start had had (a supernet's, a pretrained
    # start's), what it was, and the Keras PSNR of those weights on the validation before its own steps.
    inherited_steps: int = 0
    inherited_from: str = ""
    psnr_inherited: float = float("nan")
    trial: int = -1  # the Optuna trial that produced it
    worker: str = ""  # host:pid of the process that ran that trial (the artifacts are on that host)
    frames: Optional[FrameScores] = None  # per-frame quality (rows of runs made before it existed: None)
    # The ranked latency per latency key (``RowStore.stabilize``), and the A/B re-timings against front
    # neighbours whose intervals overlapped (``search.settle``).
    paired: Dict[str, PairedLatency] = field(default_factory=dict)
    duels: Tuple[Duel, ...] = ()

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ResultRow":
        """A row as the study stores it (JSON) back into its typed form; rows of older runs lack the newer
        fields and get their defaults."""
        data = dict(data)
        if data.get("frames") is not None:
            data["frames"] = FrameScores.from_dict(data["frames"])
        data["paired"] = {k: PairedLatency(**v) for k, v in data.get("paired", {}).items()}
        data["duels"] = tuple(Duel(**d) for d in data.get("duels", ()))
        return cls(**data)

    @property
    def optimization(self) -> str:
        """Its optimization label (``optimization``): ``fp32``, ``int8``, ``pruned-30%+int8``, ..."""
        return optimization(self.values)

    def best_ms(self, key: str) -> float:
        """The latency the front ranks by at ``key``: the paired estimate in the run's unit where there is one,
        else the trial's undisturbed median (``best_ms``); NaN when it was not measured."""
        return self.paired[key].ms.estimate if key in self.paired else best_ms(self.latency.get(key, {}))

    def latency_interval(self, key: str) -> Interval:
        """``best_ms`` with its interval (zero-wide where only a median was measured: an adb phone run)."""
        if key in self.paired:
            return self.paired[key].ms
        ms = self.best_ms(key)
        return Interval(ms, ms, ms)

    def mac_fraction(self, target: str) -> Tuple[float, str]:
        """(the share of MACs ``target`` keeps, "measured" or "table"): the GPU accelerator's own placement on
        this host when it was measured, else the op table's prediction."""
        measured = self.gpu_measured.get("accelerator_mac_fraction") if target == "gpu" else None
        if measured is not None:
            return float(measured), "measured"
        return float(self.portability[target]["accelerator_mac_fraction"]), "table"

    @property
    def training(self) -> Tuple[int, int]:
        """(inherited steps, own steps): rows are compared only with rows trained the same."""
        return self.inherited_steps, self.steps

    @property
    def training_label(self) -> str:
        """``900 steps``, ``60000 shared + 300 steps`` for a row that inherited its start's steps, or ``100000
        shared steps`` for a start judged as it is."""
        if self.inherited_steps and not self.steps:
            return f"{self.inherited_steps} shared steps"
        return f"{self.inherited_steps} shared + {self.steps} steps" if self.inherited_steps else f"{self.steps} steps"

    def ranked_source(self, source: str = "tflite") -> str:
        """Whose quality the row is ranked by when ``source`` (``tflite``: the deployed file, or ``keras``) is
        asked for: a screened row's file was not judged, so its Keras model's, the figure its rung ranked it by."""
        return "keras" if self.screened else source

    def ranked_psnr(self, source: str = "tflite") -> float:
        """The PSNR of ``ranked_source(source)``."""
        return getattr(self, f"psnr_{self.ranked_source(source)}")

    def ranked_frames(self, source: str = "tflite") -> List[float]:
        """The per-frame PSNR of ``ranked_source(source)`` (the row must have kept ``frames``)."""
        return self.frames.values(self.ranked_source(source))

    @property
    def psnr_gain(self) -> float:
        return self.ranked_psnr() - self.psnr_blurry

    def pipeline_gain(self, pipeline: str) -> float:
        """The deployed file's PSNR gain over the blurry input on ``pipeline``'s frames (a screened row: its Keras
        model's; NaN: not measured)."""
        figures = self.pipelines.get(pipeline, {})
        judged = f"psnr_{self.ranked_source()}"
        return figures.get(judged, float("nan")) - figures.get("psnr_blurry", float("nan"))

    def flat(self) -> Dict[str, Any]:
        """One CSV row: nested fields flattened to ``latency_256x256_median_ms``-style columns."""
        nested = ("values", "latency", "ops", "artifacts", "seconds", "inventory", "portability", "xnnpack", "violations",
                  "channels", "gpu_measured", "pipelines", "quantization_errors", "float_islands", "mixed_plan",
                  "frames", "paired", "duels")
        row = {k: v for k, v in asdict(self).items() if k not in nested}
        row.update({f"value_{k}": _cell(v) for k, v in self.values.items()})
        row["psnr_gain"] = self.psnr_gain
        for pipeline, figures in self.pipelines.items():
            row.update({f"{k}_{pipeline}": v for k, v in figures.items()})
            row[f"psnr_gain_{pipeline}"] = self.pipeline_gain(pipeline)
        for res, lat in self.latency.items():
            row.update({f"latency_{res}_{k}": v for k, v in lat.items()})
        for res, est in self.paired.items():
            ms = est.ms
            row.update({f"latency_{res}_ranked_ms": ms.estimate, f"latency_{res}_ranked_low_ms": ms.low,
                        f"latency_{res}_ranked_high_ms": ms.high, f"latency_{res}_pairs": est.pairs})
        if self.duels:
            row["duels"] = " ".join(f"{d.verdict}:{d.other}:{d.ratio:.3f}[{d.low:.3f},{d.high:.3f}]" for d in self.duels)
        row["ops"] = " ".join(f"{k}:{v}" for k, v in self.ops.items())
        if self.float_islands:
            row["float_islands"] = " ".join(self.float_islands)
        row["violations"] = " ".join(self.violations)
        if self.fp16_range:
            row["fp16_risk"] = risk_text(self.fp16_range)
        for target, rep in self.portability.items():
            row[f"fallback_{target}"] = " ".join(rep["fallback"])
            row[f"accel_macs_{target}"] = round(rep["accelerator_mac_fraction"], 4)
        if self.gpu_measured:
            row["gpu_measured_split"] = f"{self.gpu_measured['gpu_ops']} gpu / {self.gpu_measured['cpu_ops']} cpu"
            row["gpu_measured_fallback"] = " ".join(self.gpu_measured["rejected"])
        if self.xnnpack:
            row["xnnpack_delegated"] = f"{self.xnnpack['delegated_nodes']}/{self.xnnpack['nodes']}"
            row["xnnpack_undelegated"] = " ".join(f"{k}:{v}" for k, v in self.xnnpack["undelegated_ops"].items())
        row.update({f"artifact_{k}": v for k, v in self.artifacts.items()})
        row.update({f"seconds_{k}": round(v, 2) for k, v in self.seconds.items()})
        return row


def equally_trained(rows) -> list:
    """The rows trained most -- the largest inherited + own steps, then own steps -- which alone are compared
    with each other: a row trained longer would credit its steps to its values (lower rungs are left out)."""
    rows = list(rows)
    if not rows:
        return []
    top = max(rows, key=lambda r: (sum(r.training), r.steps)).training
    return [r for r in rows if r.training == top]


def _cell(value: Any) -> Any:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class Variant:
    """One artifact ``optimize.plan`` asks of a trained candidate: which float model (the trained one, or
    ``base`` = ``("prune", 0.3)`` / ``("sparsity", "2:4")``) and how it is converted (``kind`` ``fp32``,
    ``ptq`` with a quantization ``mode``, or ``qat``)."""

    base: Optional[Tuple[str, Any]] = None
    kind: str = "fp32"
    mode: str = "fp32"

    @property
    def float_values(self) -> Dict[str, Any]:
        return dict([self.base]) if self.base else {}

    @property
    def values(self) -> Dict[str, Any]:
        """The keys a row's ``values`` gains: ``{"prune": 0.3, "ptq": "int8"}``."""
        return {**self.float_values, **({} if self.kind == "fp32" else {self.kind: self.mode})}

    @property
    def id(self) -> str:
        """``prune-0.3__ptq-int8``; empty for the trained float model itself."""
        from portable_deblur.models.candidate import variant_id

        parts = [variant_id(self.float_values)] if self.base else []
        return "__".join(parts + ([] if self.kind == "fp32" else [f"{self.kind}-{self.mode}"]))

    @property
    def label(self) -> str:
        """``pruned-30%+int8`` (``optimization``)."""
        return optimization(self.values)

    @property
    def file_label(self) -> str:
        """What its ``.tflite`` files are named after: ``fp32``, ``int8``, ``qat_int8``."""
        return self.mode if self.kind != "qat" else f"qat_{self.mode}"

    def row_id(self, candidate_id: str) -> str:
        return "__".join(filter(None, [candidate_id, self.id]))


@dataclass(frozen=True)
class Artifact:
    """A ``.tflite`` a trial wrote: its path relative to the run directory, the input shape it serves (the
    file may be padded up to the network's multiple) and its precision label (``fp32``, ``int8``, ``qat_int8``)."""

    path: str
    shape: Tuple[int, int]
    precision: str


def write_csv(path: Path, rows: List[Dict[str, Any]], columns: Optional[List[str]] = None) -> None:
    """Write dict rows as CSV with the union of their keys as columns (first-seen order)."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())
