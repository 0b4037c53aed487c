"""Loading a config: defaults (``schema``), ``search_spaces/<space>.yaml`` over them, CLI overrides last.

Overrides use OmegaConf's dotlist grammar (the one Hydra uses): ``train.steps=200``, ``grid.activation=[relu]``.
Everything is validated at load time, before any work starts; the result is a tree of frozen dataclasses.
A run directory's saved ``config.yaml`` is read back the same way (``load_saved``), validated too.
"""
import dataclasses
import sys
from pathlib import Path
from typing import List, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from portable_deblur.config.schema import Config
from portable_deblur.config.validate import validate
from portable_deblur.registry import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SPACES_DIR = REPO_ROOT / "search_spaces"


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


def last_wins(args: Sequence[str], what: str = "") -> List[str]:
    """``key=value`` arguments with a key given twice reduced to its last value (OmegaConf's rule, for every
    key, ``space=`` included), and each overridden one reported on stderr, naming both values."""
    last = {a.split("=", 1)[0]: a for a in args}
    for arg in args:
        if last[arg.split("=", 1)[0]] is not arg:
            print(f"note: {what}{arg!r} is overridden by {last[arg.split('=', 1)[0]]!r} given later", file=sys.stderr)
    return [a for a in args if last[a.split("=", 1)[0]] is a]


def load_config(args: Sequence[str]) -> Config:
    """Build the config from CLI-style arguments: ``space=NAME`` plus ``dotted.key=value`` overrides."""
    args = list(args)
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"arguments must look like key=value (e.g. space=upsampling train.steps=100); got {arg!r}")
    args = last_wins(args)
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
    if cfg.search.rungs:  # the schedule spans the top rung: training in rungs equals training at once
        top = int(cfg.search.rungs[-1])
        if any(a.startswith("train.steps=") for a in args) and cfg.train.steps != top:
            raise ConfigError(f"train.steps={cfg.train.steps} but search.rungs={list(cfg.search.rungs)} ends at {top}: "
                              f"with rungs the top rung is the training length; pass search.rungs=[...,"
                              f"{cfg.train.steps}], or search.rungs=[] to train every candidate {cfg.train.steps} steps")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=top))
    validate(cfg)
    return cfg


def load_saved(path: Path) -> Config:
    """The config a run wrote to ``path`` (its ``config.yaml``), validated, with ``run`` pointing at the
    folder it is in now (a run directory may have been moved or copied)."""
    data = OmegaConf.load(path)
    data.pop("environment", None)  # a record of the machine, not a setting
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), data))
    except OmegaConfBaseException as exc:
        raise _friendly(exc) from None
    run_dir = Path(path).parent
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, root=str(run_dir.parent), name=run_dir.name))
    validate(cfg)
    return cfg


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (written to every run directory)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
