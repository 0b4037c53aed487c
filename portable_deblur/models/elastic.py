"""Elastic width: one network built at its widest whose narrower paths run the leading channels of every
layer, so a supernet shares width (Once-for-All, Cai et al. 2020; BigNAS, Yu et al. 2020) as it shares op
choices (``models/choice.py``).

Channels are not one flat range everywhere: a DepthToSpace reads its input as four equal groups, a
SimpleGate as two halves, a Concatenate joins two feature maps. Which channels a narrower network keeps
therefore follows the graph. ``channel_layout`` walks a model once and gives every weighted layer the
**segments** of its input and output channels (a conv's output is one segment; a DepthToSpace splits its
input into ``block**2`` segments, a SimpleGate into two; a Concatenate lines its inputs' segments up; a
per-channel layer -- depthwise conv, norm, activation, pool, Add, Multiply -- keeps its input's). A
narrower network keeps the leading channels of each segment: the same layers, the same op in every
position, the narrower model's exact function.

Two users of one layout:

- ``make_elastic``: a supernet built at the widest value runs any narrower one. Each layer with
  channel-sized weights (a conv, a norm, a PReLU, a residual scale) slices them (``tf.gather`` of the kept
  channels) when its path is traced, the way a ``Switch`` picks its branch; the kept channels come from
  building the network at every width and matching segment sizes, so a width some layer cannot take is a
  clear error before any training.
- ``slice_weights``: a candidate extracted from a wider weight table copies the kept channels of each of
  its weights (``supernet.inherit``), segment by segment.
"""
from collections import defaultdict
from fractions import Fraction
from typing import Dict, List, Sequence, Tuple

import numpy as np

from portable_deblur.backend import keras, tf
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
        la, lb = self.layout.pop(b), self.layout[a]
        if self.resolve_layout(la) != self.resolve_layout(lb):
            # equal totals with different groupings: the finer one holds (a group split a class from the other side)
            fine_a, fine_b = self.resolve_layout(lb), self.resolve_layout(la)
            if sum(fine_a) != sum(fine_b):
                raise ConfigError(f"elastic width: {where} joins tensors of {sum(fine_a)} and {sum(fine_b)} channels")
            self.layout[a] = la if len(fine_b) > len(fine_a) else lb
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


def _walk(model: keras.Model, layouts: _Layouts, io: Dict[str, Tuple[List[str], List[str]]], prefix: str = "") -> None:
    """Add ``model``'s tensors to ``layouts``; record each layer's (input ids, output ids) in ``io`` under its
    qualified name (a ``Switch`` branch's layers as ``name|key=value``, as the weight table names them)."""
    for layer in model.layers:
        kind = type(layer).__name__
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
                _walk(branch, layouts, io, f"|{layer.key}={value}")
                layouts.same(outs[0], str(id(branch.outputs[0])), where)
        elif kind in CHANNEL_MIXING:
            layouts.new(outs[0], [int(layer.output.shape[-1])])
        elif kind in GROUPED:
            parts = GROUPED[kind](layer)
            layouts.split(ins[0], parts, where)
            layouts.new(outs[0], [layouts.segments(ins[0])[0]])
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
    kind = type(layer).__name__
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


class ElasticMixin:
    """Mixed into a layer's own class (``make_elastic``): ``call`` runs with every channel-sized weight cut to
    the active width's kept channels (read when a step is traced, as a ``Switch`` reads its branch)."""

    def call(self, inputs, *args, **kwargs):
        cut = self.elastic_cuts[self.active]  # {weight attribute: [(axis, kept indices)], "filters": int}
        if cut and isinstance(self, keras.layers.BatchNormalization):
            return _batch_norm_slice(self, inputs, cut, kwargs.get("training", args[0] if args else None))
        saved = {attr: getattr(self, attr) for attr in cut}
        try:
            for attr, axes in cut.items():
                value = axes if attr == "filters" else saved[attr]
                for axis, index in ([] if attr == "filters" else axes):
                    value = tf.gather(value, index, axis=axis)
                object.__setattr__(self, attr, value)  # untracked: the variable stays the layer's weight
            return super().call(inputs, *args, **kwargs)
        finally:
            for attr, value in saved.items():
                object.__setattr__(self, attr, value)


