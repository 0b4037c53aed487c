"""The training stage's choices (registries keyed by the YAML strings) and the check of ``train.*``."""
from pathlib import Path

from portable_deblur.registry import ConfigError, lookup

SCHEDULES = ("cosine", "exponential")  # cosine (with optional warm-up) or the MediaTek paper's exponential decay
# Keras mixed-precision policies, and auto: mixed_bfloat16 on a CPU that computes bfloat16 natively
# (environment.native_bfloat16), float32 elsewhere.
AUTO = "auto"
PRECISIONS = (AUTO, "float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("mirrored", "none")
PRETRAINED = "pretrained"  # train.init: each candidate's path of the supernet the package ships  # mirrored: tf.distribute.MirroredStrategy over every local GPU


def validate(t, shared_start: bool = False) -> None:
    """Check a ``TrainConfig`` (no TensorFlow); ``shared_start``: every candidate starts from a supernet trained
    in the run (``search.weight_sharing=supernet``), a start ``train.steps=0`` may judge as it is."""
    from portable_deblur.train.losses import LOSSES

    lookup(LOSSES, "train.loss", t.loss)
    for kind, value, table in (("train.schedule", t.schedule, SCHEDULES), ("train.precision", t.precision, PRECISIONS),
                               ("train.distribute", t.distribute, DISTRIBUTE)):
        lookup(dict.fromkeys(table), kind, value)
    for key in ("batch_size", "crop", "crops_per_pair"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1; got {getattr(t, key)}")
    if t.steps < 0 or (t.steps == 0 and t.init is None and not shared_start):
        raise ConfigError(f"train.steps must be >= 1, or 0 with a train.init or search.weight_sharing=supernet "
                          f"(judge the start's weights as they are, without training); got {t.steps} with "
                          f"train.init={t.init!r}")
    for key in ("fft_weight", "warmup_steps"):
        if getattr(t, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0; got {getattr(t, key)}")
    if t.init is not None and t.init != PRETRAINED and not Path(t.init).expanduser().exists():
        raise ConfigError(f"train.init must be {PRETRAINED!r} (the start the package ships), a weight table "
                          f"(.npz), a run directory, a candidate folder or a .keras file; {t.init!r} does not exist")
