"""Channel segments: which channels of each layer a narrower network of the same graph keeps.

Channels are not one flat range everywhere: a DepthToSpace reads its input as four equal groups, a
SimpleGate as two halves, a Concatenate joins two feature maps. ``channel_layout`` walks a model once and
gives every weighted layer the **segments** of its input and output channels (a conv's output is one segment;
a DepthToSpace splits its input into ``block**2`` segments, a SimpleGate into two; a Concatenate lines its
inputs' segments up; a per-channel layer -- depthwise conv, norm, activation, pool, Add, Multiply -- keeps its
input's). A narrower network keeps the leading channels of each segment: the same layers, the same op in
every position, the narrower model's exact function. ``models/elastic.py`` runs a supernet's narrower paths
on it; ``slice_weights`` cuts a wider weight table to a candidate extracted from it.
"""
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from portable_deblur.backend import keras
from portable_deblur.registry import ConfigError

Segments = Tuple[int, ...]  # the sizes of a tensor's channel segments, in order

# Layers whose output keeps each input channel where it is (one input) or combines inputs channel by
# channel (Add, Multiply, the Skip of a depth choice): the output's layout is the input's.
PER_CHANNEL = {
    "DepthwiseConv2D", "Activation", "ReLU", "PReLU", "LeakyReLU", "PortablePReLU", "ChannelLayerNorm",
    "BatchNormalization", "ChannelScale", "MaxPooling2D", "AveragePooling2D", "UpSampling2D",
    "GlobalAveragePooling2D", "AxisMeans", "LocalAveragePool", "Add", "Multiply", "Skip", "Identity",
}
# Layers that make new channels from all of their input's: (axis of the input channels, axis of the output
# channels) of the kernel; the bias follows the output.
CHANNEL_MIXING = {"Conv2D": (-2, -1), "Dense": (-2, -1), "Conv2DTranspose": (-1, -2)}
# Layers that read their input as equal channel groups: how many.
GROUPED = {"SimpleGate": lambda layer: 2, "DepthToSpace": lambda layer: layer.block_size ** 2}


def kind_of(layer) -> str:
    """A layer's class name; an elastic layer's (``models/elastic.py``) is the class it was made from."""
    cls = type(layer)
    return cls.__mro__[2].__name__ if hasattr(layer, "elastic_cuts") else cls.__name__


