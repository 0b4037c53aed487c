"""Per-layer mixed precision: int8 where the deployed runtime runs it fast and accurately, float islands
where it does not -- chosen by measurement, not by predicted cost.

A **group** is one Keras layer of the float model with all the TFLite ops it converts to (a LayerNorm's
MEAN / SUB / SQUARED_DIFFERENCE / RSQRT / MUL / ADD, a residual's ADD), read off the ops' output tensor
names (``flatbuffer.OpRecord.layer``). The plan (``choose_islands``) starts from the file quantized
entirely to int8 and:

1. keeps in float the groups whose int8 ops the live XNNPACK interpreter leaves on TFLite's reference kernels
   (measured, ``deploy.portability.xnnpack_delegation``) -- kept only if the file gets faster;
2. while the deployed PSNR drop against the float file exceeds ``optimize.mixed_max_drop_db``, tries the
   group TF's ``QuantizationDebugger`` finds most damaged by quantization (RMSE over the quantization step,
   on the calibration crops) next: kept when the PSNR rises and the file stays within
   ``optimize.mixed_max_slowdown`` of the full int8 file's latency, up to ``optimize.mixed_max_tries`` tries.

The model is calibrated once; each plan is that calibration quantized with its islands' nodes denylisted
(what the debugger's ``denylisted_nodes`` does), so trying a plan costs one quantization pass.
"""
import csv
import io
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from portable_deblur.registry import ConfigError

ISLAND_DTYPE = "float32"


def layer_nodes(content) -> Dict[str, List[str]]:
    """``{Keras layer: the output tensor names of its ops}`` of a float ``.tflite`` (what a denylist names)."""
    from portable_deblur.deploy.flatbuffer import op_inventory

    out: Dict[str, List[str]] = {}
    for op in op_inventory(content):
        if op.layer:
            out.setdefault(op.layer, []).extend(op.output_names)
    return out


def float_islands(content) -> Dict[str, str]:
    """``{Keras layer: dtype}`` of the groups a quantized file computes in float (every op of the layer float)."""
    from portable_deblur.deploy.flatbuffer import op_inventory

    dtypes: Dict[str, set] = {}
    for op in op_inventory(content):
        if op.layer and op.name not in ("QUANTIZE", "DEQUANTIZE"):
            dtypes.setdefault(op.layer, set()).add(op.dtype)
    return {layer: ISLAND_DTYPE for layer, kinds in sorted(dtypes.items()) if kinds == {ISLAND_DTYPE}}


def undelegated_layers(content, threads: int = 1) -> Dict[str, List[str]]:
    """``{Keras layer: its ops}`` that the live XNNPACK interpreter leaves on TFLite's own kernels (measured)."""
    from portable_deblur.deploy.flatbuffer import layer_of
    from portable_deblur.deploy.portability import xnnpack_nodes

    original, taken, _, names = xnnpack_nodes(content, threads)
    out: Dict[str, List[str]] = {}
    for i, d in enumerate(original):
        if i in taken or d["op_name"] in ("QUANTIZE", "DEQUANTIZE") or not len(d["outputs"]):
            continue
        layer = layer_of(names.get(int(d["outputs"][0]), ""))
        if layer:
            out.setdefault(layer, []).append(d["op_name"])
    return out