def _batch_norm_slice(layer, inputs, cut, training):
    """A batch norm on a narrower path: its kept channels' statistics. Training normalises by the batch's own
    moments and moves only the kept channels' moving mean and variance (a scatter into the full variables);
    inference uses the kept moving statistics -- what the extracted candidate's batch norm holds."""
    index = next(iter(cut.values()))[0][1]  # every weight of a batch norm is one value per channel
    pick = lambda variable: tf.gather(tf.convert_to_tensor(variable), index)  # noqa: E731
    x = tf.cast(inputs, tf.float32)
    if training:
        mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        for variable, value in ((layer.moving_mean, mean), (layer.moving_variance, variance)):
            variable.scatter_nd_update(index[:, None], pick(variable) * layer.momentum + value * (1 - layer.momentum))
    else:
        mean, variance = pick(layer.moving_mean), pick(layer.moving_variance)
    y = (x - mean) * tf.math.rsqrt(variance + layer.epsilon)
    if layer.scale:
        y = y * tf.cast(pick(layer.gamma), tf.float32)
    if layer.center:
        y = y + tf.cast(pick(layer.beta), tf.float32)
    return tf.cast(y, inputs.dtype)


_ELASTIC_CLASSES: Dict[type, type] = {}


def _elastic_class(cls: type) -> type:
    if cls not in _ELASTIC_CLASSES:
        _ELASTIC_CLASSES[cls] = type(f"Elastic{cls.__name__}", (ElasticMixin, cls), {})
    return _ELASTIC_CLASSES[cls]


def _attribute_of(layer, variable) -> str:
    for attr, value in vars(layer).items():
        if value is variable:
            return attr
    raise ConfigError(f"elastic width cannot find weight {variable.name!r} of layer {layer.name!r} as an attribute")


def _cut(layer, wide: Tuple[Segments, Segments], narrow: Tuple[Segments, Segments]) -> Dict[str, object]:
    """What ``layer`` (of the widest network) cuts to run as the narrower layout ``narrow``."""
    cut: Dict[str, object] = {}
    for variable, axes in zip(layer.weights, weight_axes(layer)):
        kept_axes = [(axis, tf.constant(kept(wide[role == "out"], narrow[role == "out"])))
                     for axis, role in axes.items() if narrow[role == "out"] != wide[role == "out"]]
        if kept_axes:
            cut[_attribute_of(layer, variable)] = kept_axes
    if hasattr(layer, "filters") and narrow[1] != wide[1]:
        cut["filters"] = sum(narrow[1])  # Keras sets a conv's static output shape from it
    return cut


def make_elastic(model: keras.Model, key: str, builds: Dict[object, keras.Model]) -> None:
    """Let ``model`` (built at the widest of ``key``'s values) run every one of them: ``builds`` maps each
    value to the same network built at it (the same layer names; the widest value may map to ``model``). A
    layer whose channels at some value are not the leading ones of its segments here (a width it cannot
    take) is a clear error naming the layer and the value."""
    wide = channel_layout(model)
    layers = dict(weighted_layers(model))
    cuts: Dict[str, Dict[str, dict]] = defaultdict(dict)  # layer -> value -> its cut
    for value, other in builds.items():
        theirs = wide if other is model else channel_layout(other)
        for name, layer in layers.items():
            (wide_in, wide_out), (in_, out) = wide[name], theirs.get(name, wide[name])
            if len(in_) != len(wide_in) or len(out) != len(wide_out) or any(
                    n > w for n, w in zip(in_ + out, wide_in + wide_out)):
                raise ConfigError(f"{key}={value!r} cannot share the supernet's weights: layer {name!r} has channel "
                                  f"segments {in_} -> {out} there but {wide_in} -> {wide_out} at the widest "
                                  f"{key}={max(builds)!r}; each must be a leading part of the other's")
            cuts[name][str(value)] = _cut(layer, wide[name], (in_, out))
    for name, layer in layers.items():
        if not any(cuts[name].values()):
            continue  # the same channels at every width (the output conv's input aside, e.g. a 3-channel bias)
        layer.__class__ = _elastic_class(type(layer))
        layer.key, layer.values, layer.elastic_cuts = key, list(cuts[name]), dict(cuts[name])
        layer.active = str(max(builds))
        layer.input_spec = None  # a narrower path feeds it fewer channels than it was built with
    for layer in model.layers:  # and a Switch's branch models check their inputs' shapes too
        for branch in getattr(layer, "branches", {}).values():
            branch._manual_input_spec = None


def elastic_layers(model: keras.Model) -> List:
    """The layers of ``model`` (``Switch`` branches included) that ``make_elastic`` made elastic."""
    return [layer for _, layer in weighted_layers(model) if isinstance(layer, ElasticMixin)]
