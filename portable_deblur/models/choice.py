"""A position in a network that holds every value of a searched key at once: how a builder makes a
weight-sharing supernet (``models/supernet.py``) out of the same code that makes a plain candidate.

A builder passes each op choice through ``choose``. With a plain value (a candidate) it builds that op,
exactly as before. With ``Choices`` (a supernet) it builds every value's op as its own small Keras model,
with the layer names the plain candidate would have, inside a ``Switch`` layer that runs the active one.
Layers outside a ``Switch`` (the convolutions every value shares) are built once and shared by all paths.
"""
from typing import Callable, Dict, Sequence

from portable_deblur.backend import keras


class Choices(tuple):
    """Every value of searched key ``key``: a supernet builds each of them at every position of that key."""

    def __new__(cls, key: str, values: Sequence):
        self = super().__new__(cls, values)
        self.key = key
        return self

    def __getnewargs__(self):
        return self.key, tuple(self)


class Switch(keras.layers.Layer):
    """One position of a supernet: a small model per value of ``key``; ``call`` runs the ``active`` one.

    ``active`` is read when a function is traced, so each path gets its own traced training step (the
    other values' ops never run and their weights get no gradient). Never exported: extraction
    (``supernet.extract``) copies the active branch's weights into the plain candidate."""

    def __init__(self, key: str, branches: Dict[str, keras.Model], **kwargs):
        super().__init__(**kwargs)
        self.key = key
        self.values = list(branches)
        self.branches = dict(branches)
        self.active = self.values[0]

    def call(self, inputs):
        return self.branches[self.active](inputs)

    def compute_output_shape(self, input_shape):
        return self.branches[self.active].compute_output_shape(input_shape)


def _symbolic_like(x):
    if isinstance(x, (list, tuple)):
        return [_symbolic_like(t) for t in x]
    return keras.Input(x.shape[1:], dtype=x.dtype)


def choose(inputs, value, branch: Callable, name: str):
    """``branch(inputs, value)`` for a plain ``value``; for ``Choices``, a ``Switch`` named ``name`` whose
    branch for each value ``v`` is the model ``branch(<inputs>, v)`` (same layer names in every branch)."""
    if not isinstance(value, Choices):
        return branch(inputs, value)
    branches = {}
    for v in value:
        symbolic = _symbolic_like(inputs)
        branches[str(v)] = keras.Model(symbolic, branch(symbolic, v), name=f"{name}.{v}")
    return Switch(value.key, branches, name=name)(inputs)


def switches(model: keras.Model) -> Dict[str, list]:
    """``{searched key: [its Switch layers]}`` in a supernet (empty for a plain candidate)."""
    out: Dict[str, list] = {}
    for layer in model.layers:
        if isinstance(layer, Switch):
            out.setdefault(layer.key, []).append(layer)
    return out