class Calibrated:
    """A float model calibrated once for int8 on ``representative`` at ``shape``: any selective int8 file
    quickly, and per-layer quantization error (TF's ``QuantizationDebugger``)."""

    def __init__(self, model, shape: Tuple[int, int], representative: Callable[[], Iterable]):
        from portable_deblur.deploy.export import convert, to_tflite

        self.model, self.shape, self.representative = model, shape, representative
        self.float_file = to_tflite(model, shape)
        self.nodes = layer_nodes(self.float_file)
        converter = self._converter()
        converter._experimental_calibrate_only = True  # what QuantizationDebugger calibrates with
        self.calibrated = convert(converter)
        self._errors: Optional[List[Dict]] = None

    def _converter(self):
        from portable_deblur.deploy.export import QUANTIZATIONS, converter_for

        converter = converter_for(self.model, self.shape)
        QUANTIZATIONS["int8_float_fallback"](converter, self.representative)  # denylisted ops may stay float
        return converter

    @property
    def layers(self) -> List[str]:
        return list(self.nodes)

    def quantize(self, islands: Sequence[str] = (), ops: Sequence[str] = ()) -> bytes:
        """The int8 file with ``islands`` (Keras layers) and every op of type ``ops`` kept in float."""
        from tensorflow.lite.python import convert

        from portable_deblur.console import quiet_stderr

        check_islands(islands, self.layers, ops)
        nodes = [n for layer in islands for n in self.nodes[layer]]
        with quiet_stderr():
            return convert.mlir_quantize(self.calibrated, denylisted_nodes=nodes or None,
                                         denylisted_ops=list(ops) or None)

    def layer_errors(self) -> List[Dict]:
        """Per Keras layer, from the debugger's per-tensor statistics on the calibration inputs: the largest
        RMSE over the quantization step (``scale``) of its tensors (1/sqrt(12) = 0.29 is pure rounding), its
        mean squared error, and its ops; worst first."""
        if self._errors is None:
            from portable_deblur.backend import tf
            from portable_deblur.console import quiet_stderr
            from portable_deblur.deploy.flatbuffer import layer_of

            with quiet_stderr(), warnings.catch_warnings():
                # The debugger runs TF's own interpreter on both models (LiteRT has no quantization debugger),
                # which warns that tf.lite.Interpreter is deprecated; every .tflite the product times, judges or
                # bundles runs on LiteRT (deploy/runtime.py).
                warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
                debugger = tf.lite.experimental.QuantizationDebugger(converter=self._converter(),
                                                                     debug_dataset=self.representative)
                debugger.run()
                dump = io.StringIO()
                debugger.layer_statistics_dump(dump)
            per: Dict[str, Dict] = {}
            for row in csv.DictReader(io.StringIO(dump.getvalue())):
                layer = layer_of(row["tensor_name"]) or row["tensor_name"]
                scale, mse = float(row["scale"] or "nan"), float(row["mean_squared_error"] or "nan")
                ratio = float(np.sqrt(mse) / scale) if scale > 0 else float("nan")
                entry = per.setdefault(layer, {"layer": layer, "rmse_over_scale": 0.0, "mse": 0.0, "ops": []})
                entry["rmse_over_scale"] = max(entry["rmse_over_scale"], ratio if ratio == ratio else 0.0)
                entry["mse"] = max(entry["mse"], mse if mse == mse else 0.0)
                entry["ops"].append(row["op_name"])
            self._errors = sorted(per.values(), key=lambda e: -e["rmse_over_scale"])
        return self._errors


def check_islands(islands: Sequence[str], layers: Sequence[str], ops: Sequence[str] = ()) -> None:
    """A user-given island that names no layer of the model (or op type of TFLite) is a clear error."""
    from portable_deblur.deploy.flatbuffer import BUILTIN_OPS

    for name in islands:
        if name not in layers:
            raise ConfigError(f"optimize.mixed_islands names layer {name!r}, which this network does not have; "
                              f"its layers with ops: {sorted(layers)}")
    for name in ops:
        if name not in BUILTIN_OPS:
            raise ConfigError(f"optimize.mixed_ops names op {name!r}, which is no TFLite builtin op; valid: "
                              f"{sorted(BUILTIN_OPS)}")


@dataclass
class MixedPlan:
    """The islands chosen for one float model, why each, and every plan tried on the way."""

    islands: Tuple[str, ...]
    ops: Tuple[str, ...] = ()
    reasons: Dict[str, str] = field(default_factory=dict)
    tried: List[Dict] = field(default_factory=list)  # {"islands", "ms", "psnr", "kept"} per plan tried
    # The chosen file at the shapes this process calibrated (not saved): its row need not calibrate again.
    files: Dict[Tuple[int, int], bytes] = field(default_factory=dict, compare=False, repr=False)


def choose_islands(calibrated: Calibrated, psnr: Callable[[bytes], float], cfg, threads: int,
                   fixed: Sequence[str] = (), ops: Sequence[str] = ()) -> MixedPlan:
    """The greedy plan above, against ``psnr`` (the deployed PSNR of a file at ``calibrated.shape``) and
    latency measured here; ``fixed`` (``optimize.mixed_islands``) / ``ops`` (``optimize.mixed_ops``) skip the
    search and keep exactly those in float."""
    check_islands(fixed, calibrated.layers, ops)
    if fixed or ops:
        return MixedPlan(tuple(fixed), tuple(ops), {name: "given (optimize.mixed_islands)" for name in fixed})
    o = cfg.optimize
    reference = psnr(calibrated.float_file)
    plans = _Plans(calibrated, psnr, cfg.measure, threads)
    best, reasons = plans.attempt(()), {}
    slow = undelegated_layers(best["content"])
    if slow:
        attempt = plans.attempt(sorted(slow))
        plans.time(best, attempt)
        if attempt["ms"] < best["ms"]:
            best = attempt
            reasons = {layer: "int8 " + "/".join(sorted(set(found))) + " left off XNNPACK" for layer, found in slow.items()}
    else:
        plans.time(best)
    errors = [e for e in calibrated.layer_errors() if e["layer"] in calibrated.nodes and e["layer"] not in best["islands"]]
    for e in errors[:o.mixed_max_tries]:
        if reference - best["psnr"] <= o.mixed_max_drop_db:
            break
        attempt = plans.attempt(sorted(best["islands"] + [e["layer"]]))
        plans.time(plans.tried[0], attempt)
        if attempt["psnr"] > best["psnr"] and attempt["ms"] <= plans.tried[0]["ms"] * (1 + o.mixed_max_slowdown):
            best = attempt
            reasons[e["layer"]] = f"quantization error {e['rmse_over_scale']:.2f} x its int8 step"
    return MixedPlan(tuple(best["islands"]), (), reasons, plans.close(best))


