"""Channels ordered by importance (Once-for-All's channel sorting, Cai et al. 2020): before a trained
network of one width is continued as an elastic supernet, each channel space (``channels.channel_spaces``)
is reordered so its most important channels come first, where a narrower path's leading channels are.

A channel's importance is the L1 norm of the filters that produce it, over each producing layer's mean
filter norm (the pruning stage's score, ``optimize/prune.py``), summed over every layer producing into the
space (every value of an op choice, every residual branch). Reordering permutes each layer's weights along
the channel axes alike, so the widest network computes exactly what it did.
"""
from collections import defaultdict

import numpy as np

from portable_deblur.backend import keras
from portable_deblur.models.channels import CHANNEL_MIXING, channel_spaces, kind_of, weight_axes, weighted_layers


def order_by_importance(model: keras.Model) -> None:
    """Reorder ``model``'s channels in place, most important first in every channel space (the image's
    channels at the input and output keep their order)."""
    spaces, sizes, fixed = channel_spaces(model)
    layers = dict(weighted_layers(model))
    importance = defaultdict(float)
    for name, layer in layers.items():
        kind = kind_of(layer)
        if kind not in CHANNEL_MIXING:
            continue
        kernel = layer.get_weights()[0]
        axis = CHANNEL_MIXING[kind][1] % kernel.ndim
        norms = np.abs(np.moveaxis(kernel, axis, -1)).reshape(-1, kernel.shape[axis]).sum(0)
        norms = norms / max(float(norms.mean()), 1e-12)
        offset = 0
        for space in spaces[name][1]:
            importance[space] = importance[space] + norms[offset:offset + sizes[space]]
            offset += sizes[space]
    order = {s: np.argsort(-v, kind="stable") for s, v in importance.items() if s not in fixed}
    for name, layer in layers.items():
        weights = []
        for weight, axes in zip(layer.get_weights(), weight_axes(layer)):
            for axis, role in axes.items():
                index, offset = [], 0
                for space in spaces[name][role == "out"]:
                    index.append(offset + order.get(space, np.arange(sizes[space])))
                    offset += sizes[space]
                weight = np.take(weight, np.concatenate(index), axis=axis)
            weights.append(weight)
        layer.set_weights(weights)
