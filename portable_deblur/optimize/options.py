"""The optimize stage's choices (quantization modes, where optimization applies) and the check of
``optimize.*`` (no TensorFlow: ``deploy.export.QUANTIZATIONS`` holds the converter settings for these modes)."""
from portable_deblur.registry import ConfigError, lookup

# Post-training quantization modes (optimize.ptq); "fp32" is the unquantized conversion every float model gets.
PTQ_MODES = ("fp16", "int16x8", "int16x8_float_fallback", "int8", "int8_float_fallback")
# Per-layer plans rather than one converter setting (optimize/mixed.py): int8 with float islands.
MIXED = "mixed"
PLANNED_MODES = (MIXED,)
APPLY_TO = ("all", "pareto")  # optimize every trained candidate, or only the float Pareto front once all are trained


def validate(o) -> None:
    """Check an ``OptimizeConfig``."""
    from portable_deblur.optimize.plan import float_bases

    for mode in o.ptq:
        lookup(dict.fromkeys(PTQ_MODES + PLANNED_MODES), "optimize.ptq entries", mode)
    if o.mixed_max_drop_db < 0 or o.mixed_max_slowdown < 0 or o.mixed_max_tries < 0:
        raise ConfigError(f"optimize.mixed_max_drop_db, mixed_max_slowdown and mixed_max_tries must be >= 0; got "
                          f"{o.mixed_max_drop_db}, {o.mixed_max_slowdown}, {o.mixed_max_tries}")
    from portable_deblur.optimize.mixed import check_islands

    check_islands([], [], o.mixed_ops)  # layer names are checked against each network when it is built
    if o.qat_steps < 0 or o.qat_learning_rate <= 0:
        raise ConfigError(f"optimize.qat_steps must be >= 0 and optimize.qat_learning_rate > 0; got "
                          f"{o.qat_steps}, {o.qat_learning_rate}")
    if o.representative_count < 1:
        raise ConfigError(f"optimize.representative_count must be >= 1; got {o.representative_count}")
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
    ids = [v.id for v in float_bases(o)]
    for name in o.combine or []:
        if name not in ids:
            raise ConfigError(f"optimize.combine entries must be among the configured variants {ids}; got {name!r}")
    lookup(dict.fromkeys(APPLY_TO), "optimize.apply_to", o.apply_to)