class _Plans:
    """The plans ``choose_islands`` tried: each quantized, judged by ``psnr``, kept on disk until timed."""

    def __init__(self, calibrated: Calibrated, psnr: Callable[[bytes], float], measure_cfg, threads: int):
        self.calibrated, self.psnr, self.measure_cfg, self.threads = calibrated, psnr, measure_cfg, threads
        self.folder = Path(tempfile.mkdtemp(prefix="mixed_plan_"))
        self.tried: List[Dict] = []

    def attempt(self, islands: Sequence[str]) -> Dict:
        content = self.calibrated.quantize(islands)
        path = self.folder / f"plan_{len(self.tried)}.tflite"
        path.write_bytes(content)
        self.tried.append({"islands": list(islands), "psnr": self.psnr(content), "path": path, "content": content})
        return self.tried[-1]

    def time(self, *entries: Dict) -> None:
        """Time ``entries`` interleaved, so a busy machine slows them alike."""
        from portable_deblur.deploy.measure import measure_interleaved

        paths = [e["path"] for e in entries]
        for entry, stats in zip(entries, measure_interleaved(paths, self.measure_cfg, self.threads, 3)):
            entry["ms"] = stats["interleaved_median_ms"]

    def close(self, best: Dict) -> List[Dict]:
        """The plans tried (which was kept), their files removed."""
        for entry in self.tried:
            entry["kept"] = entry is best
            entry.pop("content")
            entry.pop("path").unlink()
        self.folder.rmdir()
        return self.tried


def centre_crops(pairs, shape: Tuple[int, int]) -> list:
    """Each validation pair's centre ``shape`` window (whole where smaller): what plans are judged on."""
    from portable_deblur.data.sources import Pair

    out = []
    for p in pairs:
        h, w = p.sharp.shape[:2]
        y, x = max(0, (h - shape[0]) // 2), max(0, (w - shape[1]) // 2)
        window = (slice(y, y + shape[0]), slice(x, x + shape[1]))
        out.append(Pair(p.name, p.blurry[window], p.sharp[window], getattr(p, "pipeline", ""), getattr(p, "ranked", True)))
    return out


def plan_for(model, cfg, dataset, shape: Tuple[int, int], folder: Path) -> MixedPlan:
    """The mixed plan of one float model (``choose_islands`` at ``shape``, judged on the validation frames'
    centre windows), made once and kept in ``folder`` (``RunLayout.mixed_plan``) for its PTQ and QAT rows."""
    import json

    from portable_deblur.deploy.export import representative_inputs
    from portable_deblur.layout import RunLayout
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.train.evaluate import quality

    saved = RunLayout.mixed_plan(Path(folder))
    if saved.is_file():
        data = json.loads(saved.read_text())
        return MixedPlan(tuple(data["islands"]), tuple(data["ops"]), data["reasons"], data["tried"])
    o = cfg.optimize
    rep = representative_inputs(dataset.train, shape, o.representative_count, cfg.data.seed)
    frames = centre_crops(dataset.val, shape)
    judge = lambda content: quality(predictor(content, cfg.measure.threads[0]), frames, shape).psnr  # noqa: E731
    calibrated = Calibrated(model, shape, rep)
    plan = choose_islands(calibrated, judge, cfg, cfg.measure.threads[0], o.mixed_islands, o.mixed_ops)
    plan.files[tuple(shape)] = calibrated.quantize(plan.islands, plan.ops)
    from portable_deblur.files import atomic_write

    # The debugger's per-layer errors go with the plan, so the row's error table need not calibrate again.
    atomic_write(saved, json.dumps({"islands": list(plan.islands), "ops": list(plan.ops), "reasons": plan.reasons,
                                    "tried": plan.tried, "errors": calibrated.layer_errors()}, indent=1, default=float))
    return plan


