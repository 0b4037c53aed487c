"""fp16 range, per layer: LiteRT's GPU accelerator computes in fp16 whatever the file's dtype, and fp16's largest
finite value is 65504. A network that is fine in float32 can overflow there -- not only in an activation but
inside a reduction: LiteRT's own NAFNet phone sample found LayerNorm's per-pixel channel sums (~90k) and sums
of squares (~15M) past fp16 where the deep residual stream reaches |x| ~ 175 (google-ai-edge/litert-samples,
compiled_model_api/image_restoration/conversion/README.md), and a global average pool sums a whole frame,
which grows with the resolution (720p has 14x the pixels of 256x256).

``peaks`` runs the float Keras model on frames of one size and returns, per layer, the largest magnitude of its
output, of a LayerNorm's squared deviations, and of the sums inside its reductions (a LayerNorm's channel sum
and sum of squares, a global pool's spatial sum); ``fp16_report`` does so at every measured size and flags
what comes within ``RISK`` of 65504. Whether a sum overflows depends on how a GPU accumulates: Mesa's lavapipe
computed a LayerNorm whose sum of squares reached 1.3e5 correctly, and returned 0 for a normalised 1 once the
squared deviations themselves reached 2e5 (``benchmarks/fp16_range.py``); a phone GPU that accumulates in fp16
fails at the sums (the LiteRT sample's Mali case).
The flags go into the portability matrix and a bundle's manifest; where an adapter computes in fp16 (Mesa's
lavapipe), ``measure.gpu_psnr`` shows whether the GPU accelerator's output suffered.
"""
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

import numpy as np

FP16_MAX = 65504.0
# A value above a quarter of fp16's largest is flagged: two more bits of growth -- a brighter frame, a larger
# frame for a global sum, a longer training -- would overflow.
RISK = 0.25


@dataclass(frozen=True)
class Peak:
    """The largest magnitude one quantity of one layer reached: ``kind`` is ``activation`` (its output),
    ``square`` (a LayerNorm's squared deviations, the SQUARE op's output), ``channel sum`` / ``sum of squares``
    (a LayerNorm's per-pixel reductions over channels, before dividing: they overflow where a GPU accumulates
    in fp16), ``variance`` (a scaled LayerNorm's variance, rescaled to the input's scale) or ``spatial sum``
    (a global average pool's sum over the frame, before dividing)."""

    layer: str
    kind: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.layer} {self.kind} {self.value:.2g}"


def _probes(model) -> list:
    """(layer, kind, scalar tensor) for every quantity ``peaks`` reads, built on ``model``'s graph."""
    from portable_deblur.backend import keras, tf
    from portable_deblur.models.layers import AxisMeans, ChannelLayerNorm

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or isinstance(layer.output, (list, tuple)):
            continue
        out.append((layer.name, "activation", tf.reduce_max(tf.abs(layer.output))))
        x = layer.input
        if isinstance(layer, ChannelLayerNorm):  # a scaled one reduces x * scale, then rescales
            centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
            scaled = centred * layer.scale
            out.append((layer.name, "channel sum", tf.reduce_max(tf.abs(tf.reduce_sum(x * layer.scale, axis=-1)))))
            out.append((layer.name, "square", tf.reduce_max(tf.square(scaled))))
            out.append((layer.name, "sum of squares", tf.reduce_max(tf.reduce_sum(tf.square(scaled), axis=-1))))
            if layer.scale != 1.0:  # the rescaled variance is a value the GPU holds too
                out.append((layer.name, "variance", tf.reduce_max(tf.reduce_mean(tf.square(centred), axis=-1))))
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            out.append((layer.name, "spatial sum", tf.reduce_max(tf.abs(tf.reduce_sum(x, axis=[1, 2])))))
        if isinstance(layer, AxisMeans):  # a column's sum, then a sum over the row of column means
            rows = tf.reduce_mean(x, axis=1, keepdims=True)
            out.append((layer.name, "spatial sum", tf.maximum(tf.reduce_max(tf.abs(tf.reduce_sum(x, axis=1))),
                                                              tf.reduce_max(tf.abs(tf.reduce_sum(rows, axis=2))))))
    return out


def peaks(model, frames: Sequence[np.ndarray]) -> List[Peak]:
    """Every probed quantity's largest magnitude over ``frames`` (float32 ``[1, H, W, C]``), largest first."""
    from portable_deblur.backend import keras, tf

    probes = _probes(model)
    probe = keras.Model(model.input, [p for _, _, p in probes])  # run eagerly: no tracing per frame size
    largest = np.zeros(len(probes))
    for frame in frames:
        largest = np.maximum(largest, [float(v) for v in probe(tf.constant(frame), training=False)])
    found = [Peak(layer, kind, float(v)) for (layer, kind, _), v in zip(probes, largest)]
    return sorted(found, key=lambda p: -p.value)


def fp16_report(model, frames_by_size: Dict[str, Sequence[np.ndarray]]) -> Dict[str, Dict]:
    """Per size (``"720x1280"``): the largest quantity, and every one above ``RISK`` of fp16's largest value."""
    out = {}
    for size, frames in frames_by_size.items():
        found = peaks(model, frames)
        out[size] = {"largest": asdict(found[0]) if found else None,
                     "risky": [asdict(p) for p in found if p.value > RISK * FP16_MAX]}
    return out


def risk_text(report: Dict[str, Dict]) -> str:
    """``fp16 overflow risk at 720x1280: enc3_blk0_norm1 sum of squares 2.1e+05, ...`` (the worst three per
    size, the ones past 65504 marked), or "" when nothing came near."""
    parts = []
    for size, found in report.items():
        risky = [Peak(**p) for p in found.get("risky", [])]
        if risky:
            shown = ", ".join(p.text + (" (overflows)" if p.value > FP16_MAX else "") for p in risky[:3])
            more = f" and {len(risky) - 3} more" if len(risky) > 3 else ""
            parts.append(f"fp16 overflow risk at {size}: {shown}{more}")
    return "; ".join(parts)
