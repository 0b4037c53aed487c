"""The report's portability matrix (ops each delegate would reject, the MAC share that stays, the GPU
accelerator's measured placement) and per-layer quantization (int8 damage, float islands)."""
import html
from typing import Dict, List, Sequence

from portable_deblur.deploy.fp16_range import risk_text
from portable_deblur.records import ResultRow
from portable_deblur.report.table import html_table


def portability_rows(rows: Sequence[ResultRow]) -> List[Dict]:
    """One row per artifact, one column per delegate target: the ops it would reject ("ok" if none) and,
    where some fall back, the share of MACs that stays on the accelerator; the ``gpu`` column also names what
    would come within reach of fp16's range (``deploy.fp16_range``)."""
    out = []
    for r in rows:
        if not r.portability:
            continue
        entry = {"artifact": r.id}
        for target, rep in sorted(r.portability.items()):
            ops = " ".join(rep["fallback"])
            entry[target] = _fallback_cell(ops, rep["accelerator_mac_fraction"]) if ops else "ok"
        if r.gpu_measured:
            entry["gpu (measured)"] = _measured_gpu(r)
        risk = risk_text(r.fp16_range)
        if risk and "gpu" in entry:  # the GPU computes in fp16 whatever the file's dtype
            entry["gpu"] += f"; {risk}"
        out.append(entry)
    return out


def _fallback_cell(ops: str, mac_share: float) -> str:
    """A delegate's verdict on one artifact: the ops it would put on the CPU, and the share of MACs that stays
    on the accelerator -- or, when the rejected ops compute no MACs (a DEPTH_TO_SPACE, a resize), that the
    graph still splits around them."""
    if mac_share >= 0.9995:
        return f"{ops} on the CPU (no MACs in them; the graph still splits there)"
    return f"{ops} on the CPU ({100 * mac_share:.0f} % of MACs stay)"


def _measured_gpu(r: ResultRow) -> str:
    """The GPU accelerator's measured placement, and whether the ``gpu`` table's prediction agrees."""
    m = r.gpu_measured
    text = (f"{' '.join(m['rejected'])} ({m['cpu_ops']} of {m['gpu_ops'] + m['cpu_ops']} ops on the CPU)"
            if m["cpu_ops"] or m["rejected"] else "ok")
    table = r.portability.get("gpu")
    if table is not None and (not table["fallback"]) != (text == "ok"):
        text += " -- the table predicted " + (" ".join(table["fallback"]) or "ok")
    return text


def quantization_section(rows: Sequence[ResultRow]) -> List[str]:
    """Per int8 artifact: the layers quantization damages most and the layers XNNPACK left on TFLite's own
    kernels; per mixed-precision artifact: its float islands and why each."""
    parts = []
    tables = [r for r in rows if r.quantization_errors]
    if tables:
        parts.append("<h2>Per-layer quantization</h2><p>Per int8 file: each Keras layer's largest quantization error "
                     "on the calibration crops (TF's QuantizationDebugger: RMSE over the int8 step of its tensors; "
                     "0.29 is rounding alone), and the ops of it that XNNPACK left on TFLite's reference kernels in "
                     "this file (measured; they run slowly). A mixed-precision file keeps such layers in float.</p>")
        for r in tables:
            parts.append(f"<h3>{html.escape(r.id)}</h3>" + html_table(
                r.quantization_errors, ["layer", "rmse_over_scale", "ops", "undelegated"], fmt={"rmse_over_scale": ".2f"}))
    for r in (r for r in rows if r.float_islands):
        reasons = r.mixed_plan.get("reasons", {})
        parts.append(f"<h3>{html.escape(r.id)}: float islands</h3>" + html_table(
            [{"layer": layer, "dtype": dtype, "why": reasons.get(layer, "")} for layer, dtype in r.float_islands.items()],
            ["layer", "dtype", "why"]))
        tried = r.mixed_plan.get("tried", [])
        if tried:
            parts.append("<p>Plans tried (latency at the first measured resolution, PSNR on the validation frames' "
                         "centre windows):</p>" + html_table(
                             [{"float_islands": len(t["islands"]), "ms": t["ms"], "psnr": t["psnr"],
                               "kept": "yes" if t["kept"] else ""} for t in tried],
                             ["float_islands", "ms", "psnr", "kept"], sortable=False, fmt={"ms": ".1f", "psnr": ".2f"}))
    return parts


def portability_section(rows: Sequence[ResultRow]) -> List[str]:
    """The portability matrix with what it is based on: the tables, the measured GPU column, the LiteRT
    accelerator order and which targets are deprecated."""
    from portable_deblur.deploy.portability import ACCELERATOR_ORDER, targets

    port = portability_rows(rows)
    if not port:
        return []
    parts: List[str] = []
    measured = next((r.gpu_measured["adapter"] for r in rows if r.gpu_measured), None)
    how = (f" The <b>gpu (measured)</b> column is LiteRT's GPU accelerator itself, compiled on this host's "
           f"Vulkan adapter ({html.escape(measured)}): the ops it rejected, from the runtime's own report; "
           f"required-target checks use it instead of the <b>gpu</b> table prediction." if measured else
           " No Vulkan adapter on this host: every column is a table prediction.")
    old = sorted({t.name.split("_api")[0] for t in targets().values() if t.deprecated} & {
        k.split("_api")[0] for r in rows for k in r.portability})
    deprecated = sorted(t.name for t in targets().values() if t.deprecated)
    dep = (f" Deprecated targets ({', '.join(old)}): NNAPI and the Hexagon delegate are deprecated since "
           f"Android 15; their columns matter for older devices only." if old else
           f" The deprecated NNAPI and Hexagon targets ({', '.join(deprecated)}) are left out; name them in "
           f"portability.targets for older devices.")
    npu = sorted({t.name for t in targets().values() if t.accelerator == "npu"} & {k for r in rows for k in r.portability})
    npu_how = (f" NPU columns ({', '.join(npu)}) are the op lists of LiteRT's vendor compiler plugins; the vendor "
               f"compilers (not installable on this host) give the final per-op verdict and may refuse more."
               if npu else "")
    parts.append("<h2>Portability</h2><p>Ops each delegate would reject (they run on the CPU, which wrecks "
                 "latency) and the share of MACs that stays on the accelerator, predicted from the tables in "
                 f"deploy/op_support/.{how} LiteRT's CompiledModel API places a model on the first of "
                 f"{' &gt; '.join(a.upper() for a in ACCELERATOR_ORDER)} that takes it.{npu_how}{dep}</p>")
    parts.append(html_table(port, list(dict.fromkeys(k for r in port for k in r))))
    return parts
