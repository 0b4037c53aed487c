"""A position in a network that holds every value of a searched key at once: how a builder makes a
weight-sharing supernet (``models/supernet.py``) out of the same code that makes a plain candidate.

A builder passes each op choice through ``choose``. With a plain value (a candidate) it builds that op,
exactly as before. With ``Choices`` (a supernet) it builds every value's op as its own small Keras model,
with the layer names the plain candidate would have, inside a ``Switch`` layer that runs the active one.
Layers outside a ``Switch`` (the convolutions every value shares) are built once and shared by all paths.

A depth choice (``Choices`` of block counts) goes through ``level_count`` and ``repeat``: the supernet
builds a level's most blocks, and each block some value leaves out is followed by a ``Skip`` that passes
its input on where the active path has fewer blocks (the first ``n`` blocks of a level run, Once-for-All's
elastic depth). A width choice is not seen by the builder at all: the supernet is built at the widest value
and its layers cut their weights to a narrower path's channels (``models/elastic.py``).
"""
from typing import Callable, Dict, List, Sequence, Union

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


class Skip(keras.layers.Layer):
    """A block a depth choice may leave out: ``[block input, block output]`` -> the output on a path that keeps
    the block, the input on one that does not (read when a step is traced, as ``Switch.active``). Never
    exported: a candidate is built with its own block counts."""

    def __init__(self, key: str, kept: Dict[str, bool], **kwargs):
        super().__init__(**kwargs)
        self.key = key
        self.kept = dict(kept)
        self.values = list(kept)
        self.active = self.values[0]

    def call(self, inputs):
        block_input, block_output = inputs
        return block_output if self.kept[self.active] else block_input

    def compute_output_shape(self, input_shape):
        return input_shape[1]


class Depth:
    """A level's block count under a depth choice: ``{str(value of key): blocks at this level}``."""

    def __init__(self, key: str, counts: Dict[str, int]):
        self.key, self.counts = key, dict(counts)
        self.least, self.most = min(self.counts.values()), max(self.counts.values())


def level_count(blocks, level: Union[int, None] = None, reverse: bool = False) -> Union[int, Depth]:
    """The block count of ``level`` (``None``: ``blocks`` is one count) in ``blocks``; for ``Choices``, a
    ``Depth`` holding every value's count (``reverse``: the levels read from the end, as a decoder mirrors
    its encoder)."""
    def at(value):
        if level is None:
            return int(value)
        return int(list(reversed(value) if reverse else value)[level])

    if isinstance(blocks, Choices):
        return Depth(blocks.key, {str(v): at(v) for v in blocks})
    return at(blocks)


def levels(blocks) -> int:
    """The number of levels of a block list (every value of a depth choice must keep it: a choice over
    the blocks per level, not over how often the network downsamples)."""
    if not isinstance(blocks, Choices):
        return len(list(blocks))
    lengths = sorted({len(list(v)) for v in blocks})
    if len(lengths) != 1:
        from portable_deblur.registry import ConfigError

        raise ConfigError(f"a weight-sharing supernet holds {blocks.key} values with one number of levels (it "
                          f"leaves out blocks, not downsamplings); got {list(blocks)}")
    return lengths[0]


def repeat(x, count: Union[int, Depth], block: Callable, name: str):
    """``block(x, b)`` for ``b`` in ``range(count)``; under a ``Depth``, its most blocks, each one some value
    leaves out followed by a ``Skip`` named ``{name}_blk{b}_skip``. Only a block that keeps its input's
    shape can be left out: a clear error otherwise."""
    if not isinstance(count, Depth):
        for b in range(count):
            x = block(x, b)
        return x
    for b in range(count.most):
        y = block(x, b)
        if b >= count.least:
            if tuple(y.shape[1:]) != tuple(x.shape[1:]):
                from portable_deblur.registry import ConfigError

                raise ConfigError(f"{count.key} cannot be shared: some values leave out block {b} of {name}, which "
                                  f"changes its input's shape ({x.shape[-1]} -> {y.shape[-1]} channels); give every "
                                  f"value at least {b + 1} block(s) there")
            y = Skip(count.key, {v: n > b for v, n in count.counts.items()}, name=f"{name}_blk{b}_skip")([x, y])
        x = y
    return x


def positions(model: keras.Model) -> List:
    """Every layer of a supernet that a path sets (``Switch``, ``Skip``, elastic layers; inside ``Switch``
    branches too): each has ``key``, ``values`` and ``active``."""
    out = []
    for layer in model.layers:
        if isinstance(layer, Switch):
            out.append(layer)
            for branch in layer.branches.values():
                out.extend(positions(branch))
        elif isinstance(layer, Skip) or hasattr(layer, "elastic_cuts"):
            out.append(layer)
    return out


def switches(model: keras.Model) -> Dict[str, list]:
    """``{searched key: [the layers it sets]}`` in a supernet (empty for a plain candidate)."""
    out: Dict[str, list] = {}
    for layer in positions(model):
        out.setdefault(layer.key, []).append(layer)
    return out
