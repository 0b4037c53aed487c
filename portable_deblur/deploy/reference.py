"""The run's reference network: one fixed small U-Net, exported once per measured input shape, that every
artifact is timed alternately with (``measure.time_interpreter``). Its ratio to the reference does not move
when the whole machine gets faster or slower, as per-trial milliseconds do (up to 2x between windows on
shared machines); ratio x the reference's milliseconds at the run's start is the latency the study and the
report both rank by (``latency.best_ms``)."""
from pathlib import Path
from typing import Dict, Tuple

from portable_deblur.files import atomic_write

# Small (a few ms at 256x256 on 2 cores) so it adds little to each measurement, and made of ops every
# backend runs in fp32 (no custom or fallback ops).
REFERENCE = {"arch": "unet", "width": 8, "enc_blocks": [1, 1], "dec_blocks": [1, 1], "middle_blocks": 1,
             "upsampler": "transpose", "activation": "relu", "residual": True}


def write_reference(path: Path, shape: Tuple[int, int]) -> Path:
    """Export the reference network at ``shape`` to ``path`` unless it is there (same seed, same file)."""
    if path.is_file():
        return path
    from portable_deblur.backend import keras
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import candidate_at

    keras.utils.set_random_seed(0)
    args = {k: v for k, v in REFERENCE.items() if k != "arch"}
    model = build_model(candidate_at(REFERENCE["arch"], args, {}))
    atomic_write(path, to_tflite(model, tuple(-(-s // 4) * 4 for s in shape)))  # two levels: multiples of 4
    return path


def write_references(layout, cfg) -> None:
    """The reference file at every measured shape in this worker's run directory."""
    for shape in cfg.measure.shapes:
        write_reference(layout.reference(tuple(shape)), tuple(shape))


def reference_ms(layout, cfg) -> Dict[str, float]:
    """The reference files timed alone at every measured thread count: ``{latency key: ms}``, the run's anchor
    (``SearchStudy.set_reference_ms``): the fastest of ``measure.reference_repeats`` medians, each in a fresh
    process, so a busy moment at the run's start (seen: 5.1 to 10.6 ms for the same 256x256 file) does not set
    the run's units."""
    from portable_deblur.deploy.measure import measure
    from portable_deblur.latency import latency_key

    return {latency_key(shape, threads): min(measure(layout.reference(tuple(shape)), cfg.measure, threads).median_ms
                                             for _ in range(cfg.measure.reference_repeats))
            for shape in cfg.measure.shapes for threads in cfg.measure.threads}
