"""The deploy stage's choices (measurement backends, delegate targets, what a violation does) and the checks
of ``measure.*`` and ``portability.*``."""
from portable_deblur.config.stages import RESOLUTION_SETS
from portable_deblur.registry import ConfigError, lookup

ON_VIOLATION = ("flag", "skip")  # skip: a candidate a required target rejects is not trained; flag: kept off the front


def validate_measure(m) -> None:
    """Check a ``MeasureConfig`` (no TensorFlow)."""
    from portable_deblur.deploy.adb import ADB_DELEGATES
    from portable_deblur.deploy.measure import BACKENDS

    for res in m.resolutions:
        if len(res) != 2 or min(res) < 1:
            raise ConfigError(f"measure.resolutions entries must be [height, width]; got {list(res)}")
    if m.resolution_set is not None:
        lookup(RESOLUTION_SETS, "measure.resolution_set", m.resolution_set)
    if not m.shapes:
        raise ConfigError("measure.resolutions (or measure.resolution_set) must name at least one resolution")
    lookup(BACKENDS, "measure.backend", m.backend)
    lookup(ADB_DELEGATES, "measure.adb_delegate", m.adb_delegate)
    if m.interleaved_rounds < 0:
        raise ConfigError(f"measure.interleaved_rounds must be >= 0; got {m.interleaved_rounds}")
    if m.reference_repeats < 1:
        raise ConfigError(f"measure.reference_repeats must be >= 1; got {m.reference_repeats}")
    if m.retries < 0:
        raise ConfigError(f"measure.retries must be >= 0; got {m.retries}")
    if m.max_seconds <= 0:
        raise ConfigError(f"measure.max_seconds must be > 0; got {m.max_seconds}")
    if m.runs < 1 or not m.threads or min(m.threads) < 1:
        raise ConfigError(f"measure.runs and every measure.threads entry must be >= 1; "
                          f"got runs={m.runs}, threads={list(m.threads)}")


def validate_portability(p) -> None:
    """Check a ``PortabilityConfig``: every target named is in ``op_support/``."""
    from portable_deblur.deploy.portability import targets

    objective = [p.objective] if p.objective else []
    for name in [*p.targets, *p.require, *objective]:
        lookup(targets(), "portability target", name)
    if objective and objective[0] not in p.targets:
        raise ConfigError(f"portability.objective {objective[0]!r} must also be in portability.targets "
                          f"{list(p.targets)}")
    lookup(dict.fromkeys(ON_VIOLATION), "portability.on_violation", p.on_violation)
