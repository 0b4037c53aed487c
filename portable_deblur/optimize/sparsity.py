"""TF-MOT's m:n structured sparsity (``optimize.sparsity: ["2:4"]``): m of every n consecutive kernel weights
along the input channels set to zero, kept zero while fine-tuning, then the wrappers stripped.

Offered because app teams ask about it, and measured like everything else: the .tflite keeps dense kernels
with zeros in them, and this CPU's XNNPACK fp32 convolutions do not skip zeros, so expect no latency gain
here (2:4 pays off on hardware with sparse tensor cores). The report shows what was measured.
"""
from typing import List, Tuple

import numpy as np

from portable_deblur.backend import keras
from portable_deblur.models.layers import CUSTOM_OBJECTS


def parse(pattern: str) -> Tuple[int, int]:
    """``"2:4"`` -> ``(2, 4)`` (validated in ``config.validate``)."""
    m, n = str(pattern).split(":")
    return int(m), int(n)


def sparsifiable(layer, n: int) -> bool:
    """Regular convolutions whose input channels split into groups of ``n`` (not the image-facing conv)."""
    return (type(layer) is keras.layers.Conv2D and layer.groups == 1
            and int(layer.kernel.shape[-2]) % n == 0)


def wrap(model: keras.Model, pattern: str):
    """(model with TF-MOT pruning wrappers on every sparsifiable conv, the wrappers)."""
    import tensorflow_model_optimization as tfmot

    m, n = parse(pattern)
    # For m:n TF-MOT ignores the schedule's sparsity and sets each mask once, at pruning step 1, from the
    # weight magnitudes then; fine-tuning keeps it.
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0)

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if sparsifiable(layer, n):
            return tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule,
                                                           sparsity_m_by_n=(m, n))
        return copy

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        wrapped = keras.models.clone_model(model, clone_function=clone)
    wrappers = []
    for layer in model.layers:
        if sparsifiable(layer, n):
            wrappers.append(wrapped.get_layer(f"prune_low_magnitude_{layer.name}"))
            wrappers[-1].layer.set_weights(layer.get_weights())
        else:
            wrapped.get_layer(layer.name).set_weights(layer.get_weights())
    if not wrappers:
        raise ValueError(f"sparsity {pattern!r}: no convolution has a multiple of {n} input channels")
    for w in wrappers:
        w.pruning_step.assign(1)  # what UpdatePruningStep does; the wrapper then counts its own steps
        w.pruning_obj.conditional_mask_update()  # the masks now, from the trained weights (step 1)
        w.pruning_obj.weight_mask_op()
    return wrapped, wrappers


def strip(original: keras.Model, wrapped: keras.Model, wrappers: List) -> keras.Model:
    """A copy of ``original`` with the fine-tuned sparse weights: the masks applied (a last gradient step
    may have moved masked weights), no wrappers. (A fresh clone of the original rather than TF-MOT's
    ``strip_pruning``, whose clone QAT's own cloning then rejects as a disconnected graph.)"""
    for w in wrappers:
        for weight, mask, _ in w.pruning_vars:
            weight.assign(weight * mask)
    wrapped_of = {w.layer.name: w.layer for w in wrappers}
    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        model = keras.models.clone_model(original)
    for layer in model.layers:
        source = wrapped_of[layer.name] if layer.name in wrapped_of else wrapped.get_layer(layer.name)
        layer.set_weights(source.get_weights())
    return model


def zero_fraction(model: keras.Model, pattern: str) -> float:
    """Fraction of zero weights in the sparsifiable convolutions' kernels (``m/n`` when fully applied)."""
    _, n = parse(pattern)
    kernels = [layer.kernel.numpy() for layer in model.layers if sparsifiable(layer, n)]
    return float(np.mean(np.concatenate([k.ravel() == 0 for k in kernels])))
