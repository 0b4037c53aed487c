"""Export stage: Keras model -> fixed-shape ``.tflite`` flatbuffer (converted with TFLiteConverter).

Shapes are fixed at conversion: phones' GPU/NNAPI delegates want static shapes, and a dynamic-shape
TRANSPOSE_CONV or RESIZE_BILINEAR drags SHAPE/STRIDED_SLICE/PACK ops into the graph.
"""
from typing import Tuple

from portable_deblur.backend import keras, tf


def to_tflite(model: keras.Model, shape: Tuple[int, int]) -> bytes:
    """Convert ``model`` to an fp32 flatbuffer whose single input is ``[1, height, width, channels]``."""
    height, width = shape
    channels = model.input_shape[-1]

    @tf.function(autograph=False)
    def serve(blurry):
        return model(blurry, training=False)

    concrete = serve.get_concrete_function(tf.TensorSpec([1, height, width, channels], tf.float32, name="blurry"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    return converter.convert()


def artifact_name(kind: str, shape: Tuple[int, int]) -> str:
    """File name of an artifact, e.g. ``fp32_256x256.tflite`` (height x width)."""
    return f"{kind}_{shape[0]}x{shape[1]}.tflite"
