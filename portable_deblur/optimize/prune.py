"""Structured channel pruning to a MAC-reduction target (TF-MOT has none; this is ours).

1. **Which channels must agree.** Every channel of every tensor in the functional graph is a node; layers
   that tie channels together join their nodes (union-find): an ``Add``/``Multiply`` joins channel *i* of
   its inputs and output, ``Concatenate`` passes each input's channels through, ``DepthToSpace(2)`` joins
   output channel *c* with input channels ``k*C + c`` (its groups of 4), ``SimpleGate`` joins *c* with
   *c* and ``C + c`` (the halves it multiplies), per-channel layers (activations, PReLU, norms, pools,
   depthwise convs, NAFNet's scales) pass channels through. Convolutions start new channels. A joined set
   of channels (a *group*) is removed whole, so skips, residual paths and DepthToSpace stay consistent.
   Groups touching the model's input or output, or a single-channel tensor, are never removed.
2. **Importance.** A group's score is the mean, over the conv filters producing its channels, of the
   filter's L1 norm divided by the mean L1 norm of its layer's filters (Li et al. 2017, made comparable
   across layers).
3. **Selection.** Groups are removed from the least important up while the MAC reduction stays at most
   ``target + tolerance``, until it reaches ``target``; no layer keeps fewer than ``MIN_KEEP`` of its
   channels. MACs come from ``macs.layer_macs``, scaled by the kept fraction of each layer's input and
   output channels; the reduction reported is re-measured on the rebuilt model.
4. **Rebuild.** The model's config with thinner ``filters``, built again from config, every weight sliced to
   the surviving channels. The caller fine-tunes it (``optimize.prune_steps``).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from portable_deblur.backend import keras
from portable_deblur.models.layer_support import LAYERS
from portable_deblur.models.layers import CUSTOM_OBJECTS, DepthToSpace, SimpleGate
from portable_deblur.models.macs import count_macs, layer_macs

MIN_KEEP = 0.25  # no producing layer keeps fewer than this fraction of its output channels
TOLERANCE = 0.02  # achieved MAC reduction must land within target +- this (absolute fraction)

# Which layers are per-channel, elementwise, producing, ...: the "channels" rule of models/layer_support.py.
PRODUCERS = (keras.layers.Conv2D, keras.layers.Dense)  # Conv2DTranspose is a Conv2D; depthwise handled apart


class PruneError(ValueError):
    """The model cannot be pruned as asked (unsupported layer, unreachable target)."""


@dataclass(frozen=True)
class PruneResult:
    """A thinner model and what pruning did."""

    model: keras.Model
    target: float
    macs_before: int
    macs_after: int  # measured on the rebuilt model
    groups_removed: int
    channels: Dict[str, Tuple[int, int]]  # producing layer -> (channels before, after)

    @property
    def reduction(self) -> float:
        return 1.0 - self.macs_after / self.macs_before


class _Nodes:
    """Union-find over channel nodes."""

    def __init__(self):
        self.parent: List[int] = []

    def new(self, n: int) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _inputs_of(model: keras.Model) -> Dict[str, List[str]]:
    """Layer name -> names of the layers feeding it (each layer is called once in our builders)."""
    out = {}
    for spec in model.get_config()["layers"]:
        nodes = spec["inbound_nodes"]
        if len(nodes) > 1:
            raise PruneError(f"layer {spec['name']!r} is called {len(nodes)} times; pruning needs each layer once")
        out[spec["name"]] = [inbound[0] for inbound in nodes[0]] if nodes else []
    return out


def _folded(layer) -> int:
    """How many input channel blocks fold onto each output channel (DepthToSpace: 4, SimpleGate: 2)."""
    if isinstance(layer, DepthToSpace):
        return layer.block_size ** 2
    if isinstance(layer, SimpleGate):
        return 2
    return 0


def _rule(layer) -> str:
    entry = LAYERS.get(type(layer).__name__)
    if entry is None:
        supported = sorted(name for name, e in LAYERS.items() if e.channels != "input")
        raise PruneError(f"layer {layer.name!r} of type {type(layer).__name__} is not supported by channel "
                         f"pruning; supported: {supported}")
    return entry.channels


def _join(nodes: "_Nodes", layer, ins: List[np.ndarray], width: int) -> np.ndarray:
    """The output channel nodes of ``layer`` from its inputs' (``ins``), joining the ones it ties together."""
    rule = _rule(layer)
    if rule in ("input", "produce"):
        if getattr(layer, "groups", 1) != 1:
            raise PruneError(f"layer {layer.name!r}: grouped conv (groups={layer.groups}) is not supported")
        return nodes.new(width)
    if rule == "depthwise" and layer.depth_multiplier != 1:
        raise PruneError(f"layer {layer.name!r}: depthwise conv with depth_multiplier "
                         f"{layer.depth_multiplier} is not supported (only 1)")
    if rule == "concat":
        if layer.axis not in (-1, 3):
            raise PruneError(f"layer {layer.name!r}: concatenation on axis {layer.axis} is not supported")
        return np.concatenate(ins)
    if rule == "elementwise":
        full = [x for x in ins if len(x) == width]
        for x in ins:
            if len(x) == width:
                for a, b in zip(full[0], x):
                    nodes.union(a, b)
            elif len(x) != 1:  # a single channel broadcasts; anything else cannot happen in Keras
                raise PruneError(f"layer {layer.name!r}: inputs with {len(x)} and {width} channels")
        return full[0]
    if rule == "fold":
        k, x = _folded(layer), ins[0]
        for block in range(1, k):
            for a, b in zip(x[:width], x[block * width:(block + 1) * width]):
                nodes.union(a, b)
        return x[:width]
    return ins[0]  # "pass", "depthwise": channel c in is channel c out


