"""Custom Keras layers that TFLite converts to a single builtin op.

Real layer classes with ``get_config`` (never ``Lambda``): Lambda layers break TF-MOT's model cloning for
quantization-aware training and do not round-trip through ``from_config``.
"""
from portable_deblur.backend import keras, tf


@keras.utils.register_keras_serializable(package="portable_deblur")
class DepthToSpace(keras.layers.Layer):
    """Rearranges ``block_size**2`` channel groups into space (TFLite op DEPTH_TO_SPACE)."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        b = self.block_size
        return (n, None if h is None else h * b, None if w is None else w * b, c // (b * b))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


CUSTOM_OBJECTS = {"DepthToSpace": DepthToSpace}
