"""Quality stage: PSNR/SSIM on full-size validation images, and output fidelity between two runtimes.

Images are padded (edge mode) to one canvas whose sides are multiples of 2**depth, restored, and cropped
back, so a Keras model and a fixed-shape TFLite model see exactly the same input.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from portable_deblur.estimates import FrameScores

Predict = Callable[[np.ndarray], np.ndarray]  # float32 [1, H, W, 3] -> same shape


def keras_predictor(model) -> Predict:
    """A Keras model's inference as a ``Predict``, traced once for the validation canvas (one shape): 24
    frames at 512x752 took 4.6 s against 5.5 s called eagerly frame by frame, once per judged model."""
    import tensorflow as tf

    run = tf.function(lambda x: model(x, training=False))
    return lambda x: run(x).numpy()


@dataclass(frozen=True)
class Quality:
    """Mean PSNR/SSIM over the validation frames that rank (the configured camera pipeline's), each image's
    PSNR and SSIM (every frame, for paired comparisons) and, for embedded frames, the mean PSNR/SSIM per
    camera pipeline."""

    psnr: float
    ssim: float
    per_image: Tuple[float, ...] = ()
    per_pipeline: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    per_image_ssim: Tuple[float, ...] = ()


def summarise(pairs: Sequence, scores) -> Quality:
    """``Quality`` from per-frame (PSNR, SSIM) ``scores`` of ``pairs``: the headline over the ranked frames,
    and per pipeline over each pipeline's frames (folder frames have none)."""
    scores = np.asarray(scores, np.float64).reshape(-1, 2)
    ranked = np.array([getattr(p, "ranked", True) for p in pairs])
    pipelines = [getattr(p, "pipeline", "") for p in pairs]
    per = {name: tuple(float(v) for v in scores[[q == name for q in pipelines]].mean(0))
           for name in dict.fromkeys(pipelines) if name}
    head = scores[ranked].mean(0)
    return Quality(float(head[0]), float(head[1]), tuple(scores[:, 0]), per, tuple(scores[:, 1]))


def frame_scores(pairs: Sequence, **by_source: Quality) -> FrameScores:
    """Every frame's PSNR/SSIM per source (``blurry=..., keras=...``) with the frames' names and pipelines."""
    scores = FrameScores(tuple(p.name for p in pairs), tuple(getattr(p, "pipeline", "") for p in pairs),
                         tuple(bool(getattr(p, "ranked", True)) for p in pairs))
    for source, q in by_source.items():
        scores = scores.with_source(source, q.per_image, q.per_image_ssim)
    return scores


def canvas_shape(pairs, multiple: int) -> Tuple[int, int]:
    """Smallest (H, W), multiples of ``multiple``, that holds every validation image."""
    h = max(p.shape[0] for p in pairs)
    w = max(p.shape[1] for p in pairs)
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def image_quality(sharp: np.ndarray, image: np.ndarray, ssim: bool = True) -> Tuple[float, float]:
    """PSNR (dB) and SSIM (NaN with ``ssim=False``: it costs 20x the PSNR) of a uint8 image against the uint8
    reference."""
    psnr = peak_signal_noise_ratio(sharp, image, data_range=255)
    return float(psnr), float(structural_similarity(sharp, image, channel_axis=-1, data_range=255) if ssim else "nan")


def restore(predict: Predict, blurry: np.ndarray, canvas: Tuple[int, int]) -> np.ndarray:
    """Run ``predict`` on one uint8 image padded to ``canvas``; return the float output cropped back."""
    h, w = blurry.shape[:2]
    padded = np.pad(blurry.astype(np.float32) / 255.0, ((0, canvas[0] - h), (0, canvas[1] - w), (0, 0)), mode="edge")
    return predict(padded[None])[0, :h, :w]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def quality(predict: Predict, pairs: Sequence, canvas: Tuple[int, int], ssim: bool = True,
            keep: Optional[List[np.ndarray]] = None) -> Quality:
    """Mean PSNR/SSIM of ``predict`` over ``pairs``, each restored at full size on ``canvas`` one at a time
    (a folder dataset's frames are decoded as they are needed, never held together). ``keep``: a list that
    receives every restored output, in the order of ``pairs``."""
    scores = []
    for p in pairs:
        out = restore(predict, p.blurry, canvas)
        scores.append(image_quality(p.sharp, to_uint8(out), ssim))
        if keep is not None:
            keep.append(out)
    return summarise(pairs, scores)


def output_bytes(pairs: Sequence) -> int:
    """What holding one float32 output of every frame of ``pairs`` takes."""
    return sum(4 * p.shape[0] * p.shape[1] * 3 for p in pairs)


_BLURRY: List = []  # [(pairs, their Quality)]: the last validation set's, computed once per run


def blurry_quality(pairs: Sequence) -> Quality:
    """The identity baseline: PSNR/SSIM of the blurry inputs themselves (a frame's blurry and restored scores
    are computed alike, so their paired difference is the network's gain). Every judged candidate asks for it
    (a second of SSIM on the default frames, a folder's frames decoded again): the last set's is kept."""
    if _BLURRY and _BLURRY[0][0] is pairs:
        return _BLURRY[0][1]
    quality_ = summarise(pairs, [image_quality(p.sharp, p.blurry) for p in pairs])
    _BLURRY[:] = [(pairs, quality_)]  # holding the set keeps its identity valid
    return quality_


@dataclass(frozen=True)
class Fidelity:
    """How closely one runtime reproduces another (MediaTek paper, Table 5): PSNR and per-pixel L2."""

    psnr: float
    psnr_std: float
    l2: float


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))


def _fidelity(mses: Sequence[float]) -> Fidelity:
    psnrs = [10 * np.log10(1.0 / m) if m > 0 else float("inf") for m in mses]
    finite = [p for p in psnrs if np.isfinite(p)]  # identical outputs give inf PSNR: no spread to report
    return Fidelity(float(np.mean(psnrs)), float(np.std(finite)) if finite else 0.0, float(np.mean(mses)))


def quality_and_fidelity(reference: Union[Predict, Sequence[np.ndarray]], other: Predict, pairs: Sequence,
                         canvas: Tuple[int, int]) -> Tuple[Quality, Fidelity]:
    """``other``'s quality and its fidelity to ``reference`` in one pass: each frame is read once and each
    predictor runs once on it (one frame in memory at a time). ``reference`` may instead be its outputs on
    ``pairs``, already computed (``quality(keep=...)``): the same figures without running it again."""
    scores, mses = [], []
    for i, p in enumerate(pairs):
        blurry = p.blurry
        out = restore(other, blurry, canvas)
        mses.append(_mse(reference[i] if not callable(reference) else restore(reference, blurry, canvas), out))
        scores.append(image_quality(p.sharp, to_uint8(out)))
    return summarise(pairs, scores), _fidelity(mses)
