"""8-bit quantization-aware training with TF Model Optimization Toolkit, for every layer our builders use.

TF-MOT's default registry covers convs, pooling, resize, concatenation, add; our own layers and a few Keras
ones it refuses get a ``QuantizeConfig`` named in the one layer table (``models.layer_support``; a test walks
every layer of every registered architecture option against it). Fake-quant ranges start from data: each quantizer's
min/max is set from the float model's activations on calibration crops before fine-tuning, instead of
TF-MOT's initial [-6, 6] (after a short fine-tune those stay too wide and QAT ends up worse than PTQ).
"""
from typing import Callable, Dict, Iterable

import numpy as np
import tensorflow_model_optimization as tfmot

from portable_deblur.backend import keras, tf
from portable_deblur.models.fold import fold_batch_norms
from portable_deblur.models.layer_support import LAYERS
from portable_deblur.models.layers import CUSTOM_OBJECTS

_q = tfmot.quantization.keras


class OutputQuantizeConfig(_q.QuantizeConfig):
    """Quantize the layer's output (8-bit, asymmetric, per tensor); its weights, if any, stay float in QAT
    and are quantized by the converter. For elementwise / reshaping layers and per-channel scales."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_q.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """No quantizer at all: for ops TFLite requires to keep their input's scale (DEPTH_TO_SPACE), so the
    converter carries the producer's range through instead of meeting two slightly different ones."""

    def get_output_quantizers(self, layer):
        return []


class FusedConvQuantizeConfig(OutputQuantizeConfig):
    """A conv whose fused activation TF-MOT cannot wrap (``relu6``): kernel fake-quantized per output channel
    (8-bit symmetric, as the converter will), the activated output quantized; the activation stays inside."""

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, _q.quantizers.LastValueQuantizer(num_bits=8, per_axis=True, symmetric=True,
                                                                 narrow_range=True))]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]


_TF_MOT_ACTIVATIONS = {"linear", "relu", "swish", "gelu", "softmax", "sigmoid", "tanh"}


# Layer class -> QuantizeConfig for what TF-MOT's registry refuses, from the one layer table
# (models/layer_support.py: "output" / "pass_through"); everything else uses TF-MOT's defaults.
_CONFIG_CLASSES = {"output": OutputQuantizeConfig, "pass_through": PassThroughQuantizeConfig}
QUANTIZE_CONFIGS: Dict[str, Callable[[], _q.QuantizeConfig]] = {
    name: _CONFIG_CLASSES[entry.quantize] for name, entry in LAYERS.items() if entry.quantize != "default"}


def _annotate(layer):
    if isinstance(layer, keras.layers.InputLayer):
        return layer
    act = getattr(getattr(layer, "activation", None), "__name__", None)
    if type(layer).__name__ == "Conv2D" and act not in _TF_MOT_ACTIVATIONS:
        return _q.quantize_annotate_layer(layer, FusedConvQuantizeConfig())
    config = QUANTIZE_CONFIGS.get(type(layer).__name__)
    if config is not None:
        return _q.quantize_annotate_layer(layer, config())
    return _q.quantize_annotate_layer(layer)


def quantize_aware(model: keras.Model, keep_float=()) -> keras.Model:
    """The fake-quantized (QAT) twin of ``model``, sharing nothing with it (weights copied); the layers named
    in ``keep_float`` (a mixed plan's float islands) are left unannotated, so they stay float in its file."""
    keep = set(keep_float)
    model = fold_batch_norms(model)  # as the float file: no batch norm left to quantize (models/fold.py)
    annotated = keras.models.clone_model(
        model, clone_function=lambda layer: layer.__class__.from_config(layer.get_config()) if layer.name in keep
        else _annotate(layer))
    annotated.set_weights(model.get_weights())
    with _q.quantize_scope({**CUSTOM_OBJECTS, "OutputQuantizeConfig": OutputQuantizeConfig,
                            "PassThroughQuantizeConfig": PassThroughQuantizeConfig,
                            "FusedConvQuantizeConfig": FusedConvQuantizeConfig}):
        return _q.quantize_apply(annotated)


def init_ranges(qat: keras.Model, float_model: keras.Model, inputs: Iterable[np.ndarray]) -> int:
    """Set every output/activation quantizer's range to what the float model's matching layer produces on
    ``inputs`` (float32 batches). Returns how many ranges were set."""
    wrapped = {layer.name[len("quant_"):]: layer for layer in qat.layers if layer.name.startswith("quant_")}
    names = [n for n in wrapped if n in {l.name for l in float_model.layers}]
    probe = keras.Model(float_model.inputs, [float_model.get_layer(n).output for n in names])
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    lo_in, hi_in = np.inf, -np.inf
    for x in inputs:
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for n, out in zip(names, outs):
            lo[n], hi[n] = min(lo[n], float(tf.reduce_min(out))), max(hi[n], float(tf.reduce_max(out)))
        lo_in, hi_in = min(lo_in, float(np.min(x))), max(hi_in, float(np.max(x)))
    count = 0
    for n in names:
        for var in wrapped[n].non_trainable_weights:
            base = var.name.rsplit("/", 1)[-1].split(":")[0]
            if base in ("output_min", "post_activation_min"):
                var.assign(min(lo[n], 0.0))
                count += 1
            elif base in ("output_max", "post_activation_max"):
                var.assign(max(hi[n], 1e-3))
    for layer in qat.layers:
        if type(layer).__name__ == "QuantizeLayer":
            for var in layer.non_trainable_weights:
                if var.name.endswith("_min:0"):
                    var.assign(min(lo_in, 0.0))
                elif var.name.endswith("_max:0"):
                    var.assign(max(hi_in, 1e-3))
    return count


def to_int8(qat: keras.Model, shape) -> bytes:
    """Convert a QAT model to a full-int8 ``.tflite`` (float input/output, int8 inside) at ``shape``."""
    from portable_deblur.deploy.export import convert, converter_for

    converter = converter_for(qat, shape)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # the fake-quant ranges become int8 parameters
    return convert(converter)
