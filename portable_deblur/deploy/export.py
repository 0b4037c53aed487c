"""Export stage: Keras model -> fixed-shape ``.tflite`` flatbuffer (converted with TFLiteConverter).

Shapes are fixed at conversion: phones' GPU/NNAPI delegates want static shapes, and a dynamic-shape
TRANSPOSE_CONV or RESIZE_BILINEAR drags SHAPE/STRIDED_SLICE/PACK ops into the graph.

Post-training quantization modes are a registry keyed by the YAML string (``optimize.ptq``). Modes that
may keep some ops in float say so in their name (``*_float_fallback``): an app team must be able to tell
a fully quantized file from one that silently is not.
"""
from typing import Callable, Iterable, Optional, Tuple

import numpy as np

from portable_deblur.backend import keras, tf
from portable_deblur.models.fold import fold_batch_norms
from portable_deblur.registry import lookup


def _fp32(converter, representative) -> None:
    pass


def _fp16(converter, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _int8(converter, representative) -> None:
    """Full integer: every op int8 or the conversion fails (float input/output, quantized at the edges)."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _int8_float_fallback(converter, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]


_16X8 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8


def _int16x8(converter, representative) -> None:
    """int16 activations, int8 weights; the converter refuses ops without 16x8 kernels."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [_16X8]


def _int16x8_float_fallback(converter, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [_16X8, tf.lite.OpsSet.TFLITE_BUILTINS]


# Converter settings per quantization mode: "fp32" and every PTQ mode the optimize stage offers
# (optimize.options.PTQ_MODES; tests check the two agree).
QUANTIZATIONS = {
    "fp32": _fp32, "fp16": _fp16, "int8": _int8, "int8_float_fallback": _int8_float_fallback,
    "int16x8": _int16x8, "int16x8_float_fallback": _int16x8_float_fallback,
}
NEEDS_DATA = {"int8", "int8_float_fallback", "int16x8", "int16x8_float_fallback"}


def get_quantization(name: str) -> Callable:
    """Return the converter set-up of quantization mode ``name``."""
    return lookup(QUANTIZATIONS, "quantization", name)


def to_tflite(model: keras.Model, shape: Tuple[int, int], quantization: str = "fp32",
              representative: Optional[Callable[[], Iterable]] = None) -> bytes:
    """Convert ``model`` to a flatbuffer whose single input is ``[1, height, width, channels]``.

    ``representative`` yields ``[float32 array of that input shape]`` for calibration (PTQ int modes).
    """
    configure = get_quantization(quantization)
    if quantization in NEEDS_DATA and representative is None:
        raise ValueError(f"quantization {quantization!r} needs a representative dataset")
    converter = converter_for(model, shape)
    configure(converter, representative)
    return convert(converter)


def convert(converter) -> bytes:
    """Run the converter; its C++ progress lines ("fully_quantize: 0, ...") are filtered like start-up noise."""
    from portable_deblur.console import quiet_stderr

    with quiet_stderr():
        return converter.convert()


def converter_for(model: keras.Model, shape: Tuple[int, int]) -> "tf.lite.TFLiteConverter":
    """A converter for ``model`` at the fixed input ``[1, height, width, channels]`` named ``blurry``."""
    height, width = shape
    model = fold_batch_norms(model)  # batch norms leave the file (models/fold.py)

    @tf.function(autograph=False)
    def serve(blurry):
        return model(blurry, training=False)

    spec = tf.TensorSpec([1, height, width, model.input_shape[-1]], tf.float32, name="blurry")
    # The converter saves its trackable as a SavedModel first. Handing it the Keras model makes it trace
    # every layer for serialization (16 s for a tiny NAFNet); a module holding just the variables gives the
    # identical flatbuffer in 3 s.
    holder = tf.Module()
    holder.weights = list(model.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function(spec)], holder)


def representative_inputs(train, shape: Tuple[int, int], count: int, seed: int = 0) -> Callable[[], Iterable]:
    """Calibration inputs: ``count`` blurry training images of ``shape`` (edge-padded where one is smaller)."""
    from portable_deblur.data.pipeline import calibration_images

    samples = []
    for image in calibration_images(train, shape, count, seed):
        h, w = image.shape[:2]
        crop = np.pad(image.astype(np.float32) / 255.0, ((0, shape[0] - h), (0, shape[1] - w), (0, 0)), mode="edge")
        samples.append(crop[None])
    return lambda: ([s] for s in samples)
