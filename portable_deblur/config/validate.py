"""The whole config's check at load time: each stage validates its own section against its own registries
(``<stage>/options.py``), in pipeline order, so an error names the first bad value. No TensorFlow."""
from portable_deblur import console
from portable_deblur.registry import lookup


def validate(cfg) -> None:
    """Raise ``ConfigError`` naming the first invalid value; model arguments are checked when candidates are
    expanded (they need the builders)."""
    from portable_deblur.data import options as data
    from portable_deblur.deploy import options as deploy
    from portable_deblur.optimize import options as optimize
    from portable_deblur.search import options as search
    from portable_deblur.train import options as train

    data.validate(cfg.data)
    train.validate(cfg.train)
    deploy.validate_measure(cfg.measure)
    deploy.validate_portability(cfg.portability)
    optimize.validate(cfg.optimize)
    search.validate(cfg)
    lookup(dict.fromkeys(console.LEVELS), "log.level", cfg.log.level)
