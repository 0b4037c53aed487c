"""Reads a ``.tflite`` flatbuffer directly (LiteRT's generated schema): which ops the file really holds."""
from collections import Counter
from pathlib import Path
from typing import Dict, List, Union

from ai_edge_litert import schema_py_generated as schema

_BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _model(content: Union[bytes, str, Path]):
    data = Path(content).read_bytes() if isinstance(content, (str, Path)) else bytes(content)
    return schema.Model.GetRootAsModel(data, 0)


def op_names(content: Union[bytes, str, Path]) -> List[str]:
    """Builtin (or custom) op name of every operator in every subgraph, in graph order."""
    model = _model(content)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # schema v3a split the field
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    names = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        names.extend(codes[subgraph.Operators(j).OpcodeIndex()] for j in range(subgraph.OperatorsLength()))
    return names


def op_counts(content: Union[bytes, str, Path]) -> Dict[str, int]:
    """``{op name: count}`` for the flatbuffer, sorted by name."""
    return dict(sorted(Counter(op_names(content)).items()))
