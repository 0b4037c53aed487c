"""Typed configuration: defaults here, ``search_spaces/<space>.yaml`` over them, CLI overrides last.

Overrides use OmegaConf's dotlist grammar (the one Hydra uses): ``train.steps=200``, ``grid.activation=[relu]``.
Everything is validated at load time, before any work starts; the result is a tree of frozen dataclasses.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from portable_deblur.registry import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
SPACES_DIR = REPO_ROOT / "search_spaces"


@dataclass(frozen=True)
class DataConfig:
    """Where training/validation pairs come from (``data.SOURCES``)."""

    source: str = "embedded"
    root: Optional[str] = None
    train_images: List[str] = field(default_factory=lambda: [
        "astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
        "brick", "camera", "coins", "grass", "gravel", "moon", "page"])
    val_images: List[str] = field(default_factory=lambda: ["chelsea", "rocket", "stereo_motorcycle"])
    # Photos are used at native resolution, centre-cropped (never shrunk) to at most max_side pixels.
    max_side: int = 768
    # Training pairs are windows of train_tile pixels at random places of each frame (0: whole frames), each
    # with its own shake path: more distinct blurs for the same rendering time. Validation uses whole frames.
    train_tile: int = 256
    blurs_per_image: int = 16
    val_blurs_per_image: int = 4
    # Path length in native pixels that a pixel travels during the exposure, averaged over the frame (drawn
    # log-uniformly): about the 5-35 px of hand-held 720p frames. Rotation and zoom add up to these fractions
    # of the translation at the frame corners, so the blur varies across the frame (blur.py).
    blur_length: List[float] = field(default_factory=lambda: [5.0, 35.0])
    rotation: float = 0.5
    zoom: float = 0.1
    blur_space: str = "srgb"  # srgb: GoPro's standard `blur` set; linear: its `blur_gamma` set (blur.py)
    noise_sigma: float = 0.01
    seed: int = 0
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    max_train_pairs: int = 0
    max_val_pairs: int = 0
    frame_stride: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """Fixed-budget training: Adam (AdamW with ``weight_decay``), cosine or exponential decay, seeded."""

    steps: int = 800
    batch_size: int = 8
    crop: int = 64
    crops_per_pair: int = 1  # crops cut from one decoded pair per batch (4+ keeps GPUs fed from PNG folders)
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine: down to learning_rate * final_lr_ratio; exponential: the MediaTek paper's
    final_lr_ratio: float = 0.01
    # cosine only: a linear warm-up from 0 over these steps keeps the first Adam steps from knocking a network
    # that starts as the identity far off it (short laptop schedules never recover from that).
    warmup_steps: int = 0
    decay_rate: float = 0.98  # exponential: multiply by decay_rate every decay_steps
    decay_steps: int = 5000
    beta_2: float = 0.999  # NAFNet / the thesis use 0.9
    weight_decay: float = 0.0  # > 0: AdamW (the thesis: 1e-3)
    loss: str = "l1"  # l1 | charbonnier | psnr
    fft_weight: float = 0.0  # > 0 adds fft_weight * the FFT L1 term to the loss (the thesis used 0.01)
    seed: int = 0
    log_every: int = 50
    # XLA: ~15 % faster steps for conv/transpose/depth_to_space U-Nets on CPU, but 1.5x *slower* for bilinear
    # (its ResizeBilinearGrad), and TF refuses op determinism with XLA's MaxPool gradient. Off by default.
    jit_compile: bool = False
    # "mirrored": build and train under tf.distribute.MirroredStrategy (every local GPU; one CPU otherwise).
    distribute: str = "none"
    # Keras mixed precision (float32 variables, 16-bit compute, loss scaling for fp16); the trained weights are
    # copied into a float32 model before evaluation and export, so the .tflite files do not change.
    precision: str = "float32"
    # Warm start: a run directory, a candidate folder or a .keras file with the same architecture.
    init: Optional[str] = None


# Named resolution sets, [height, width]; "paper" is the MediaTek paper's Figure 4 (360p .. 1080p).
RESOLUTION_SETS = {
    "paper": [[360, 640], [720, 1280], [900, 1600], [1080, 1920]],
    "phone": [[256, 256], [720, 1280]],
}


@dataclass(frozen=True)
class MeasureConfig:
    """Latency measurement; resolutions are [height, width], each timed at every thread count.

    ``resolution_set`` appends a named set (``RESOLUTION_SETS``). A size that is not a multiple of 2**depth
    is exported padded up to one (recorded as ``padded_to``). ``backend=adb`` times on a phone over USB
    with TFLite's ``benchmark_model`` instead of the local LiteRT interpreter.
    """

    resolutions: List[List[int]] = field(default_factory=lambda: [[256, 256]])
    resolution_set: Optional[str] = None
    threads: List[int] = field(default_factory=lambda: [2])
    warmup: int = 3
    runs: int = 20
    max_seconds: float = 5.0  # a slow artifact (16x8: ~1 s a run here) stops timing after this (>= 3 runs)
    interleaved_rounds: int = 3  # final round-robin re-timing of every candidate's primary artifact
    backend: str = "local"
    adb_binary: str = "/data/local/tmp/benchmark_model"
    adb_delegate: str = "none"
    adb_serial: Optional[str] = None

    @property
    def shapes(self) -> List[Tuple[int, int]]:
        extra = RESOLUTION_SETS[self.resolution_set] if self.resolution_set else []
        return list(dict.fromkeys(tuple(r) for r in [*self.resolutions, *extra]))


@dataclass(frozen=True)
class PortabilityConfig:
    """Delegate targets reported for every artifact, and which of them a candidate must fully run on.

    ``require`` is checked from the Keras graph *before* training: ``on_violation=skip`` records the
    candidate as skipped with the reason; ``flag`` trains it anyway and keeps it off the Pareto front.
    """

    targets: List[str] = field(default_factory=lambda: [
        "gpu", "nnapi_api27", "nnapi_api28", "nnapi_api29", "nnapi_api30", "nnapi_api31", "nnapi_api32",
        "nnapi_api33", "nnapi_api34", "xnnpack", "hexagon"])
    require: List[str] = field(default_factory=list)
    on_violation: str = "skip"
    objective: Optional[str] = None  # a target: its accelerator MAC fraction becomes a third front objective


@dataclass(frozen=True)
class OptimizeConfig:
    """Optimized variants made from trained candidates; each is its own row and point on the front.

    Float variants first: the trained model itself, one channel-pruned model per ``prune`` target (fraction
    of MACs removed at the first measured resolution, then ``prune_steps`` of fine-tuning; ``prune.py``) and
    one per ``sparsity`` pattern (TF-MOT's ``m:n`` structured sparsity, e.g. ``2:4``; ``sparsity.py``).
    Every float variant then gets each ``ptq`` mode (``export.QUANTIZATIONS``; calibration uses training
    crops) and, with ``qat_steps > 0``, an 8-bit QAT variant (``qat.py``): pruning + PTQ/QAT combos.
    ``apply_to``: ``all`` trained candidates, or only the ``pareto`` set of their float models, optimized
    once every candidate is trained.
    """

    ptq: List[str] = field(default_factory=list)
    representative_count: int = 32
    # > 0: an 8-bit QAT variant (<id>__qat-int8): fake-quant twin, ranges from calibration crops, this many
    # fine-tuning steps at qat_learning_rate, converted to full int8 (portable_deblur/qat.py).
    qat_steps: int = 0
    qat_learning_rate: float = 1e-4
    prune: List[float] = field(default_factory=list)  # MAC-reduction targets, e.g. [0.1, 0.3]
    prune_steps: int = 400  # fine-tuning after pruning (also after applying a sparsity pattern)
    prune_learning_rate: float = 3e-4
    # Channels go in chunks of this many per channel space, so widths stay multiples of it: XNNPACK's fp32
    # kernels work in 8-wide tiles here, and odd widths measured far smaller speed-ups for the same MACs.
    prune_multiple: int = 8
    sparsity: List[str] = field(default_factory=list)  # TF-MOT m:n patterns, e.g. ["2:4"]
    # Which pruned/sparse models also get the ptq/qat variants (combos): null = every one, else their ids,
    # e.g. ["prune-0.05"] (MediaTek Table 4 combines only its -5 % model), [] = none.
    combine: Optional[List[str]] = None
    apply_to: str = "all"  # all | pareto

    @property
    def variants(self) -> bool:
        """Whether any optimization is asked for."""
        return bool(self.ptq or self.qat_steps or self.prune or self.sparsity)


APPLY_TO = ("all", "pareto")


SAMPLERS = ("grid", "nsga2", "tpe")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BLUR_SPACES = ("linear", "srgb")
PSNR_OBJECTIVES = ("tflite", "keras")


@dataclass(frozen=True)
class SearchConfig:
    """The Optuna study behind a run: how candidates are picked, what is optimised, where trials live.

    ``sampler=grid`` enumerates the grid (every point once); ``nsga2``/``tpe`` sample it and stop after
    ``n_trials`` distinct candidates. ``storage`` defaults to ``sqlite:///<run dir>/study.db``; a
    ``postgresql://user:password@host/db`` URL lets several processes on several machines share the study.
    """

    sampler: str = "grid"
    n_trials: Optional[int] = None
    population_size: int = 8  # NSGA-II generation size
    seed: int = 0
    storage: Optional[str] = None
    psnr: str = "tflite"  # objective 1 (maximise): PSNR of the deployed .tflite, or of the Keras model
    latency: Optional[str] = None  # objective 2 (minimise): "HxW_tN"; default: first resolution, first threads
    max_latency_ms: Optional[float] = None  # constraint: slower candidates stay off the front
    heartbeat_s: float = 10.0  # a running trial silent for 3 heartbeats is taken as killed and re-run


@dataclass(frozen=True)
class RunConfig:
    """Where results go; re-running with the same name resumes: finished trials are not re-run."""

    name: Optional[str] = None
    root: str = "experiments/runs"
    overwrite: bool = False


@dataclass(frozen=True)
class LogConfig:
    """What the console shows: ``warning`` hides TensorFlow's start-up lines and INFO logs; ``debug`` (or
    ``-v``) shows everything. Not part of a run's identity: changing it never blocks a resume."""

    level: str = "warning"


