"""Elastic width: one network built at its widest whose narrower paths run the leading channels of every
layer, so a supernet shares width (Once-for-All, Cai et al. 2020; BigNAS, Yu et al. 2020) as it shares op
choices (``models/choice.py``).

Which channels a narrower path keeps follows the graph's channel segments (``models/channels.py``). Each
layer with channel-sized weights (a conv, a norm, a PReLU, a residual scale) slices them (``tf.gather`` of
the kept channels) when its path is traced, the way a ``Switch`` picks its branch; the kept channels come
from building the network at every width and matching segment sizes, so a width some layer cannot take is a
clear error before any training.
"""
from collections import defaultdict
from typing import Dict, List, Tuple

from portable_deblur.backend import keras, tf
from portable_deblur.models.channels import Segments, channel_layout, kept, weight_axes, weighted_layers
from portable_deblur.registry import ConfigError


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
