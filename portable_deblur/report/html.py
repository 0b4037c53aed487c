"""``report.html``: one static page per run (opens from disk, no server) for the people deciding what ships.

Pareto plot, per-choice effects, the full sortable results table, latency against resolution, the
portability table, and visual crops (blurry / each Pareto artifact / sharp on the same validation patches).
Plots are the PNGs beside it; crops live in ``crops/``.
"""
import html
from pathlib import Path
from statistics import mean
from typing import Dict, List, Sequence

import numpy as np

from portable_deblur.confidence import Interval, paired_difference
from portable_deblur.layout import RunLayout
from portable_deblur.rank import Objectives, gain_interval
from portable_deblur.records import OPTIMIZATION_KEYS, ResultRow, equally_trained, latency_basis

CROP = 48  # px of each validation patch, shown enlarged


def choice_effects(rows: Sequence[ResultRow], spec: Objectives) -> List[Dict]:
    """What each searched value (and each optimization) costs: per value, the mean PSNR and latency of the
    artifacts that have it, and the difference to the mean over all of them -- averaged over the others --
    with intervals: the PSNR difference paired over the validation frames (each frame's mean over the value's
    artifacts minus its mean over all), the latency difference from each artifact's interval (independent
    errors, summed in quadrature). ``delta_*_text`` says ``≈ 0`` where the interval covers zero.
    Only artifacts trained equally are compared (``records.equally_trained``: the most inherited + own
    steps), since a network trained longer would credit its steps to its values."""
    ok = equally_trained([r for r in rows if r.status == "ok" and spec.latency in r.latency])
    if not ok:
        return []
    keys = sorted({k for r in ok for k in r.values if k not in OPTIMIZATION_KEYS}) + ["optimization"]
    out = []
    for key in keys:
        value_of = (lambda r: r.optimization) if key == "optimization" else (lambda r, k=key: _text(r.values.get(k)))
        groups: Dict[str, List[ResultRow]] = {}
        for r in ok:
            groups.setdefault(value_of(r), []).append(r)
        if len(groups) < 2:
            continue
        for value, members in groups.items():
            db, ms = _delta_db(members, ok, spec), _delta_ms(members, ok, spec)
            out.append({"choice": key, "value": value, "artifacts": len(members),
                        "mean_psnr_db": mean(spec.values(r)[0] for r in members),
                        "mean_latency_ms": mean(spec.values(r)[1] for r in members),
                        "delta_db": db.estimate, "delta_db_text": _effect(db, "+.3f", " dB", spec.quality_margin_db),
                        "delta_ms": ms.estimate, "delta_ms_text": _effect(ms, "+.2f", " ms")})
    return out


def _delta_db(members: Sequence[ResultRow], every: Sequence[ResultRow], spec: Objectives) -> Interval:
    """Mean PSNR of ``members`` minus that of ``every``, paired over the frames (plain where rows kept none)."""
    names = {r.frames.names if r.frames is not None else None for r in every}
    if None not in names and len(names) == 1:
        frames = lambda rs: np.mean([r.frames.values(spec.psnr) for r in rs], axis=0)  # noqa: E731
        return paired_difference(frames(members), frames(every), spec.level)
    d = mean(spec.values(r)[0] for r in members) - mean(spec.values(r)[0] for r in every)
    return Interval(d, d, d, spec.level)


def _delta_ms(members: Sequence[ResultRow], every: Sequence[ResultRow], spec: Objectives) -> Interval:
    """Mean latency of ``members`` minus that of ``every``: the weights of each artifact's estimate, and the
    half-widths of their intervals combined in quadrature."""
    ids = {r.id for r in members}
    weights = [(1 / len(members) if r.id in ids else 0.0) - 1 / len(every) for r in every]
    estimates = [r.latency_interval(spec.latency) for r in every]
    d = sum(w * e.estimate for w, e in zip(weights, estimates))
    half = float(np.sqrt(sum((w * e.half_width) ** 2 for w, e in zip(weights, estimates))))
    return Interval(d, d - half, d + half, spec.level)


def _effect(d: Interval, fmt: str, unit: str, margin: float = 0.0) -> str:
    """``+0.120 dB [+0.08, +0.16]``; ``≈ 0 (-0.010 dB [-0.03, +0.01])`` where the interval covers 0; a note where
    it does not but reaches into the ``margin`` below which a difference does not count (``rank``)."""
    text = f"{d.estimate:{fmt}}{unit} [{d.low:{fmt}}, {d.high:{fmt}}]"
    if d.covers(0.0):
        return f"≈ 0 ({text})"
    return f"{text}, under the {margin:g}{unit} margin" if margin and min(abs(d.low), abs(d.high)) <= margin else text


