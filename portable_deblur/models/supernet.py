"""One weight-sharing network for a whole grid, and the plain candidates extracted from it.

The supernet is the architecture's own builder called with ``Choices`` for every searched key
(``models/choice.py``): each position of a key holds every value's op, the layers all values share (the
convolutions around them) are built once; a depth choice builds a level's most blocks and skips the ones a
path leaves out. A searched width builds it at the widest value, and every layer runs the leading channels
of a narrower path (``models/elastic.py``). A path is one value per searched key -- one candidate.

Its weights leave it as a **weight table**: ``{layer name: [arrays]}``, where a layer inside a ``Switch``
is qualified by the value it belongs to (``up3_conv|upsampler=depth_to_space``); an elastic supernet's table
also holds ``|elastic=width`` (the widths it runs). A candidate is extracted by building it with its own
builder (exactly the graph a stand-alone candidate has) and copying, layer by layer by name, its path's
weights from the table, cut to its channels where the table is wider. The table is what a run's shared
training leaves and what the package ships as its pretrained start (``models/pretrained.py``).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from portable_deblur.backend import keras
from portable_deblur.models.build import build_model, get_architecture
from portable_deblur.models.candidate import Candidate
from portable_deblur.models.choice import Choices, switches
from portable_deblur.models.channels import channel_layout, slice_weights, weighted_layers
from portable_deblur.models.elastic import elastic_layers, make_elastic
from portable_deblur.registry import ConfigError

WeightTable = Dict[str, List[np.ndarray]]
WIDTH = "width"  # the elastic width key
ELASTIC = "|elastic=" + WIDTH  # a weight table entry: the widths an elastic supernet's table runs


@dataclass(frozen=True)
class SupernetSpec:
    """The supernet of a grid: its architecture, the fixed builder arguments, and every searched key's values
    (in grid order)."""

    arch: str
    fixed: Tuple[Tuple[str, object], ...]
    keys: Tuple[Tuple[str, Tuple], ...]

    @property
    def choices(self) -> Dict[str, Tuple]:
        return dict(self.keys)

    def kwargs(self) -> dict:
        return {**dict(self.fixed), **{k: Choices(k, v) for k, v in self.keys}}

    @property
    def widths(self) -> Tuple:
        """The searched widths (elastic), or () when the width is fixed."""
        return tuple(self.choices.get(WIDTH, ()))

    @property
    def paths(self) -> int:
        return int(np.prod([len(v) for _, v in self.keys]))


def spec_of(candidates: Sequence[Candidate]) -> SupernetSpec:
    """The supernet holding every one of ``candidates`` (a grid of one architecture). A searched key that
    changes shapes (width, depth, blocks) is a clear error naming it and the keys a supernet can hold."""
    archs = sorted({c.arch for c in candidates})
    if len(archs) != 1:
        raise ConfigError(f"search.weight_sharing=supernet needs one architecture; the grid holds {archs}")
    arch = archs[0]
    shareable = get_architecture(arch).shareable
    searched = sorted({k for c in candidates for k in c.searched})
    for key in searched:
        if key not in shareable:
            raise ConfigError(f"search.weight_sharing=supernet cannot share weights across grid.{key}: its values "
                              f"change the network in ways one set of weights cannot hold; a supernet of arch "
                              f"{arch!r} holds choices of {list(shareable)} (set search.weight_sharing=none to "
                              f"train each candidate on its own)")
    if not searched:
        raise ConfigError("search.weight_sharing=supernet needs a grid with searched keys; this one has none")
    values = {k: tuple(dict.fromkeys(c.kwargs[k] for c in candidates)) for k in searched}
    fixed = tuple((k, v) for k, v in candidates[0].arguments if k not in values)
    return SupernetSpec(arch, fixed, tuple((k, values[k]) for k in searched))


def build_supernet(spec: SupernetSpec) -> keras.Model:
    """The supernet as one Keras model (its active path: every key's first value, the widest width). With a
    searched width it is built at every width once, to learn which channels each layer keeps (a width some
    layer cannot take is a clear error here, before any training)."""
    build = get_architecture(spec.arch).build
    kwargs = spec.kwargs()
    if not spec.widths:
        return build(**kwargs, name=f"{spec.arch}_supernet")
    widest = max(spec.widths)
    net = build(**{**kwargs, WIDTH: widest}, name=f"{spec.arch}_supernet")
    make_elastic(net, WIDTH, {w: net if w == widest else build(**{**kwargs, WIDTH: w}) for w in spec.widths})
    return net


def set_path(model: keras.Model, path: Dict[str, object]) -> None:
    """Make ``path`` (searched key -> value) the one ``model`` runs; a value it does not hold is an error."""
    for key, layers in switches(model).items():
        value = str(path[key])
        for layer in layers:
            if value not in layer.values:
                raise ConfigError(f"the supernet has no {key}={value!r}; it holds {layer.values}")
            layer.active = value


def weight_table(model: keras.Model) -> WeightTable:
    """``{qualified layer name: its weights}`` of a supernet (or of a plain model: plain names only); an
    elastic supernet's also names the widths it runs (``ELASTIC``)."""
    table: WeightTable = {name: layer.get_weights() for name, layer in weighted_layers(model)}
    elastic = elastic_layers(model)
    if elastic:
        table[ELASTIC] = [np.array(sorted(float(v) for v in elastic[0].values), np.float32)]
    return table


def load_table(model: keras.Model, table: WeightTable) -> None:
    """Set a supernet's weights from a table it made (``weight_table``), or from one of the same layers at its
    widest width (a plain supernet's table continued as an elastic one: its narrower paths start from the
    leading channels)."""
    mine = weight_table(model)
    missing = sorted(set(mine) - set(table) - {ELASTIC})
    if missing:
        raise ConfigError(f"the weight table lacks {len(missing)} of the supernet's layers, first {missing[0]!r}")
    for name, layer in weighted_layers(model):
        layer.set_weights(table[name])


def path_source(table: WeightTable, layer: str, path: Dict[str, object]) -> str:
    """The table entry candidate layer ``layer`` takes on ``path`` (builder argument -> value, searched or
    fixed): the value-qualified one, else the shared."""
    for key, value in sorted(path.items()):
        qualified = f"{layer}|{key}={value}"
        if qualified in table:
            return qualified
    return layer


def inherit(model: keras.Model, table: WeightTable, path: Dict[str, object], source: str) -> int:
    """Copy ``path``'s weights from ``table`` into the plain candidate ``model``, layer by layer by name.

    A table of an elastic supernet (``ELASTIC``) is cut to the candidate's width: each weight's leading
    channels of every channel segment (``elastic.slice_weights``); a width it does not hold is an error. A
    layer the table lacks, or whose weight shapes differ otherwise, is a clear error naming that first
    mismatch and ``source`` (where the table came from). Returns the number of layers copied."""
    widths = [int(w) for w in table[ELASTIC][0]] if ELASTIC in table else []
    if widths and path.get(WIDTH) not in widths:
        raise ConfigError(f"{source} holds widths {widths}; this candidate has width={path.get(WIDTH)!r}")
    layout = channel_layout(model) if widths else {}
    copied = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        entry = path_source(table, layer.name, path)
        mine = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(np.shape(w)) for w in table[entry]] if entry in table else None
        weights = table[entry] if entry in table else None
        if widths and theirs is not None and theirs != mine:
            weights = slice_weights(layer, layout[layer.name], weights, source, layer.name)
            theirs = [tuple(np.shape(w)) for w in weights]
        if theirs != mine:
            raise ConfigError(f"{source} does not fit this candidate: its first mismatch is layer {layer.name!r}, "
                              f"weights {mine} here but {theirs or 'no such layer'} there (the start needs the "
                              f"same network: arch, width, depth and blocks)")
        layer.set_weights(weights)
        copied += 1
    return copied


def extract(table: WeightTable, candidate: Candidate, source: str = "the supernet") -> keras.Model:
    """``candidate`` as its own plain Keras model (its builder's graph) with its path's weights."""
    model = build_model(candidate)
    inherit(model, table, candidate.kwargs, source)
    return model


def save_table(table: WeightTable, path: Path, dtype=np.float32) -> None:
    """Write a weight table as ``.npz`` (``<entry>#<index>`` arrays), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays = {f"{name}#{i}": np.asarray(w, dtype) for name, weights in table.items() for i, w in enumerate(weights)}
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def read_table(path: Path) -> WeightTable:
    """A weight table written by ``save_table`` (float32 arrays)."""
    table: Dict[str, Dict[int, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            name, _, index = key.rpartition("#")
            table.setdefault(name, {})[int(index)] = data[key].astype(np.float32)
    return {name: [weights[i] for i in sorted(weights)] for name, weights in table.items()}
