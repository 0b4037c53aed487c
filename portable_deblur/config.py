"""Typed configuration: defaults here, ``search_spaces/<space>.yaml`` over them, CLI overrides last.

Overrides use OmegaConf's dotlist grammar (the one Hydra uses): ``train.steps=200``, ``grid.activation=[relu]``.
Everything is validated at load time, before any work starts; the result is a tree of frozen dataclasses.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

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
        "astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
        "brick", "camera", "coins", "grass", "gravel", "moon", "page"])
    val_images: List[str] = field(default_factory=lambda: ["chelsea", "stereo_motorcycle"])
    max_side: int = 384
    blurs_per_image: int = 8
    val_blurs_per_image: int = 2
    # Trajectory arc length in pixels at max_side; 1.5-6 px at 384 px is roughly 5-20 px on a 1280-wide frame.
    blur_length: List[float] = field(default_factory=lambda: [1.5, 6.0])
    noise_sigma: float = 0.01
    seed: int = 0
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    max_train_pairs: int = 0
    max_val_pairs: int = 0
    frame_stride: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """Fixed-budget training: Adam with cosine decay, seeded."""

    steps: int = 1000
    batch_size: int = 8
    crop: int = 64
    learning_rate: float = 1e-3
    loss: str = "l1"
    seed: int = 0
    log_every: int = 50
    jit_compile: bool = True  # XLA on CPU: ~1.5x faster steps for these small convnets


@dataclass(frozen=True)
class MeasureConfig:
    """Latency measurement with the LiteRT interpreter; resolutions are [height, width]."""

    resolutions: List[List[int]] = field(default_factory=lambda: [[256, 256]])
    threads: int = 2
    warmup: int = 3
    runs: int = 20


@dataclass(frozen=True)
class RunConfig:
    """Where results go; re-running with the same name resumes, skipping finished candidates."""

    name: Optional[str] = None
    root: str = "experiments/runs"
    overwrite: bool = False


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
    run: RunConfig = field(default_factory=RunConfig)

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
    lo_hi = cfg.data.blur_length
    if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
        raise ConfigError(f"data.blur_length must be [min, max] pixels with 0 < min <= max; got {list(lo_hi)}")
    for key in ("steps", "batch_size", "crop"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1; got {getattr(cfg.train, key)}")
    for res in cfg.measure.resolutions:
        if len(res) != 2 or min(res) < 1:
            raise ConfigError(f"measure.resolutions entries must be [height, width]; got {list(res)}")
    if cfg.measure.runs < 1 or cfg.measure.threads < 1:
        raise ConfigError(f"measure.runs and measure.threads must be >= 1; got {cfg.measure.runs}, {cfg.measure.threads}")


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (written to every run directory)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
