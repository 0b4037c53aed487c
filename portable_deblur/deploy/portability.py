"""Portability stage: which ops each delegate would reject (and so run on the CPU), per artifact.

What each target accepts is data, not code: ``op_support/<target>.yaml``, each file citing the delegate
source it was read from. The same rules judge a flatbuffer's op inventory after export and, before any
training, the ops a Keras graph will convert to, so a space can skip candidates that cannot run on a
required accelerator. On this host the XNNPACK delegation is also *measured* from the live interpreter.
"""
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from portable_deblur.deploy.flatbuffer import OpRecord
from portable_deblur.registry import lookup

SUPPORT_DIR = Path(__file__).parent / "op_support"
# How LiteRT's CompiledModel API places a model today (ai.google.dev/edge/litert/next/acceleration): an NPU
# through a vendor compiler plugin, else the GPU accelerator, else the CPU (XNNPACK).
ACCELERATOR_ORDER = ("npu", "gpu", "cpu")


@dataclass(frozen=True)
class Target:
    """One accelerator path: the ops it accepts, with per-op dtype / API-level / version rules."""

    name: str
    description: str
    source: str
    dtypes: Tuple[str, ...]
    ops: Dict[str, dict] = field(default_factory=dict)
    api: Optional[int] = None  # Android API level, NNAPI only
    deprecated: str = ""  # since when and why, with the source (NNAPI and Hexagon: Android 15)
    accelerator: str = ""  # which of ACCELERATOR_ORDER it is, where the file says (the LiteRT paths)
    channel_multiple: int = 1  # every layer's channel count should be a multiple of it (the GPU's 4-channel slices)


@lru_cache(maxsize=None)
def targets() -> Dict[str, Target]:
    """Every target from ``op_support/*.yaml``; NNAPI expands to one target per API level."""
    out = {}
    for path in sorted(SUPPORT_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        common = dict(description=spec["description"], source=spec["source"], dtypes=tuple(spec["dtypes"]),
                      ops={k: v or {} for k, v in spec["ops"].items()}, deprecated=spec.get("deprecated", ""),
                      accelerator=spec.get("accelerator", ""), channel_multiple=int(spec.get("channel_multiple", 1)))
        for api in spec.get("api_levels") or [None]:
            name = spec["name"] if api is None else f"{spec['name']}_api{api}"
            out[name] = Target(name=name, api=api, **common)
    return out


def get_target(name: str) -> Target:
    """Return the target ``name`` (``gpu``, ``nnapi_api29``, ``xnnpack``, ``hexagon``, ...)."""
    return lookup(targets(), "portability target", name)


def rejection(op: OpRecord, target: Target) -> Optional[str]:
    """Why ``target`` would refuse ``op`` (it then falls back to the CPU), or None if accepted."""
    spec = target.ops.get(op.name)
    if spec is None:
        return f"{op.name} not supported"
    if op.dtype not in spec.get("dtypes", target.dtypes):
        return f"{op.name} in {op.dtype} not supported"
    if target.api is not None and spec.get("min_api", 0) > target.api:
        return f"{op.name} needs API {spec['min_api']}"
    if "max_version" in spec and op.version > spec["max_version"]:
        return f"{op.name} version {op.version} > {spec['max_version']}"
    hpc_api = spec.get("half_pixel_centers_min_api", 0)
    if target.api is not None and op.options.get("half_pixel_centers") and hpc_api > target.api:
        return f"{op.name} with half_pixel_centers needs API {hpc_api}"
    if "max_output_hw" in spec and op.output_shape and max(op.output_shape[1:3]) > spec["max_output_hw"]:
        return f"{op.name} output {op.output_shape[1]}x{op.output_shape[2]} > {spec['max_output_hw']}"
    return None


@dataclass(frozen=True)
class TargetReport:
    """What falls back on one target: ``{op: reason}``, node counts and the MAC share kept on the target."""

    target: str
    fallback: Dict[str, str]
    rejected_nodes: int
    nodes: int
    accelerator_mac_fraction: float

    @property
    def portable(self) -> bool:
        return not self.fallback


def check(ops: Sequence[OpRecord], target: Union[str, Target]) -> TargetReport:
    """Judge every op of a graph against ``target``."""
    target = get_target(target) if isinstance(target, str) else target
    fallback, rejected, kept_macs = {}, 0, 0
    for op in ops:
        reason = rejection(op, target)
        if reason is None:
            kept_macs += op.macs
        else:
            fallback.setdefault(op.name, reason)
            rejected += 1
    total = sum(op.macs for op in ops)
    return TargetReport(target.name, dict(sorted(fallback.items())), rejected, len(ops),
                        kept_macs / total if total else 1.0)


def mac_fraction(ops: Sequence[OpRecord], rejected: Sequence[str]) -> float:
    """The share of MACs in ``ops`` whose op type is not in ``rejected`` (what a runtime reported refusing)."""
    total = sum(op.macs for op in ops)
    return sum(op.macs for op in ops if op.name not in rejected) / total if total else 1.0


def check_all(ops: Sequence[OpRecord], names: Sequence[str]) -> Dict[str, TargetReport]:
    return {name: check(ops, name) for name in names}


# Ops the converter fuses a following RELU / RELU6 into (so a separate ReLU activation adds no op).
_FUSES_RELU = {"ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"}


def _layer_ops(layer) -> Tuple[str, ...]:
    """The float32 ops ``layer`` converts to (``models.layer_support``), its fused activation's included."""
    from portable_deblur.models.layer_support import ACTIVATION_OPS, LAYERS, layer_ops

    kind = type(layer).__name__
    if kind not in LAYERS:
        return (f"UNKNOWN_{kind}",)  # unknown layers are never judged portable by accident
    ops = layer_ops(LAYERS[kind], layer)
    act = getattr(layer, "activation", None)
    if kind == "Activation" or act is None:
        return ops
    act_name = getattr(act, "__name__", act)
    return ops + ACTIVATION_OPS.get(act_name, (f"UNKNOWN_{act_name}",))


def predict_ops(model, shape: Tuple[int, int] = (256, 256)) -> List[OpRecord]:
    """The float32 ops ``model`` will convert to, from its Keras graph (before any training)."""
    from portable_deblur.backend import keras
    from portable_deblur.models.macs import layer_macs

    fixed = keras.models.clone_model(model, input_tensors=keras.Input((*shape, model.input_shape[-1])))
    records, last_op = [], {}
    for layer in fixed.layers:
        out_shape = tuple(int(d or 1) for d in layer.output.shape)
        hpc = {"half_pixel_centers": True} if type(layer).__name__ == "UpSampling2D" else {}
        ops = _layer_ops(layer)
        inbound = [n.inbound_layers for n in layer._inbound_nodes]
        source = inbound[0] if inbound and not isinstance(inbound[0], list) else None
        if ops in (("RELU",), ("RELU6",)) and source is not None and last_op.get(source.name) in _FUSES_RELU:
            ops = ()  # fused into the producing op
        last_op[layer.name] = ops[-1] if ops else last_op.get(source.name if source is not None else "", None)
        for i, name in enumerate(ops):
            records.append(OpRecord(len(records), name, 1, ("float32",), ("float32",), out_shape,
                                    layer_macs(layer) if i == 0 else 0, hpc))
    return records


def _delegated_nodes(details: List[dict]) -> set:
    """Indices of original nodes that some DELEGATE node replaced.

    The interpreter keeps replaced nodes in its node list and appends one DELEGATE node per partition
    whose inputs are the partition's external inputs; walking back from each DELEGATE node's outputs to
    those inputs visits exactly the nodes of its partition.
    """
    original = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): i for i, d in enumerate(original) for t in d["outputs"]}
    taken: set = set()
    for node in details:
        if node["op_name"] != "DELEGATE":
            continue
        boundary, stack = {int(t) for t in node["inputs"]}, [int(t) for t in node["outputs"]]
        while stack:
            t = stack.pop()
            if t in boundary or t not in producer or producer[t] in taken:
                continue
            taken.add(producer[t])
            stack.extend(int(x) for x in original[producer[t]]["inputs"] if x >= 0)
    return taken


