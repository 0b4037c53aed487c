"""Batch normalization folded into its neighbouring convolutions, for export.

At inference a BatchNormalization is a per-channel affine map ``y = s*x + t`` (``s = gamma /
sqrt(variance + epsilon)``, ``t = beta - mean*s``). Where it feeds only convolutions that see one pixel at a
time (1x1 kernels, with a bias), ``conv(s*x + t)`` is the same convolution with its kernel scaled by ``s`` per
input channel and ``t`` pushed through the kernel into its bias; where it follows convolutions (one, or an
``Add`` of several) that feed nothing else, their kernels and biases take ``s`` per output channel and one
bias takes ``t``. Either way the layer disappears from the file: no MUL / ADD, nothing an int8 runtime must
requantize. The TFLite converter folds only a batch norm that follows a single convolution; NAFNet's norms
come before their convolutions.

A batch norm that fits neither (a kxk "same" convolution after it, whose zero padding would not see ``t``;
a convolution without a bias) stays, and ``foldable`` says so to the layer table.
"""
from typing import List, Optional, Tuple

import numpy as np

from portable_deblur.backend import keras

_CONVS = ("Conv2D", "DepthwiseConv2D")


def _consumers(layer) -> list:
    return [node.outbound_layer for node in layer._outbound_nodes]


def _producer(layer):
    inbound = layer._inbound_nodes[0].inbound_layers
    return inbound[0] if isinstance(inbound, list) else inbound


def _pixelwise_conv(layer) -> bool:
    return type(layer).__name__ == "Conv2D" and tuple(layer.kernel_size) == (1, 1) and layer.use_bias \
        and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1


def _sole_conv(layer) -> bool:
    return type(layer).__name__ in _CONVS and layer.use_bias and len(_consumers(layer)) == 1 \
        and getattr(layer, "depth_multiplier", 1) == 1


def fold_plan(layer) -> Optional[Tuple[str, List]]:
    """``("forward", [1x1 convs it feeds])`` or ``("backward", [convs feeding it])`` for a foldable batch norm,
    else None."""
    if type(layer).__name__ != "BatchNormalization" or len(layer._inbound_nodes) != 1:
        return None
    consumers = _consumers(layer)
    if consumers and all(_pixelwise_conv(c) for c in consumers):
        return "forward", consumers
    producer = _producer(layer)
    sources = [producer] if type(producer).__name__ in _CONVS else (
        _inputs_of(producer) if type(producer).__name__ == "Add" and len(_consumers(producer)) == 1 else [])
    if sources and all(_sole_conv(s) for s in sources):
        return "backward", sources
    return None


def _inputs_of(layer) -> list:
    inbound = layer._inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, list) else [inbound]


def foldable(layer) -> bool:
    """True where the export removes this batch norm (``fold_batch_norms``)."""
    return fold_plan(layer) is not None


def _affine(bn) -> Tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, variance = bn.get_weights() if bn.scale and bn.center else _full_weights(bn)
    s = gamma / np.sqrt(variance + bn.epsilon)
    return s, beta - mean * s


def _full_weights(bn):
    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy() for w in bn.weights}
    ones = np.ones_like(weights["moving_mean"])
    return (weights.get("gamma", ones), weights.get("beta", 0 * ones), weights["moving_mean"],
            weights["moving_variance"])


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """``model`` with every foldable batch norm folded into its convolutions (the same outputs within float
    rounding); ``model`` itself when there is none."""
    plans = {layer.name: fold_plan(layer) for layer in model.layers}
    plans = {name: plan for name, plan in plans.items() if plan is not None}
    if not plans:
        return model
    folded = keras.models.clone_model(model, clone_function=lambda layer: keras.layers.Identity(name=layer.name)
                                      if layer.name in plans else layer.__class__.from_config(layer.get_config()))
    for layer in folded.layers:
        if layer.weights and layer.name not in plans:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    for name, (direction, convs) in plans.items():
        s, t = _affine(model.get_layer(name))
        for i, conv in enumerate(convs):
            target = folded.get_layer(conv.name)
            kernel, bias = target.get_weights()
            if direction == "forward":  # kernel [1, 1, in, out]: scale the inputs, push t through into the bias
                bias = bias + np.einsum("c,co->o", t, kernel[0, 0])
                kernel = kernel * s[None, None, :, None]
            elif type(target).__name__ == "DepthwiseConv2D":  # kernel [k, k, channels, 1]
                kernel, bias = kernel * s[None, None, :, None], bias * s + (t if i == 0 else 0)
            else:  # kernel [k, k, in, out]: scale the outputs
                kernel, bias = kernel * s, bias * s + (t if i == 0 else 0)
            target.set_weights([kernel, bias])
    return folded
