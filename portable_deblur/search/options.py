"""The search stage's choices (samplers) and the check of ``search.*``."""
import re
from pathlib import Path

from portable_deblur.registry import ConfigError, lookup

SAMPLERS = ("grid", "nsga2", "tpe")  # grid: every point once; nsga2 / tpe: search.n_trials sampled candidates
STORAGE_SCHEMES = ("mysql", "postgresql", "sqlite")
WEIGHT_SHARING = ("none", "supernet")  # supernet: one weight-sharing network for the grid (models/supernet.py)


def measured_keys(cfg) -> list:
    """Every latency key a run measures: ``HxW_tN`` per resolution and thread count."""
    from portable_deblur.latency import latency_key

    return [latency_key((h, w), t) for h, w in cfg.measure.shapes for t in cfg.measure.threads]


RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")


def validate_run_name(name) -> None:
    """``run.name`` names one folder under ``run.root``: letters, digits and ``_ . + = -``, not starting with
    a dot (no separators, no ``..``), so a run can never write outside its root."""
    if name is not None and (not RUN_NAME.fullmatch(str(name)) or ".." in str(name)):
        raise ConfigError(f"run.name must be a folder name (letters, digits, _ . + = -, not starting with '.', "
                          f"no '/' or '..'); got {name!r}")


def validate(cfg) -> None:
    """Check ``search.*`` (it needs the measured resolutions, so it takes the whole config)."""
    from portable_deblur.rank import PSNR_OBJECTIVES

    validate_run_name(cfg.run.name)
    s = cfg.search
    lookup(dict.fromkeys(SAMPLERS), "search.sampler", s.sampler)
    if s.sampler != "grid" and (s.n_trials is None or s.n_trials < 1):
        raise ConfigError(f"search.sampler={s.sampler} needs search.n_trials >= 1 (distinct candidates to "
                          f"train); got {s.n_trials}")
    if s.population_size < 2:
        raise ConfigError(f"search.population_size must be >= 2; got {s.population_size}")
    lookup(dict.fromkeys(PSNR_OBJECTIVES), "search.psnr", s.psnr)
    if s.latency is not None and s.latency not in measured_keys(cfg):
        raise ConfigError(f"search.latency must be one of the measured keys {measured_keys(cfg)}; got {s.latency!r}")
    if s.max_latency_ms is not None and s.max_latency_ms <= 0:
        raise ConfigError(f"search.max_latency_ms must be > 0; got {s.max_latency_ms}")
    if s.heartbeat_s <= 0:
        raise ConfigError(f"search.heartbeat_s must be > 0; got {s.heartbeat_s}")
    if s.rungs and (any(r < 1 for r in s.rungs[1:]) or s.rungs[0] < 0 or any(b <= a for a, b in zip(s.rungs, s.rungs[1:]))):
        raise ConfigError(f"search.rungs must be increasing step counts >= 1 (e.g. [100, 300, 1200]; a first rung of "
                          f"0 judges each candidate's start as it is); got {s.rungs}")
    if s.rungs and s.rungs[0] == 0 and s.weight_sharing != "supernet" and cfg.train.init is None:
        raise ConfigError("search.rungs starting at 0 judges each candidate's start without training; it needs a "
                          "start: search.weight_sharing=supernet or train.init")
    if s.eta < 2:
        raise ConfigError(f"search.eta must be >= 2 (each rung keeps the best 1/eta); got {s.eta}")
    if s.compare_run is not None and not (Path(s.compare_run).expanduser() / "config.yaml").is_file():
        raise ConfigError(f"search.compare_run must be a run directory (one with a config.yaml); got "
                          f"{s.compare_run!r}")
    lookup(dict.fromkeys(WEIGHT_SHARING), "search.weight_sharing", s.weight_sharing)
    from portable_deblur.train.paths import PATH_SAMPLING

    lookup(dict.fromkeys(PATH_SAMPLING), "search.path_sampling", s.path_sampling)
    if s.sandwich_random < 0:
        raise ConfigError(f"search.sandwich_random must be >= 0 (uniform paths a sandwich step adds); got "
                          f"{s.sandwich_random}")
    if s.screen_seconds <= 0:
        raise ConfigError(f"search.screen_seconds must be > 0 (seconds of timed runs for a screened candidate); got "
                          f"{s.screen_seconds}")
    if s.supernet_steps < 1:
        raise ConfigError(f"search.supernet_steps must be >= 1; got {s.supernet_steps}")
    if s.storage is not None and s.storage.split(":", 1)[0].split("+")[0] not in STORAGE_SCHEMES:
        raise ConfigError(f"search.storage must be a sqlite:///, postgresql:// or mysql:// URL; got {s.storage!r}")