def channel_graph(model: keras.Model):
    """(union-find, layer name -> output channel nodes, fixed nodes) for a functional ``model``."""
    nodes, channels, fixed = _Nodes(), {}, set()
    feeds = _inputs_of(model)
    for layer in model.layers:
        width = int(layer.output.shape[-1])
        channels[layer.name] = _join(nodes, layer, [channels[name] for name in feeds[layer.name]], width)
        if _rule(layer) == "input" or width == 1:
            fixed.update(channels[layer.name].tolist())
    for out in model.outputs:
        fixed.update(channels[out.node.layer.name].tolist())
    return nodes, channels, fixed


def _filter_norms(layer) -> np.ndarray:
    """L1 norm of each output filter of a producing layer, divided by the layer's mean."""
    kernel = layer.get_weights()[0]
    if isinstance(layer, keras.layers.Conv2DTranspose):  # (kh, kw, out, in)
        norms = np.abs(kernel).sum(axis=(0, 1, 3))
    else:  # Conv2D (kh, kw, in, out), Dense (in, out)
        norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return norms / max(float(norms.mean()), 1e-12)


def _input_layer(layer, feeds, channels):
    return channels[feeds[layer.name][0]]


def _removal_units(producers, channels, group_of, fixed_groups: set, multiple: int) -> Tuple[list, dict]:
    """(removal units from the least important up, group -> filter scores). A unit is ``multiple`` groups of
    one channel space (the groups the same producers make), so kept counts stay multiples of it."""
    scores: Dict[int, List[float]] = {}
    for layer in producers:
        for g, s in zip(group_of(channels[layer.name]), _filter_norms(layer)):
            scores.setdefault(int(g), []).append(float(s))
    spaces: Dict[int, List[str]] = {}
    for layer in producers:
        for g in group_of(channels[layer.name]):
            if int(g) not in fixed_groups:
                spaces.setdefault(int(g), []).append(layer.name)
    by_space: Dict[tuple, List[int]] = {}
    for g, names in spaces.items():
        by_space.setdefault(tuple(sorted(set(names))), []).append(g)
    units = []
    for groups in by_space.values():
        groups.sort(key=lambda g: (np.mean(scores[g]), g))
        units += [groups[i:i + multiple] for i in range(0, len(groups) - multiple + 1, multiple)]
    units.sort(key=lambda u: (np.mean([np.mean(scores[g]) for g in u]), u[0]))
    return units, scores


def _mac_terms(model, shape, channels, group_of) -> list:
    """(full MACs, input groups or None, output groups) per MAC-counting layer at input ``shape``."""
    feeds = _inputs_of(model)
    fixed_model = keras.models.clone_model(model, input_tensors=keras.Input((*shape, model.input_shape[-1])))
    terms = []
    for layer, fixed_layer in zip(model.layers, fixed_model.layers):
        macs = layer_macs(fixed_layer)
        if not macs:
            continue
        out_groups = group_of(channels[layer.name])
        if _rule(layer) == "depthwise":
            terms.append((macs, None, out_groups))
        else:
            terms.append((macs, group_of(_input_layer(layer, feeds, channels)), out_groups))
    return terms


def _macs_without(terms, removed: set) -> float:
    out = 0.0
    for macs, in_groups, out_groups in terms:
        kept_out = np.mean([g not in removed for g in out_groups])
        kept_in = 1.0 if in_groups is None else np.mean([g not in removed for g in in_groups])
        out += macs * kept_in * kept_out
    return out