def _text(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _patches(sharp: np.ndarray, count: int = 2) -> List[tuple]:
    """Top-left corners of the ``count`` most detailed non-overlapping patches (gradient energy)."""
    h, w = sharp.shape[:2]
    size = min(CROP, h, w)
    grey = sharp.astype(np.float32).mean(-1)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    step = max(1, size // 2)
    scored = []
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            scored.append((float(energy[y:y + size - 1, x:x + size - 1].sum()), y, x))
    chosen: List[tuple] = []
    for _, y, x in sorted(scored, reverse=True):
        if all(abs(y - cy) >= size or abs(x - cx) >= size for cy, cx, _ in chosen):
            chosen.append((y, x, size))
        if len(chosen) == count:
            break
    return chosen


def visual_crops(layout: RunLayout, front: Sequence[ResultRow], val_pairs) -> List[Dict]:
    """Restore the first validation image with every Pareto artifact (the ``.tflite`` itself) and save the
    same patches of blurry / each artifact / sharp as PNGs under ``crops/``."""
    from skimage.io import imsave
    from skimage.transform import resize

    from portable_deblur.train.evaluate import restore, to_uint8
    from portable_deblur.deploy.runtime import predictor

    pair = val_pairs[0]
    folder = layout.crops
    folder.mkdir(exist_ok=True)
    outputs = {"blurry": pair.blurry, "sharp": pair.sharp}
    for r in front:
        path = layout / r.artifacts.get("eval", "")
        if r.artifacts.get("eval") and path.is_file():
            canvas = tuple(int(d) for d in _input_shape(path))
            outputs[r.id] = to_uint8(restore(predictor(path), pair.blurry, canvas))
    crops = []
    for i, (y, x, size) in enumerate(_patches(pair.sharp)):
        row = {"patch": f"{pair.name} y={y} x={x} ({size}px)", "images": []}
        for name, image in outputs.items():
            patch = image[y:y + size, x:x + size]
            big = resize(patch, (size * 4, size * 4), order=0, preserve_range=True, anti_aliasing=False)
            file = folder / f"patch{i}_{name}.png"
            imsave(file, big.astype(np.uint8), check_contrast=False)
            row["images"].append({"name": name, "file": layout.relative(file)})
        crops.append(row)
    return crops


def _input_shape(path: Path):
    from portable_deblur.deploy.runtime import load_interpreter

    return load_interpreter(path).get_input_details()[0]["shape"][1:3]


def html_table(rows: List[Dict], columns: List[str], sortable: bool = True, fmt: Dict[str, str] = None) -> str:
    fmt = fmt or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            text = format(v, fmt[c]) if c in fmt and isinstance(v, (int, float)) else str(v)
            sort = f' data-sort="{v}"' if isinstance(v, (int, float)) else ""
            cells.append(f"<td{sort}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const up = th.dataset.dir !== 'up';
  th.dataset.dir = up ? 'up' : 'down';
  const key = td => td.dataset.sort !== undefined ? parseFloat(td.dataset.sort) : td.textContent;
  [...body.rows].sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1);
  }).forEach(r => body.appendChild(r));
}));
document.body.dataset.ready = 'yes';
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; } td:first-child, th:first-child { text-align: left; }
tr.front td { background: #fff4e0; } img.plot { max-width: 900px; width: 100%; }
.crops img { width: 160px; image-rendering: pixelated; margin: 2px; } .crops figure { display: inline-block; margin: 4px; }
figcaption { font-size: 11px; max-width: 160px; word-wrap: break-word; }
"""


def _ranking_basis(front: Sequence[ResultRow], spec: Objectives) -> str:
    """Which latency figure the front ranks by (``records.best_ms``) and, with a portability objective,
    whether its MAC share was measured or predicted, in words."""
    bases = sorted({latency_basis(r, spec.latency) for r in front})
    text = f"The front ranks by: {', '.join(bases) or 'nothing measured'}."
    if all(b.startswith("paired") for b in bases) and bases:
        text = ("The front ranks latency by each file's median ratio to a fixed reference network timed in "
                "alternation with it, in one process with every other competing file (the final interleaved "
                "re-timing): a slow window of the machine slows both runs of a pair alike and cancels in the "
                "ratio; runs whose threads waited for a CPU are left out. The ratio times the run's unit (the "
                "reference's median as timed between the files) gives milliseconds; front points whose intervals "
                "overlapped were timed again against each other (A/B/A/B) until ordered or declared tied "
                "(results.csv: latency_*_ranked_*, duels). Quality is compared paired: the same validation "
                "frames, so a frame's difficulty cancels (frames.csv holds every frame's figures).")
    flagged = [r.id for r in front if r.latency.get(spec.latency, {}).get("disturbed")]
    if flagged:
        text += (f" Disturbed even after every retry (the machine stayed busy), so their figures may be high: "
                 f"{html.escape(', '.join(flagged))} (the reason is in results.csv, latency_*_disturbed).")
    if spec.target:
        used = sorted({r.mac_fraction(spec.target)[1] for r in front})
        text += (f" Its third objective, the share of MACs {html.escape(spec.target)} keeps, is "
                 f"{' and '.join(used) or 'not known'} (measured: LiteRT's GPU accelerator on this host; table: "
                 f"deploy/op_support/{html.escape(spec.target)}.yaml).")
    return text


def _gpu_psnr_note(rows: Sequence[ResultRow]) -> str:
    """What the ``psnr_gpu`` column is, with the adapter and the precision it computed in."""
    from portable_deblur.deploy.gpu import adapter_precision

    if not any(r.psnr_gpu == r.psnr_gpu for r in rows):
        return ""
    adapters = sorted({r.gpu_measured["adapter"] for r in rows if r.psnr_gpu == r.psnr_gpu and r.gpu_measured})
    said = ", ".join(f"{a} ({adapter_precision(a) or 'precision unknown'})" for a in adapters) or "unknown"
    return (f" <b>psnr_gpu</b>: the float file's validation PSNR through LiteRT's GPU accelerator in its default "
            f"precision on this host's Vulkan adapter: {html.escape(said)}; a phone's GPU computes in fp16.")


def _pipeline_note(by_pipeline: Sequence[str]) -> str:
    """What the per-pipeline gain columns are (embedded data only)."""
    if not by_pipeline:
        return ""
    names = ", ".join(k[len("gain_"):-len("_db")] for k in by_pipeline)
    return (f"<p>Gains over the blurry input are also given per camera pipeline ({html.escape(names)}): the same "
            "held-out photographs blurred by averaging sub-frames in sRGB values (GoPro's <code>blur</code> set) and "
            "in linear light through a camera response (REDS, real single exposures). <code>gain_db</code> is over "
            "the frames of <code>data.blur_space</code>, the figure the front ranks by.</p>")


def results_rows(rows: Sequence[ResultRow], front: Sequence[ResultRow], spec: Objectives) -> List[Dict]:
    front_ids = {r.id for r in front}
    rungs = len({r.training for r in rows if r.status == "ok"}) > 1  # rows trained unequally: say how long
    gpu = any(r.psnr_gpu == r.psnr_gpu for r in rows)  # measure.gpu_psnr: the GPU accelerator's PSNR beside the CPU's
    pipelines = list(dict.fromkeys(name for r in rows for name in r.pipelines))  # embedded: both camera pipelines
    out = []
    for r in rows:
        lat = r.latency.get(spec.latency, {})
        out.append({"artifact": r.id, "front": "*" if r.id in front_ids else "", "family": r.arch,
                    "optimization": r.optimization, "status": r.status, "psnr_tflite": r.psnr_tflite,
                    **({"psnr_gpu": r.psnr_gpu} if gpu else {}), "ssim_tflite": r.ssim_tflite, "psnr_keras": r.psnr_keras, "gain_db": r.psnr_gain,
                    **{f"gain_{name}_db": r.pipeline_gain(name) for name in pipelines},
                    **{f"ssim_{name}": r.pipelines[name].get("ssim_tflite", float("nan")) if name in r.pipelines
                       else float("nan") for name in pipelines},
                    **({"rung": r.rung, "trained": r.training_label} if rungs else {}),
                    f"ms@{spec.latency}": r.best_ms(spec.latency), "trial_median_ms": lat.get("median_ms", float("nan")),
                    "p90_ms": lat.get("p90_ms", float("nan")),
                    "idle_share": lat.get("idle_share") if lat.get("idle_share") is not None else float("nan"),
                    "disturbed": lat.get("disturbed", ""), "params": r.params, "gmac": r.macs / 1e9,
                    "size_kb": r.size_kb, "fidelity_db": r.fidelity_psnr, "fidelity_l2": r.fidelity_l2,
                    "xnnpack": f"{r.xnnpack['delegated_nodes']}/{r.xnnpack['nodes']}" if r.xnnpack else "",
                    "error": r.error[:200]})
    return out


def portability_rows(rows: Sequence[ResultRow]) -> List[Dict]:
    """One row per artifact, one column per delegate target: the ops it would reject ("ok" if none) and,
    where some fall back, the share of MACs that stays on the accelerator."""
    out = []
    for r in rows:
        if not r.portability:
            continue
        entry = {"artifact": r.id}
        for target, rep in sorted(r.portability.items()):
            ops = " ".join(rep["fallback"])
            entry[target] = f"{ops} ({100 * rep['accelerator_mac_fraction']:.0f}% MACs stay)" if ops else "ok"
        if r.gpu_measured:
            entry["gpu (measured)"] = _measured_gpu(r)
        out.append(entry)
    return out


def _measured_gpu(r: ResultRow) -> str:
    """The GPU accelerator's measured placement, and whether the ``gpu`` table's prediction agrees."""
    m = r.gpu_measured
    text = (f"{' '.join(m['rejected'])} ({m['cpu_ops']} of {m['gpu_ops'] + m['cpu_ops']} ops on the CPU)"
            if m["cpu_ops"] or m["rejected"] else "ok")
    table = r.portability.get("gpu")
    if table is not None and (not table["fallback"]) != (text == "ok"):
        text += " -- the table predicted " + (" ".join(table["fallback"]) or "ok")
    return text


def _quantization_section(rows: Sequence[ResultRow]) -> List[str]:
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


def _portability_section(rows: Sequence[ResultRow]) -> List[str]:
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


def _decision_section(decision, spec: Objectives) -> str:
    """The recommendation at the top of the report: its lines, the tie groups, how they were judged."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in decision.lines)
    groups = "".join(f"<li><b>{chr(ord('A') + i)}</b>: {html.escape(', '.join(g))}</li>" for i, g in enumerate(decision.ties))
    return (f"<div class='decision'><h2>Recommendation</h2><ul>{items}</ul>"
            + (f"<p>Tie groups (indistinguishable on every objective at {100 * spec.level:g} %):</p><ul>{groups}</ul>"
               if groups else "<p>No two competing artifacts are tied on every objective.</p>")
            + f"<p>A point leaves the front only when another is at least as good within noise on every objective "
              f"and better beyond noise on one. Intervals are {100 * spec.level:g} % (<code>rank.confidence</code>): "
              "quality by the paired t over the validation frames (the same frames for every artifact, so a "
              "frame's difficulty cancels), latency by the order statistics of the paired ratios.</p></div>")


def _stability_section(decision) -> List[str]:
    """How often each competing artifact stays on the front, and is best, when the frames are resampled."""
    if not decision.stability:
        return []
    return ["<h2>Stability of the ranking</h2><p>Share of bootstrap resamples of the validation frames (the same "
            "resample for every artifact) in which each competing artifact is on the Pareto front of its resampled "
            "mean PSNR against its latency estimate, and in which its PSNR is the best (stability.csv): how often "
            "the point estimates alone, without intervals or margins, would put it there.</p>"
            + html_table(list(decision.stability), ["artifact", "on_front_share", "best_quality_share"],
                         fmt={"on_front_share": ".2f", "best_quality_share": ".2f"})]


def _front_rows(results: List[Dict], decision, spec: Objectives) -> List[Dict]:
    """The front table's rows: the results columns plus its tie group and both intervals."""
    by_id = {r.id: r for r in decision.front}
    out = []
    for entry in (e for e in results if e["front"]):
        row = by_id[entry["artifact"]]
        gain = gain_interval(row, spec)
        out.append({**entry, "tie_group": decision.group_of(row.id), "gain_interval": gain.text("+.3f"),
                    "ms_interval": row.latency_interval(spec.latency).text(".2f")})
    return out


def write_html(layout: RunLayout, rows: Sequence[ResultRow], decision, spec: Objectives,
               latency: Sequence[dict], crops: Sequence[Dict], title: str = "", extra: Sequence[str] = ()) -> Path:
    from portable_deblur.files import atomic_write

    title = title or layout.root.name
    front = decision.front
    results = results_rows(rows, front, spec)
    ms = f"ms@{spec.latency}"
    by_pipeline = [k for k in (results[0] if results else {}) if k.startswith("gain_") and k != "gain_db"]
    pipeline_fmt = {**{k: "+.2f" for k in by_pipeline}, **{k.replace("gain_", "ssim_")[:-3]: ".4f" for k in by_pipeline}}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} - portable_deblur</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(rows)} artifacts, {sum(r.status == 'ok' for r in rows)} ok, {len(front)} on the Pareto front "
             f"of PSNR ({html.escape(spec.psnr)}, up) against latency at {html.escape(spec.latency)} (down), "
             f"measured with LiteRT on the search machine. {_ranking_basis(front, spec)}</p>",
             _decision_section(decision, spec),
             f"<h2>Pareto front</h2><img class='plot' src='{layout.relative(layout.pareto_png)}' alt='Pareto plot'>",
             "<h2>Front</h2>" + _pipeline_note(by_pipeline)
             + html_table(_front_rows(results, decision, spec),
                          ["artifact", "tie_group", "optimization", "psnr_tflite", "gain_interval", *by_pipeline,
                           "ms_interval", "params", "gmac", "size_kb"],
                          fmt={"psnr_tflite": ".2f", "gain_db": "+.2f", ms: ".1f", "gmac": ".2f", "size_kb": ".0f",
                               **pipeline_fmt})]
    effects = choice_effects(rows, spec)
    trained = [r for r in rows if r.status == "ok"]
    equal = equally_trained(trained)
    if not effects and len({r.training for r in trained}) > 1:
        parts.append(f"<h2>What each choice costs</h2><p>Only {len(equal)} artifact(s) trained the most "
                     f"({html.escape(equal[0].training_label)}), too few to compare values; rows trained less "
                     "(lower rungs) are not compared with them, since they would credit one value with "
                     "another's training.</p>")
    if effects:
        compared = sum(e["artifacts"] for e in effects if e["choice"] == effects[0]["choice"])
        left = len(trained) - len(equal)
        parts.append("<h2>What each choice costs</h2><p>Mean over the artifacts with that value, and its "
                     "difference to the mean of all artifacts (so averaged over the other choices) with its "
                     f"{100 * spec.level:g} % interval (PSNR paired over the frames); ≈ 0 where the interval "
                     "covers zero, over the "
                     f"{compared} artifacts trained equally ({html.escape(equal[0].training_label)})"
                     + (f"; {left} trained less (lower rungs) are left out, so no value is credited "
                        "with another's training" if left else "") + ".</p>")
        parts.append(html_table(effects, ["choice", "value", "artifacts", "mean_psnr_db", "delta_db_text",
                                          "mean_latency_ms", "delta_ms_text"],
                                fmt={"mean_psnr_db": ".3f", "mean_latency_ms": ".2f"}))
    parts += _stability_section(decision)
    parts.append(f"<h2>All results</h2><p>Click a column to sort.{_gpu_psnr_note(rows)}</p>")
    parts.append(html_table(results, list(results[0]) if results else [],
                        fmt={"psnr_tflite": ".2f", "psnr_gpu": ".2f", "ssim_tflite": ".4f", "psnr_keras": ".2f",
                             "gain_db": "+.2f", ms: ".1f", "trial_median_ms": ".1f", "p90_ms": ".1f", "idle_share": ".2f", "gmac": ".2f", "size_kb": ".0f", "fidelity_db": ".1f",
                             "fidelity_l2": ".2e", **pipeline_fmt}))
    if latency:
        parts.append(f"<h2>Latency against resolution</h2><img class='plot' src='{layout.relative(layout.latency_png)}' "
                     "alt='latency vs resolution'>")
        parts.append(html_table(list(latency), ["id", "resolution", "threads", "median_ms", "p90_ms", "peak_rss_mb",
                                            "scaling_exponent"],
                            fmt={"median_ms": ".1f", "p90_ms": ".1f", "peak_rss_mb": ".0f", "scaling_exponent": ".2f"}))
    parts += _portability_section(rows)
    parts += _quantization_section(rows)
    parts += list(extra)
    if crops:
        parts.append("<h2>Visual crops</h2><p>The same validation patches: blurry input, each Pareto artifact "
                     "(its .tflite), sharp ground truth.</p>")
        for c in crops:
            figs = "".join(f"<figure><img src='{html.escape(i['file'])}' alt='{html.escape(i['name'])}'>"
                           f"<figcaption>{html.escape(i['name'])}</figcaption></figure>" for i in c["images"])
            parts.append(f"<div class='crops'><p>{html.escape(c['patch'])}</p>{figs}</div>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return atomic_write(layout.report, "\n".join(parts))