@dataclass(frozen=True)
class Config:
    """A whole search: the fixed builder arguments (``model``), the searched ones (``grid``) and stages."""

    space: str = "upsampling"
    arch: str = "unet"
    model: Dict[str, Any] = field(default_factory=dict)
    grid: Dict[str, List[Any]] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    portability: PortabilityConfig = field(default_factory=PortabilityConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    run: RunConfig = field(default_factory=RunConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.root) / (self.run.name or self.space)


def available_spaces() -> List[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def _space_file(space: str) -> Path:
    path = Path(space)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = SPACES_DIR / f"{space}.yaml"
    if not path.is_file():
        raise ConfigError(f"space must be one of {available_spaces()} or a path to a .yaml file; got {space!r}")
    return path


def _friendly(exc: OmegaConfBaseException) -> ConfigError:
    key = getattr(exc, "full_key", None) or ""
    msg = str(exc).splitlines()[0]
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    schema = OmegaConf.structured(Config)
    node = OmegaConf.select(schema, parent) if parent else schema
    valid = sorted(node.keys()) if OmegaConf.is_dict(node) else None
    hint = f"; valid keys{' of ' + parent if parent else ''}: {valid}" if valid and "not in" in msg else ""
    return ConfigError(f"invalid config {key!r}: {msg}{hint}")


def load_config(args: Sequence[str]) -> Config:
    """Build the config from CLI-style arguments: ``space=NAME`` plus ``dotted.key=value`` overrides."""
    args = list(args)
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"arguments must look like key=value (e.g. space=upsampling train.steps=100); got {arg!r}")
    space = next((a.split("=", 1)[1] for a in args if a.startswith("space=")), Config.space)
    try:
        schema = OmegaConf.structured(Config)
        OmegaConf.set_readonly(schema, False)
        space_cfg = OmegaConf.load(_space_file(space))
        cli = OmegaConf.from_dotlist([a for a in args if not a.startswith("space=")])
        merged = OmegaConf.merge(schema, space_cfg, cli, {"space": Path(space).stem})
        if merged.model.get("tlc_window") == "auto":  # TLC (NAFNetLocal): 1.5x the training crop
            merged.model.tlc_window = int(1.5 * merged.train.crop)
        cfg: Config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _friendly(exc) from None
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Checks that need no TensorFlow; model arguments are checked when candidates are expanded."""
    from portable_deblur.data import EMBEDDED_PHOTOS, SOURCES
    from portable_deblur.losses import LOSSES

    for kind, value, table in (("data.source", cfg.data.source, SOURCES), ("train.loss", cfg.train.loss, LOSSES)):
        if value not in table:
            raise ConfigError(f"{kind} must be one of {sorted(table)}; got {value!r}")
    if cfg.data.source == "embedded":
        for name in [*cfg.data.train_images, *cfg.data.val_images]:
            if name not in EMBEDDED_PHOTOS:
                raise ConfigError(f"embedded photo must be one of {sorted(EMBEDDED_PHOTOS)}; got {name!r}")
        overlap = sorted(set(cfg.data.train_images) & set(cfg.data.val_images))
        if overlap:  # split by source photo: no scene in both sets
            raise ConfigError(f"data.train_images and data.val_images must not share photos; both have {overlap}")
        if not (cfg.data.train_images and cfg.data.val_images):
            raise ConfigError("data.train_images and data.val_images must both be non-empty")
    if cfg.data.source != "embedded" and not cfg.data.root:
        raise ConfigError(f"data.root must be set for data.source={cfg.data.source!r} (the dataset folder)")
    if cfg.data.blur_space not in BLUR_SPACES:
        raise ConfigError(f"data.blur_space must be one of {sorted(BLUR_SPACES)}; got {cfg.data.blur_space!r}")
    if cfg.data.rotation < 0 or cfg.data.zoom < 0 or cfg.data.max_side < 8:
        raise ConfigError(f"data.rotation and data.zoom must be >= 0 and data.max_side >= 8; got "
                          f"{cfg.data.rotation}, {cfg.data.zoom}, {cfg.data.max_side}")
    lo_hi = cfg.data.blur_length
    if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
        raise ConfigError(f"data.blur_length must be [min, max] pixels with 0 < min <= max; got {list(lo_hi)}")
    for key in ("steps", "batch_size", "crop"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1; got {getattr(cfg.train, key)}")
    for res in cfg.measure.resolutions:
        if len(res) != 2 or min(res) < 1:
            raise ConfigError(f"measure.resolutions entries must be [height, width]; got {list(res)}")
    if cfg.measure.resolution_set is not None and cfg.measure.resolution_set not in RESOLUTION_SETS:
        raise ConfigError(f"measure.resolution_set must be one of {sorted(RESOLUTION_SETS)}; got {cfg.measure.resolution_set!r}")
    if not cfg.measure.shapes:
        raise ConfigError("measure.resolutions (or measure.resolution_set) must name at least one resolution")
    from portable_deblur.measure import ADB_DELEGATES, BACKENDS

    if cfg.measure.backend not in BACKENDS:
        raise ConfigError(f"measure.backend must be one of {sorted(BACKENDS)}; got {cfg.measure.backend!r}")
    if cfg.measure.adb_delegate not in ADB_DELEGATES:
        raise ConfigError(f"measure.adb_delegate must be one of {sorted(ADB_DELEGATES)}; got {cfg.measure.adb_delegate!r}")
    from portable_deblur.portability import targets

    objective = [cfg.portability.objective] if cfg.portability.objective else []
    for name in [*cfg.portability.targets, *cfg.portability.require, *objective]:
        if name not in targets():
            raise ConfigError(f"portability target must be one of {sorted(targets())}; got {name!r}")
    if objective and objective[0] not in cfg.portability.targets:
        raise ConfigError(f"portability.objective {objective[0]!r} must also be in portability.targets "
                          f"{list(cfg.portability.targets)}")
    if cfg.portability.on_violation not in ("skip", "flag"):
        raise ConfigError(f"portability.on_violation must be one of ['flag', 'skip']; got {cfg.portability.on_violation!r}")
    for mode in cfg.optimize.ptq:
        from portable_deblur.export import QUANTIZATIONS  # imports TensorFlow: only when PTQ is asked for

        if mode not in QUANTIZATIONS or mode == "fp32":
            valid = sorted(set(QUANTIZATIONS) - {"fp32"})
            raise ConfigError(f"optimize.ptq entries must be among {valid}; got {mode!r}")
    if cfg.optimize.qat_steps < 0 or cfg.optimize.qat_learning_rate <= 0:
        raise ConfigError(f"optimize.qat_steps must be >= 0 and optimize.qat_learning_rate > 0; got "
                          f"{cfg.optimize.qat_steps}, {cfg.optimize.qat_learning_rate}")
    _validate_optimize(cfg.optimize)
    if cfg.optimize.representative_count < 1:
        raise ConfigError(f"optimize.representative_count must be >= 1; got {cfg.optimize.representative_count}")
    if cfg.measure.interleaved_rounds < 0:
        raise ConfigError(f"measure.interleaved_rounds must be >= 0; got {cfg.measure.interleaved_rounds}")
    if cfg.measure.max_seconds <= 0:
        raise ConfigError(f"measure.max_seconds must be > 0; got {cfg.measure.max_seconds}")
    if cfg.measure.runs < 1 or not cfg.measure.threads or min(cfg.measure.threads) < 1:
        raise ConfigError(f"measure.runs and every measure.threads entry must be >= 1; "
                          f"got runs={cfg.measure.runs}, threads={list(cfg.measure.threads)}")
    if cfg.train.fft_weight < 0:
        raise ConfigError(f"train.fft_weight must be >= 0; got {cfg.train.fft_weight}")
    if cfg.train.schedule not in ("cosine", "exponential"):
        raise ConfigError(f"train.schedule must be one of ['cosine', 'exponential']; got {cfg.train.schedule!r}")
    from portable_deblur.console import LEVELS

    if cfg.log.level not in LEVELS:
        raise ConfigError(f"log.level must be one of {list(LEVELS)}; got {cfg.log.level!r}")
    if cfg.train.warmup_steps < 0:
        raise ConfigError(f"train.warmup_steps must be >= 0; got {cfg.train.warmup_steps}")
    if cfg.train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {sorted(PRECISIONS)}; got {cfg.train.precision!r}")
    if cfg.train.crops_per_pair < 1:
        raise ConfigError(f"train.crops_per_pair must be >= 1; got {cfg.train.crops_per_pair}")
    if cfg.train.init is not None and not Path(cfg.train.init).expanduser().exists():
        raise ConfigError(f"train.init must be a run directory, a candidate folder or a .keras file; "
                          f"{cfg.train.init!r} does not exist")
    if cfg.train.distribute not in ("none", "mirrored"):
        raise ConfigError(f"train.distribute must be one of ['mirrored', 'none']; got {cfg.train.distribute!r}")
    _validate_search(cfg)


def _validate_optimize(o: OptimizeConfig) -> None:
    for target in o.prune:
        if not 0.0 < target < 1.0:
            raise ConfigError(f"optimize.prune entries must be MAC-reduction fractions in (0, 1), e.g. [0.1, 0.3]; "
                              f"got {target!r}")
    if len(set(o.prune)) != len(o.prune):
        raise ConfigError(f"optimize.prune has repeated targets: {list(o.prune)}")
    for pattern in o.sparsity:
        m, _, n = str(pattern).partition(":")
        if not (m.isdigit() and n.isdigit() and 0 < int(m) < int(n)):
            raise ConfigError(f"optimize.sparsity entries must be 'm:n' patterns with 0 < m < n (TF-MOT supports "
                              f"'2:4'); got {pattern!r}")
    if o.prune_multiple < 1:
        raise ConfigError(f"optimize.prune_multiple must be >= 1 (channels removed at a time); got {o.prune_multiple}")
    if (o.prune or o.sparsity) and (o.prune_steps < 0 or o.prune_learning_rate <= 0):
        raise ConfigError(f"optimize.prune_steps must be >= 0 and optimize.prune_learning_rate > 0; got "
                          f"{o.prune_steps}, {o.prune_learning_rate}")
    if o.combine is not None:
        from portable_deblur.candidate import variant_id

        ids = [variant_id({"prune": p}) for p in o.prune] + [variant_id({"sparsity": p}) for p in o.sparsity]
        for name in o.combine:
            if name not in ids:
                raise ConfigError(f"optimize.combine entries must be among the configured variants {ids}; got {name!r}")
    if o.apply_to not in APPLY_TO:
        raise ConfigError(f"optimize.apply_to must be one of {list(APPLY_TO)}; got {o.apply_to!r}")


def measured_keys(cfg: Config) -> List[str]:
    """Every latency key a run measures: ``HxW_tN`` per resolution and thread count."""
    return [f"{h}x{w}_t{t}" for h, w in cfg.measure.shapes for t in cfg.measure.threads]


def _validate_search(cfg: Config) -> None:
    s = cfg.search
    if s.sampler not in SAMPLERS:
        raise ConfigError(f"search.sampler must be one of {list(SAMPLERS)}; got {s.sampler!r}")
    if s.sampler != "grid" and (s.n_trials is None or s.n_trials < 1):
        raise ConfigError(f"search.sampler={s.sampler} needs search.n_trials >= 1 (distinct candidates to "
                          f"train); got {s.n_trials}")
    if s.population_size < 2:
        raise ConfigError(f"search.population_size must be >= 2; got {s.population_size}")
    if s.psnr not in PSNR_OBJECTIVES:
        raise ConfigError(f"search.psnr must be one of {list(PSNR_OBJECTIVES)}; got {s.psnr!r}")
    if s.latency is not None and s.latency not in measured_keys(cfg):
        raise ConfigError(f"search.latency must be one of the measured keys {measured_keys(cfg)}; got {s.latency!r}")
    if s.max_latency_ms is not None and s.max_latency_ms <= 0:
        raise ConfigError(f"search.max_latency_ms must be > 0; got {s.max_latency_ms}")
    if s.heartbeat_s <= 0:
        raise ConfigError(f"search.heartbeat_s must be > 0; got {s.heartbeat_s}")
    if s.storage is not None and not s.storage.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"search.storage must be a sqlite:///, postgresql:// or mysql:// URL; got {s.storage!r}")


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (written to every run directory)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