def plan(model: keras.Model, target: float, shape: Tuple[int, int],
         multiple: int = 1) -> Tuple[set, Dict[str, np.ndarray]]:
    """The groups to remove for a ``target`` MAC reduction at input ``shape``, ``multiple`` groups of a
    channel space at a time: (removed group roots, layer name -> its output channels' group roots)."""
    nodes, channels, fixed = channel_graph(model)
    fixed_groups = {nodes.find(i) for i in fixed}
    group_of = lambda arr: np.array([nodes.find(int(i)) for i in arr], dtype=np.int64)  # noqa: E731
    producers = [layer for layer in model.layers if _rule(layer) == "produce"]
    units, _ = _removal_units(producers, channels, group_of, fixed_groups, multiple)
    terms = _mac_terms(model, shape, channels, group_of)
    total = sum(t[0] for t in terms)
    floor = {layer.name: max(1, math.ceil(MIN_KEEP * len(channels[layer.name]))) for layer in producers}
    prod_groups = {layer.name: group_of(channels[layer.name]) for layer in producers}
    removed: set = set()
    reduction = 0.0
    for unit in units:
        if reduction >= target:
            break
        trial = removed | set(unit)
        if any(sum(x not in trial for x in groups) < floor[name] for name, groups in prod_groups.items()):
            continue
        new = 1.0 - _macs_without(terms, trial) / total
        if new <= target + TOLERANCE:
            removed, reduction = trial, new
    if reduction < target - TOLERANCE:
        raise PruneError(f"cannot remove {target:.0%} of the MACs within +-{TOLERANCE:.0%} while every layer keeps "
                         f">= {MIN_KEEP:.0%} of its channels (reached {reduction:.1%}); use a smaller target")
    return removed, {name: group_of(arr) for name, arr in channels.items()}


def _slice_weights(layer, weights: Sequence[np.ndarray], keep_in: np.ndarray, keep_out: np.ndarray) -> list:
    """``layer``'s weights restricted to the kept input/output channels."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (kh, kw, c, 1), bias (c,)
        return [w[:, :, keep_in] if w.ndim == 4 else w[keep_out] for w in weights]
    if isinstance(layer, keras.layers.Conv2DTranspose):  # (kh, kw, out, in)
        return [w[:, :, keep_out][:, :, :, keep_in] if w.ndim == 4 else w[keep_out] for w in weights]
    if isinstance(layer, PRODUCERS):  # Conv2D (kh, kw, in, out), Dense (in, out)
        return [w[..., keep_in, :][..., keep_out] if w.ndim >= 2 else w[keep_out] for w in weights]
    return [w[..., keep_out] for w in weights]  # per-channel weights (PReLU, norms, scales): last axis


def prune(model: keras.Model, target: float, shape: Tuple[int, int], multiple: int = 1) -> PruneResult:
    """A thinner copy of ``model`` with about ``target`` (e.g. 0.3) of its MACs at ``shape`` removed, channels
    removed ``multiple`` at a time per channel space.

    Raises PruneError for a target outside (0, 1), an unsupported layer, or an unreachable target.
    """
    if not 0.0 < target < 1.0:
        raise PruneError(f"pruning target must be a MAC-reduction fraction in (0, 1), e.g. 0.3; got {target!r}")
    if not isinstance(multiple, int) or multiple < 1:
        raise PruneError(f"pruning multiple must be an integer >= 1; got {multiple!r}")
    removed, groups = plan(model, target, shape, multiple)
    thin, channels = rebuild(model, removed, groups)
    return PruneResult(thin, target, count_macs(model, shape), count_macs(thin, shape), len(removed), channels)


def rebuild(model: keras.Model, removed: set, groups: Dict[str, np.ndarray]):
    """(``model`` without the channels of the ``removed`` groups, producing layer -> (channels before,
    after)): the config with thinner ``filters``/``units`` built again, every weight sliced."""
    feeds = _inputs_of(model)
    keep = {name: np.flatnonzero([g not in removed for g in arr]) for name, arr in groups.items()}
    config = model.get_config()
    channels = {}
    for spec in config["layers"]:
        spec.pop("build_config", None)  # built again from the thinner inputs, not the recorded shapes
        layer = model.get_layer(spec["name"])
        if isinstance(layer, PRODUCERS) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            key = "units" if isinstance(layer, keras.layers.Dense) else "filters"
            channels[layer.name] = (spec["config"][key], len(keep[layer.name]))
            spec["config"][key] = len(keep[layer.name])
    thin = keras.Model.from_config(config, custom_objects=CUSTOM_OBJECTS)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            keep_in = keep[feeds[layer.name][0]] if feeds[layer.name] else keep[layer.name]
            thin.get_layer(layer.name).set_weights(_slice_weights(layer, weights, keep_in, keep[layer.name]))
    return thin, channels
