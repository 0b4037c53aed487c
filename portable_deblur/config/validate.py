"""The whole config's check at load time: each stage validates its own section against its own registries
(``<stage>/options.py``), in pipeline order, so an error names the first bad value. No TensorFlow."""
from portable_deblur import console
from portable_deblur.confidence import check_level
from portable_deblur.registry import ConfigError, lookup


def validate(cfg) -> None:
    """Raise ``ConfigError`` naming the first invalid value; model arguments are checked when candidates are
    expanded (they need the builders)."""
    from portable_deblur.data import options as data
    from portable_deblur.deploy import options as deploy
    from portable_deblur.optimize import options as optimize
    from portable_deblur.search import options as search
    from portable_deblur.train import options as train

    data.validate(cfg.data)
    train.validate(cfg.train, shared_start=cfg.search.weight_sharing == "supernet")
    deploy.validate_measure(cfg.measure)
    deploy.validate_portability(cfg.portability)
    optimize.validate(cfg.optimize)
    search.validate(cfg)
    check_level(cfg.rank.confidence, "rank.confidence")
    if cfg.rank.quality_margin_db < 0:
        raise ConfigError(f"rank.quality_margin_db must be >= 0 (dB a PSNR difference must clear beyond noise); "
                          f"got {cfg.rank.quality_margin_db}")
    if not 0 <= cfg.rank.latency_margin < 1:
        raise ConfigError(f"rank.latency_margin must be a share in [0, 1) (how far a latency ratio must clear 1 "
                          f"beyond noise, e.g. 0.02); got {cfg.rank.latency_margin}")
    if cfg.rank.resamples < 1:
        raise ConfigError(f"rank.resamples must be >= 1 (frame resamples behind the ranking's stability); "
                          f"got {cfg.rank.resamples}")
    lookup(dict.fromkeys(console.LEVELS), "log.level", cfg.log.level)