def xnnpack_delegation(model: Union[bytes, str, Path], threads: int = 1) -> Dict[str, object]:
    """Measured on this host: how many nodes XNNPACK took, and which ops stayed on TFLite's own kernels.

    Read from the live interpreter after the default XNNPACK delegate is applied (not predicted).
    """
    original, taken, kernels, _ = xnnpack_nodes(model, threads)
    left = Counter(d["op_name"] for i, d in enumerate(original) if i not in taken)
    return {"nodes": len(original), "delegated_nodes": len(taken),
            "delegate_kernels": kernels, "undelegated_ops": dict(sorted(left.items()))}


def xnnpack_nodes(model: Union[bytes, str, Path], threads: int = 1):
    """The live interpreter's view after the default XNNPACK delegate is applied: the model's own nodes (op
    details), the indices of those XNNPACK took, the number of delegate kernels, and ``{tensor index: name}``."""
    from portable_deblur.deploy.runtime import load_interpreter

    interpreter = load_interpreter(model, threads)
    details = interpreter._get_ops_details()  # private but stable: the only view of the node list
    original = [d for d in details if d["op_name"] != "DELEGATE"]
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return original, _delegated_nodes(details), len(details) - len(original), names


# XNNPACK's int8 scale checks, the one refusal a table of op types cannot see (read from the delegate's source,
# tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc): an ADD or SUB needs each input's scale over the
# output's in [1/1024, 256); a MUL the product of its input scales over the output's in [1/65536, 256).
SCALE_RANGES = {"ADD": (1 / 1024, 256.0), "SUB": (1 / 1024, 256.0), "MUL": (1 / 65536, 256.0)}


def scale_refusals(model: Union[bytes, str, Path]) -> Dict[str, str]:
    """``{output tensor name: why}`` of every int8 ADD / SUB / MUL whose quantization scales XNNPACK's check
    refuses (``SCALE_RANGES``), read from the file's tensors: which elementwise nodes stay on TFLite's
    reference kernels, and why."""
    from portable_deblur.deploy.runtime import load_interpreter

    interpreter = load_interpreter(model, 1)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    out = {}
    for node in interpreter._get_ops_details():  # private but stable: the only view of the node list
        op = node["op_name"]
        if op not in SCALE_RANGES or len(node["inputs"]) != 2:
            continue
        ins, output = [tensors[int(i)] for i in node["inputs"]], tensors[int(node["outputs"][0])]
        if any(t["dtype"] != np.int8 for t in (*ins, output)):
            continue
        scale = lambda t: float(t["quantization_parameters"]["scales"][0])  # noqa: E731
        low, high = SCALE_RANGES[op]
        ratios = ([("input1*input2/output", scale(ins[0]) * scale(ins[1]) / scale(output))] if op == "MUL" else
                  [(f"input{i + 1}/output", scale(t) / scale(output)) for i, t in enumerate(ins)])
        bad = [f"{what} {r:.3g}" for what, r in ratios if not low <= r < high]
        if bad:
            out[output["name"]] = f"{op} scale check: {', '.join(bad)} outside [{low:.3g}, {high:g})"
    return out
