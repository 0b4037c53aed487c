"""Judging a trained float model: its Keras PSNR/SSIM on the validation frames, its size, MACs and layer
widths -- what every artifact made from it shares (``Trained``)."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from portable_deblur.config import Config
from portable_deblur.data.sources import Dataset
from portable_deblur.layout import RunLayout
from portable_deblur.models.build import size_multiple
from portable_deblur.models.candidate import Candidate
from portable_deblur.models.macs import count_macs, count_params
from portable_deblur.estimates import FrameScores
from portable_deblur.records import Variant
from portable_deblur.train.evaluate import (blurry_quality, canvas_shape, frame_scores, keras_predictor, output_bytes,
                                           quality)
from portable_deblur.train.fit import log_scalars


@dataclass(frozen=True)
class Trained:
    """A trained float model (the candidate's, or a pruned / sparse variant of it) and what every artifact
    row made from it shares."""

    candidate: Candidate
    model: object
    canvas: Tuple[int, int]
    multiple: int
    keras_psnr: float
    keras_ssim: float
    blurry_psnr: float
    blurry_ssim: float
    params: int
    macs: int
    steps: int
    folder: Path
    channels: Dict[str, int]  # conv layer -> output channels (a pruned model's real widths)
    pipelines: Dict[str, Dict[str, float]] = field(default_factory=dict)  # pipeline -> blurry/Keras figures
    frames: FrameScores = field(default_factory=FrameScores)  # blurry and Keras figures of every frame
    # The Keras output of every validation frame, kept when they fit KEPT_OUTPUTS_MB: each float file's
    # fidelity to its Keras model is then checked without running the model over the frames again.
    outputs: Tuple = ()


KEPT_OUTPUTS_MB = 512  # the embedded validation's outputs take ~40 MB; a folder of 720p frames is run again


def conv_widths(model) -> Dict[str, int]:
    """Output channels of every conv layer of ``model`` (what a bundle records as the widths it has)."""
    return {layer.name: int(layer.filters) for layer in model.layers if getattr(layer, "filters", None)}


def judged(candidate: Candidate, model, cfg: Config, dataset: Dataset, folder: Path, variant: Variant,
           steps: Optional[int] = None) -> Trained:
    """A trained float model with its Keras quality, size and MACs (the row fields its artifacts share);
    ``steps``: the training steps it had (default ``train.steps``; a rung's own with ``search.rungs``)."""
    steps = cfg.train.steps if steps is None else steps
    multiple = size_multiple(candidate)
    canvas = canvas_shape(dataset.val, multiple)
    outputs = [] if output_bytes(dataset.val) <= KEPT_OUTPUTS_MB * 2 ** 20 else None
    keras_q = quality(keras_predictor(model), dataset.val, canvas, keep=outputs)
    blurry_q = blurry_quality(dataset.val)
    suffix = "_" + variant.id.replace("-", "_") if variant.id else ""
    log_scalars(RunLayout.tensorboard(folder), steps, **{f"val/psnr_keras{suffix}": keras_q.psnr},
                **{f"val/psnr_keras_{name}{suffix}": psnr for name, (psnr, _) in keras_q.per_pipeline.items()})
    return Trained(candidate, model, canvas, multiple, keras_q.psnr, keras_q.ssim, blurry_q.psnr, blurry_q.ssim,
                   count_params(model), count_macs(model, cfg.measure.shapes[0]), steps, folder,
                   conv_widths(model), pipeline_figures(blurry=blurry_q, keras=keras_q),
                   frame_scores(dataset.val, blurry=blurry_q, keras=keras_q), tuple(outputs or ()))


def keras_psnr(model, candidate: Candidate, dataset: Dataset) -> float:
    """The Keras model's PSNR on the ranked validation frames (a start's quality before training)."""
    canvas = canvas_shape(dataset.val, size_multiple(candidate))
    return quality(keras_predictor(model), dataset.val, canvas, ssim=False).psnr


def pipeline_figures(**by_source) -> Dict[str, Dict[str, float]]:
    """``{pipeline: {"psnr_<source>": .., "ssim_<source>": ..}}`` from ``Quality`` records by source name."""
    out: Dict[str, Dict[str, float]] = {}
    for source, q in by_source.items():
        for name, (psnr, ssim) in q.per_pipeline.items():
            out.setdefault(name, {}).update({f"psnr_{source}": psnr, f"ssim_{source}": ssim})
    return out