class _Layouts:
    """Union-find over a graph's tensors: tensors in one class share a layout (a list of segments, or a
    Concatenate of other classes, resolved at the end)."""

    def __init__(self):
        self.parent: Dict[str, str] = {}
        self.layout: Dict[str, object] = {}

    def find(self, key: str) -> str:
        while self.parent.get(key, key) != key:
            key = self.parent[key]
        return key

    def new(self, key: str, layout) -> None:
        self.parent[key], self.layout[key] = key, layout

    def same(self, a: str, b: str, where: str) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        merged = self.layout.pop(b)
        mine, theirs = self.resolve_layout(self.layout[a]), self.resolve_layout(merged)
        if sum(mine) != sum(theirs):
            raise ConfigError(f"elastic width: {where} joins tensors of {sum(mine)} and {sum(theirs)} channels")
        if len(theirs) > len(mine):  # the finer grouping holds (a group split one class from the other side)
            self.layout[a] = merged
        self.parent[b] = a

    def split(self, key: str, parts: int, where: str) -> None:
        root = self.find(key)
        segments = self.resolve_layout(self.layout[root])
        if len(segments) == parts:
            return
        if len(segments) != 1 or segments[0] % parts:
            raise ConfigError(f"elastic width: {where} reads {parts} equal channel groups from segments {segments}")
        self.layout[root] = [segments[0] // parts] * parts

    def resolve_layout(self, layout) -> Segments:
        if isinstance(layout, tuple) and layout and layout[0] == "concat":
            return tuple(s for key in layout[1] for s in self.segments(key))
        return tuple(layout)

    def segments(self, key: str) -> Segments:
        return self.resolve_layout(self.layout[self.find(key)])


def _walk(model: keras.Model, layouts: _Layouts, io: Dict[str, Tuple[List[str], List[str]]], prefix: str = "",
          ties: Optional[list] = None) -> None:
    """Add ``model``'s tensors to ``layouts``; record each layer's (input ids, output ids) in ``io`` under its
    qualified name (a ``Switch`` branch's layers as ``name|key=value``, as the weight table names them) and
    each grouping layer's (input id, output id) in ``ties``."""
    ties = [] if ties is None else ties
    for layer in model.layers:
        kind = kind_of(layer)
        node = next(n for n in layer._inbound_nodes if all(i in layouts.parent for i in n.flat_input_ids))
        ins, outs = list(node.flat_input_ids), list(node.flat_output_ids)
        name = f"{layer.name}{prefix}"
        io[name] = (ins, outs)
        where = f"layer {name!r} ({kind})"
        if kind == "InputLayer":
            for out in outs:
                if out not in layouts.parent:
                    layouts.new(out, [int(layer.output.shape[-1])])
        elif kind == "Switch":
            layouts.new(outs[0], [int(layer.output.shape[-1])])
            for value, branch in layer.branches.items():
                layouts.new(str(id(branch.inputs[0])), [int(branch.inputs[0].shape[-1])])
                layouts.same(ins[0], str(id(branch.inputs[0])), where)
                _walk(branch, layouts, io, f"|{layer.key}={value}", ties)
                layouts.same(outs[0], str(id(branch.outputs[0])), where)
        elif kind in CHANNEL_MIXING:
            layouts.new(outs[0], [int(layer.output.shape[-1])])
        elif kind in GROUPED:
            parts = GROUPED[kind](layer)
            layouts.split(ins[0], parts, where)
            layouts.new(outs[0], [layouts.segments(ins[0])[0]])
            ties.append((ins[0], outs[0]))
        elif kind == "Concatenate":
            layouts.new(outs[0], ("concat", ins))
        elif kind in PER_CHANNEL:
            channels = int(layer.output.shape[-1])
            wide = [i for i in ins if sum(layouts.segments(i)) == channels] or ins[:1]
            layouts.new(outs[0], [channels])
            for i in wide:  # a 1-channel input broadcast over the others (an attention map) keeps its own
                layouts.same(i, outs[0], where)
        else:
            raise ConfigError(f"elastic width cannot slice {where}: its channel layout is unknown (known: "
                              f"{sorted(PER_CHANNEL | set(CHANNEL_MIXING) | set(GROUPED) | {'Concatenate', 'Switch'})})")


def channel_layout(model: keras.Model) -> Dict[str, Tuple[Segments, Segments]]:
    """``{qualified layer name: (its input's channel segments, its output's)}`` for every layer with weights."""
    layouts, io = _Layouts(), {}
    _walk(model, layouts, io)
    out = {}
    for name, layer in weighted_layers(model):
        ins, outs = io[name]
        out[name] = (layouts.segments(ins[0]), layouts.segments(outs[0]))
    return out


def channel_spaces(model: keras.Model):
    """``({qualified layer name: (input segments' spaces, output segments' spaces)}, {space: size},
    fixed spaces)``: a *space* is a set of channel positions that must be ordered alike -- a segment, joined
    with the output of a DepthToSpace or SimpleGate that reads it (each of its groups is ordered as the
    output's channels) -- and the fixed ones touch the model's input or output (image channels keep their
    order)."""
    layouts, io, ties = _Layouts(), {}, []
    _walk(model, layouts, io, ties=ties)
    parent: Dict[tuple, tuple] = {}

    def find(node):
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    def nodes(key) -> List[tuple]:
        layout = layouts.layout[layouts.find(key)]
        if isinstance(layout, tuple) and layout and layout[0] == "concat":
            return [n for k in layout[1] for n in nodes(k)]
        return [(layouts.find(key), i) for i in range(len(layout))]

    for source, grouped in ties:
        [out] = nodes(grouped)
        for node in nodes(source):
            parent[find(node)] = find(out)
    sizes: Dict[tuple, int] = {}
    for key in layouts.parent:
        for node, size in zip(nodes(key), layouts.segments(key)):
            sizes[find(node)] = size
    ends = [str(id(t)) for t in model.inputs + model.outputs]
    fixed = {find(n) for key in ends for n in nodes(key)}
    spaces = {name: tuple([find(n) for n in nodes(ids[0])] for ids in io[name]) for name, _ in weighted_layers(model)}
    return spaces, sizes, fixed


def layer_channels(model: keras.Model) -> Dict[str, int]:
    """``{qualified layer name: its output's channel count}`` for every layer with weights whose output is not
    the image's (the network's own channels, which a width choice sets)."""
    spaces, sizes, fixed = channel_spaces(model)
    return {name: sum(sizes[s] for s in outs) for name, (_, outs) in spaces.items() if not set(outs) & fixed}


def weighted_layers(model: keras.Model):
    """``(qualified name, layer)`` of every layer with weights, inside ``Switch`` branches too."""
    for layer in model.layers:
        if hasattr(layer, "branches"):
            for value, branch in layer.branches.items():
                yield from ((f"{inner.name}|{layer.key}={value}", inner) for inner in branch.layers if inner.weights)
        elif layer.weights:
            yield layer.name, layer


def kept(wide: Segments, narrow: Segments) -> np.ndarray:
    """Indices of the channels a narrower layout keeps: the leading ``narrow[i]`` of each segment ``wide[i]``."""
    starts = np.cumsum((0,) + tuple(wide[:-1]))
    return np.concatenate([np.arange(s, s + n) for s, n in zip(starts, narrow)]).astype(np.int32)


def weight_axes(layer) -> List[Dict[int, str]]:
    """Per weight of ``layer``: ``{axis: "in" | "out"}``, the axes that follow its input's or output's channels."""
    kind = kind_of(layer)
    if kind in CHANNEL_MIXING:
        i, o = CHANNEL_MIXING[kind]
        return [{len(w.shape) + i: "in", len(w.shape) + o: "out"} if len(w.shape) > 1 else {0: "out"}
                for w in layer.weights]
    if kind == "DepthwiseConv2D":  # kernel [kh, kw, channels, multiplier]: one filter per input channel
        if layer.depth_multiplier != 1:
            raise ConfigError(f"elastic width cannot slice layer {layer.name!r}: a depthwise conv with "
                              f"depth_multiplier={layer.depth_multiplier} (only 1 keeps each channel in place)")
        return [{2: "in"} if len(w.shape) == 4 else {0: "in"} for w in layer.weights]
    return [{len(w.shape) - 1: "in"} for w in layer.weights]


def slice_weights(layer, layout: Tuple[Segments, Segments], table: Sequence[np.ndarray], source: str,
                  name: str) -> List[np.ndarray]:
    """``table``'s weights (of a wider network) cut to ``layer``'s shapes: along each channel axis, the
    leading channels of every segment (the wider network's segments are this layer's scaled by one
    ratio, its width over this one's)."""
    out = []
    for weight, axes, wide in zip(layer.weights, weight_axes(layer), table):
        mine = tuple(weight.shape)
        for axis, role in axes.items():
            narrow = layout[0] if role == "in" else layout[1]
            if wide.shape[axis] == mine[axis]:
                continue
            ratio = Fraction(wide.shape[axis], mine[axis])
            if sum(narrow) != mine[axis] or any((s * ratio).denominator != 1 for s in narrow):
                raise ConfigError(f"{source} does not fit this candidate: layer {name!r} has {mine[axis]} channels "
                                  f"in segments {narrow}, the table {wide.shape[axis]}: not one width ratio")
            wide = np.take(wide, kept(tuple(int(s * ratio) for s in narrow), narrow), axis=axis)
        if tuple(wide.shape) != mine:
            raise ConfigError(f"{source} does not fit this candidate: layer {name!r} weights {mine} here but "
                              f"{tuple(wide.shape)} there")
        out.append(wide)
    return out


