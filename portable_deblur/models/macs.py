"""Model complexity: parameters and multiply-accumulates (MACs) at a given input size.

MACs count the multiply-accumulates of convolutions and dense layers (the MediaTek paper's MAC column);
elementwise ops, pooling and resizes are not counted. The seeds show MACs do not predict latency: they are
recorded next to the measured latency, never instead of it.
"""
from typing import Tuple

import numpy as np

from portable_deblur.backend import keras


def layer_macs(layer) -> int:
    """MACs of one layer of a model built with a fixed input shape."""
    out_shape = layer.output.shape
    if isinstance(layer, keras.layers.Conv2DTranspose):  # before Conv2D: it is a subclass
        _, h, w, cin = layer.input.shape
        kh, kw = layer.kernel_size
        return int(h * w * kh * kw * cin * layer.filters)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, _ = out_shape
        kh, kw = layer.kernel_size
        return int(h * w * kh * kw * layer.input.shape[-1] * layer.depth_multiplier)
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, cout = out_shape
        kh, kw = layer.kernel_size
        return int(h * w * kh * kw * layer.input.shape[-1] // layer.groups * cout)
    if isinstance(layer, keras.layers.Dense):
        positions = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
        return positions * int(layer.input.shape[-1]) * layer.units
    return 0


def count_macs(model: keras.Model, shape: Tuple[int, int]) -> int:
    """Total MACs of ``model`` on one ``[height, width]`` input (the model is re-instantiated at that size)."""
    fixed = keras.models.clone_model(model, input_tensors=keras.Input((*shape, model.input_shape[-1])))
    return sum(layer_macs(layer) for layer in fixed.layers)


def count_params(model: keras.Model) -> int:
    """Number of weights (trainable and not)."""
    return int(model.count_params())
