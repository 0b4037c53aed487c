"""Custom Keras layers that TFLite converts to a single builtin op.

Real layer classes with ``get_config`` (never ``Lambda``): Lambda layers break TF-MOT's model cloning for
quantization-aware training and do not round-trip through ``from_config``.
"""
import numpy as np

from portable_deblur.backend import keras, tf
from portable_deblur.registry import lookup


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


@keras.utils.register_keras_serializable(package="portable_deblur")
class ChannelLayerNorm(keras.layers.Layer):
    """LayerNorm over the channels of each pixel (NAFNet's ``LayerNorm2d``): per-channel weight and bias.

    Written out (mean, variance, rsqrt) so TFLite gets MEAN / SUB / MUL / ADD / RSQRT builtins rather than a
    fused op some delegates lack.

    ``scale`` < 1 reduces in a down-scaled domain and rescales: the mean is taken of ``x * scale`` and
    multiplied back by ``1 / scale``, the variance of the scaled deviations multiplied back by
    ``1 / scale**2``, so the channel sums and sums of squares a GPU accumulates shrink by ``scale`` and
    ``scale**2`` while the mean, the variance and epsilon are the reference's (the same output; a power of two
    keeps the scaling exact). LiteRT's NAFNet phone sample reduces in an x/128 domain and rescales for this
    reason: the residual stream reaches |x| ~ 175 and its sums of squares (~15M) overflow fp16's 65504 on a
    Mali GPU (google-ai-edge/litert-samples, compiled_model_api/image_restoration/conversion/README.md).
    Rescaling cannot help where a value itself passes 65504 (a variance above it: deviations of rms > 256);
    the fp16 check flags those. Normalising in the scaled domain instead (epsilon scaled by ``scale**2``) is
    exact in float32 but not in fp16: ``1e-6 / 128**2`` is below fp16's smallest number, so a flat pixel
    (zero variance) became 0 * inf = NaN on Mesa's fp16 GPU.
    """

    def __init__(self, epsilon: float = 1e-6, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.scale = float(scale)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.weight = self.add_weight(name="weight", shape=(c,), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(c,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        if self.scale == 1.0:
            centred = inputs - tf.reduce_mean(inputs, axis=-1, keepdims=True)
            variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
        else:
            centred = inputs - tf.reduce_mean(inputs * self.scale, axis=-1, keepdims=True) * (1 / self.scale)
            variance = tf.reduce_mean(tf.square(centred * self.scale), axis=-1, keepdims=True) * self.scale ** -2
        return centred * tf.math.rsqrt(variance + self.epsilon) * self.weight + self.bias

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "scale": self.scale}


@keras.utils.register_keras_serializable(package="portable_deblur")
class AxisMeans(keras.layers.Layer):
    """A global average pool as two single-axis means (MEAN over the rows, then over the columns), keeping
    ``[N, 1, 1, C]``. The same value as one MEAN over both axes; LiteRT's NAFNet phone sample had to split
    SCA's global pool this way before a Mali GPU computed it correctly, and each single-axis sum is a
    row or a column, not the whole frame, so it grows with one side of the frame instead of its area."""

    def call(self, inputs):
        return tf.reduce_mean(tf.reduce_mean(inputs, axis=1, keepdims=True), axis=2, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[-1])


@keras.utils.register_keras_serializable(package="portable_deblur")
class SimpleGate(keras.layers.Layer):
    """NAFNet's SimpleGate: split the channels in two halves and multiply them (SPLIT + MUL)."""

    def call(self, inputs):
        a, b = tf.split(inputs, 2, axis=-1)
        return a * b

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.utils.register_keras_serializable(package="portable_deblur")
class ChannelScale(keras.layers.Layer):
    """Learnable per-channel scale, zero-initialised (NAFNet's ``beta`` / ``gamma``): a block starts as
    the identity of its residual path."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self.scale


# How LocalAveragePool computes its window mean (a searchable model option, ``model.tlc_pool``).
TLC_POOLS = ("average_pool", "depthwise")


def in_image_counts(n: int, k: int) -> np.ndarray:
    """How many of the ``k`` taps of a SAME-padded window lie inside a length-``n`` axis, per position
    (TF pads ``(k-1)//2`` before and the rest after)."""
    i, before = np.arange(n), (k - 1) // 2
    return np.minimum(i + k - 1 - before, n - 1) - np.maximum(i - before, 0) + 1


def box_passes(k: int):
    """A k-tap box mean as a chain of depthwise passes ``(taps, dilation)``: k = a * 2**n with a odd; an
    a-tap mean, then n 2-tap means with dilations a, 2a, 4a, ... (each doubles the span). 96 taps: 3 + 5*2 =
    13 multiply-adds per pixel instead of 96."""
    a, n = k, 0
    while a % 2 == 0:
        a, n = a // 2, n + 1
    return ([(a, 1)] if a > 1 else []) + [(2, a * 2 ** i) for i in range(n)]


@keras.utils.register_keras_serializable(package="portable_deblur")
class LocalAveragePool(keras.layers.Layer):
    """TLC's local average pooling (Chu et al. 2022): each pixel gets the mean over the ``window`` x
    ``window`` neighbourhood around it, the global mean where the window covers the whole input.

    A box filter is separable, and so is the in-image count, so a window x 1 then a 1 x window pass gives
    the mean at 2*window instead of window**2 additions per pixel (96-px windows: 48x less work). ``pool``
    picks the ops:

    - ``average_pool``: two AVERAGE_POOL_2D with SAME padding, which average only the pixels inside the
      image (TF and TFLite alike). XNNPACK has no int8 AVERAGE_POOL_2D kernel, so int8 files fall back to
      TFLite's reference kernel.
    - ``depthwise``: one PAD (zeros, as SAME), per axis a chain of fixed-weight DEPTHWISE_CONV_2D passes
      (``box_passes``: dilated 2-tap means, so a 96-px window costs 13 taps, not 96 -- one 96-tap depthwise
      pass ran 3x slower than the average pools on XNNPACK), then one MUL by the constant ``window /
      in-image count`` map of the export size, ``[1, H, W, 1]`` (1 inside, up to 2 at the borders). The same
      numbers in float; every op has an int8 XNNPACK kernel (``benchmarks/portable_ops.py pooling``).

    The reference instead replicates the nearest full window at the borders; doing that here added
    STRIDED_SLICE / TILE / RESHAPE / CONCATENATION ops (90 for a tiny NAFNet) for a border detail, so the
    portable in-image mean was chosen.
    """

    def __init__(self, window: int, pool: str = "average_pool", **kwargs):
        super().__init__(**kwargs)
        self.window = int(window)
        self.pool = lookup({p: p for p in TLC_POOLS}, "tlc_pool", pool)

    def covers(self, h, w) -> bool:
        # Sizes are static wherever it matters (training steps, evaluation, every export); an unknown size
        # (Keras's symbolic build) takes the global mean, also the answer for inputs up to the window.
        return h is None or w is None or (self.window >= h and self.window >= w)

    def ops(self, h, w):
        """The TFLite ops this layer converts to for an ``h`` x ``w`` input (``layer_support`` reads it)."""
        if self.covers(h, w):
            return ("MEAN",)
        kh, kw = min(self.window, h), min(self.window, w)
        if self.pool == "average_pool":
            return ("AVERAGE_POOL_2D",) * 2
        if kh == kw == 1:
            return ()
        return ("PAD",) + ("DEPTHWISE_CONV_2D",) * (len(box_passes(kh)) + len(box_passes(kw))) + ("MUL",)

    def call(self, inputs):
        h, w = inputs.shape[1], inputs.shape[2]
        if self.covers(h, w):
            return tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        kh, kw = min(self.window, h), min(self.window, w)
        if self.pool == "average_pool":
            rows = tf.nn.avg_pool2d(inputs, (kh, 1), 1, "SAME")
            return tf.nn.avg_pool2d(rows, (1, kw), 1, "SAME")
        if kh == kw == 1:  # a one-pixel window is the identity
            return inputs
        # Zero-pad once as SAME would, then box-filter each axis with a chain of VALID depthwise passes.
        before_h, before_w = (kh - 1) // 2, (kw - 1) // 2
        x = tf.pad(inputs, [[0, 0], [before_h, kh - 1 - before_h], [before_w, kw - 1 - before_w], [0, 0]])
        for axis, k in ((0, kh), (1, kw)):
            for taps, dilation in box_passes(k):
                shape, rate = [1, 1, int(inputs.shape[-1]), 1], [1, 1]
                shape[axis], rate[axis] = taps, dilation
                x = tf.nn.depthwise_conv2d(x, tf.fill(shape, 1.0 / taps), [1, 1, 1, 1], "VALID", dilations=rate)
        border = np.outer(kh / in_image_counts(h, kh), kw / in_image_counts(w, kw)).astype(np.float32)
        return x * tf.constant(border[None, :, :, None])

    def get_config(self):
        return {**super().get_config(), "window": self.window, "pool": self.pool}


@keras.utils.register_keras_serializable(package="portable_deblur")
class PortablePReLU(keras.layers.Layer):
    """PReLU that int8 XNNPACK runs: ``a*x + relu((1-a)*x)`` with a per-channel slope ``a`` in [0, 0.99].

    For slopes in [0, 1) it equals PReLU (``max(x, 0) + a*min(x, 0)``); the converter fuses the ReLU into the
    second MUL, so the graph is MUL, MUL, ADD -- ops XNNPACK and the GPU accept in int8. TFLite's own int8
    PRELU has no XNNPACK kernel and falls back to the reference kernel (int8 files ran 2.5x slower than fp32;
    ``benchmarks/portable_ops.py prelu``). The clip keeps ``1 - a`` positive, which the fused ReLU needs.
    """

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=(int(input_shape[-1]),),
                                     initializer=keras.initializers.Constant(0.25))
        super().build(input_shape)

    def call(self, inputs):
        a = tf.clip_by_value(self.alpha, 0.0, 0.99)
        return a * inputs + tf.nn.relu((1.0 - a) * inputs)


CUSTOM_OBJECTS = {"PortablePReLU": PortablePReLU, "DepthToSpace": DepthToSpace, "ChannelLayerNorm": ChannelLayerNorm, "AxisMeans": AxisMeans,
                  "SimpleGate": SimpleGate,
                  "ChannelScale": ChannelScale, "LocalAveragePool": LocalAveragePool}
