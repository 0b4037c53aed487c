"""Reads a ``.tflite`` flatbuffer directly (LiteRT's generated schema): which ops the file really holds.

The op inventory (name, version, dtypes, MACs, the options delegates check) is what the portability
report judges, so it comes from the file that ships, never from the Keras model it was made from.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
from ai_edge_litert import schema_py_generated as schema

_BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
BUILTIN_OPS = frozenset(_BUILTIN_NAMES.values())  # every TFLite builtin op name (CONV_2D, RSQRT, ...)
_DTYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


@dataclass(frozen=True)
class OpRecord:
    """One operator of the graph: what a delegate looks at when deciding whether to take it."""

    index: int
    name: str
    version: int
    input_dtypes: Tuple[str, ...]  # runtime (non-constant) inputs first, as in the graph
    output_dtypes: Tuple[str, ...]
    output_shape: Tuple[int, ...]
    macs: int
    options: Dict[str, object] = field(default_factory=dict)
    output_names: Tuple[str, ...] = ()  # its output tensors' names (the converter's, from the Keras layer names)

    @property
    def layer(self) -> str:
        """The Keras layer the op came from (``layer_of`` its first output tensor)."""
        return layer_of((self.output_names or ("",))[0])

    @property
    def dtype(self) -> str:
        """The activation dtype the op computes in (its first runtime input, else its output)."""
        return (self.input_dtypes or self.output_dtypes or ("none",))[0]


def layer_of(tensor_name: str) -> str:
    """The Keras layer a converted tensor came from: ``nafnet/enc0_blk0_norm1/Mean`` -> ``enc0_blk0_norm1``
    (a QAT wrapper's ``quant_`` prefix dropped); empty where the name does not say."""
    parts = tensor_name.split(";")[0].split("/")
    name = parts[1] if len(parts) > 2 else ""
    return name[len("quant_"):] if name.startswith("quant_") else name


def _read(content: Union[bytes, str, Path]) -> bytes:
    return Path(content).read_bytes() if isinstance(content, (str, Path)) else bytes(content)


def _op_macs(name: str, shapes: List[Tuple[int, ...]], out: Tuple[int, ...]) -> int:
    """Multiply-accumulates of one op from its tensor shapes (same convention as ``macs.py``)."""
    if name == "CONV_2D":  # filter [Cout, kh, kw, Cin]
        _, kh, kw, cin = shapes[1]
        return int(np.prod(out)) * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, Cout]
        return int(np.prod(out)) * shapes[1][1] * shapes[1][2]
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, filter [Cout, kh, kw, Cin], input
        cout, kh, kw, cin = shapes[1]
        return int(np.prod(shapes[2][:-1])) * kh * kw * cin * cout
    if name == "FULLY_CONNECTED":  # filter [units, in]
        return int(np.prod(out)) * shapes[1][1]
    return 0


def _options(op, name: str) -> Dict[str, object]:
    if name in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        table = op.BuiltinOptions()
        opts = schema.ResizeBilinearOptions() if name == "RESIZE_BILINEAR" else schema.ResizeNearestNeighborOptions()
        if table is not None:
            opts.Init(table.Bytes, table.Pos)
            return {"half_pixel_centers": bool(opts.HalfPixelCenters()), "align_corners": bool(opts.AlignCorners())}
    return {}


def op_inventory(content: Union[bytes, str, Path]) -> List[OpRecord]:
    """Every operator of every subgraph, in graph order, with versions, dtypes, MACs and key options."""
    model = schema.Model.GetRootAsModel(_read(content), 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # schema v3a split the field
        custom = code.CustomCode()
        codes.append((custom.decode() if custom else _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"), code.Version()))
    records = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            name, version = codes[op.OpcodeIndex()]
            inputs = [graph.Tensors(t) for t in op.InputsAsNumpy() if t >= 0]
            outputs = [graph.Tensors(t) for t in op.OutputsAsNumpy()]
            constant = [t.Buffer() > 0 and model.Buffers(t.Buffer()).DataLength() > 0 for t in inputs]
            runtime = [t for t, c in zip(inputs, constant) if not c]
            shapes = [tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else () for t in inputs]
            out_shape = tuple(int(d) for d in outputs[0].ShapeAsNumpy()) if outputs and outputs[0].ShapeLength() else ()
            records.append(OpRecord(
                index=len(records), name=name, version=version,
                input_dtypes=tuple(_DTYPE_NAMES[t.Type()] for t in runtime),
                output_dtypes=tuple(_DTYPE_NAMES[t.Type()] for t in outputs),
                output_shape=out_shape, macs=_op_macs(name, shapes, out_shape), options=_options(op, name),
                output_names=tuple(t.Name().decode() for t in outputs)))
    return records


def inventory_table(records: List[OpRecord]) -> List[Dict[str, object]]:
    """Records grouped by (op, version, input dtypes, output dtypes): count and MACs per group."""
    groups: Dict[tuple, Dict[str, object]] = {}
    for r in records:
        key = (r.name, r.version, r.input_dtypes, r.output_dtypes)
        row = groups.setdefault(key, {"op": r.name, "version": r.version, "input_dtypes": "/".join(r.input_dtypes),
                                      "output_dtypes": "/".join(r.output_dtypes), "count": 0, "macs": 0})
        row["count"] += 1
        row["macs"] += r.macs
    return sorted(groups.values(), key=lambda g: (g["op"], g["version"]))


def op_names(content: Union[bytes, str, Path]) -> List[str]:
    """Builtin (or custom) op name of every operator in every subgraph, in graph order."""
    return [r.name for r in op_inventory(content)]


def op_counts(content: Union[bytes, str, Path]) -> Dict[str, int]:
    """``{op name: count}`` for the flatbuffer, sorted by name."""
    return dict(sorted(Counter(op_names(content)).items()))
