"""``report.html``: one static page per run (opens from disk, no server) for the people deciding what ships.

The page in order: the recommendation and its tie groups, the Pareto plot and front table, the front at each
measured resolution (``report.resolutions``), what each choice costs (``report.effects``), the ranking's
stability, every result (sortable), latency against resolution, portability and per-layer quantization
(``report.portability``), and the visual crops with error maps (``report.crops``). Plots are the PNGs beside
it; crops live in ``crops/``; wide tables scroll inside their section.
"""
import html
from pathlib import Path
from typing import Dict, List, Sequence

from portable_deblur.layout import RunLayout
from portable_deblur.rank import Objectives, gain_interval
from portable_deblur.records import ResultRow
from portable_deblur.latency import latency_basis
from portable_deblur.report.table import _SCRIPT, _STYLE, html_table


def _ranking_basis(front: Sequence[ResultRow], spec: Objectives) -> str:
    """Which latency figure the front ranks by (``latency.best_ms``) and, with a portability objective,
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
                    "optimization": r.optimization, "status": "screened" if r.screened else r.status,
                    "psnr_tflite": r.psnr_tflite,
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


def _summary(rows: Sequence[ResultRow], decision, spec: Objectives) -> str:
    """The line under the title: how many artifacts, what the front ranks, and on which figures; why the
    networks of one search may share a MAC count."""
    front = decision.front
    macs = {round(r.macs / 1e6) for r in rows if r.status == "ok" and "prune" not in r.values}
    equal = (" Every float network here has the same MAC count: a search that varies only op choices (the "
             "MediaTek paper's design) holds width and depth fixed, so MACs cannot tell them apart and the "
             "measured latency shows what the ops cost." if len(macs) == 1 and len(rows) > 1 else "")
    return (f"<p>{len(rows)} artifacts, {sum(r.status == 'ok' for r in rows)} ok, {len(front)} on the Pareto front "
            f"of PSNR ({html.escape(spec.psnr)}, up) against latency at {html.escape(spec.latency)} (down), "
            f"measured with LiteRT on the search machine. {_ranking_basis(front, spec)}{equal}</p>")


def _front_section(layout: RunLayout, results: List[Dict], decision, spec: Objectives) -> List[str]:
    by_pipeline = _pipelines(results)
    return [f"<h2>Pareto front</h2><img class='plot' src='{layout.relative(layout.pareto_png)}' alt='Pareto plot'>",
            "<h2>Front</h2>" + _pipeline_note(by_pipeline) + _scroll(html_table(
                _front_rows(results, decision, spec),
                ["artifact", "tie_group", "optimization", "psnr_tflite", "gain_interval", *by_pipeline,
                 "ms_interval", "params", "gmac", "size_kb"],
                fmt={"psnr_tflite": ".2f", "gmac": ".2f", "size_kb": ".0f", **_pipeline_fmt(by_pipeline)}))]


def _results_section(rows: Sequence[ResultRow], results: List[Dict], spec: Objectives) -> List[str]:
    fmt = {"psnr_tflite": ".2f", "psnr_gpu": ".2f", "ssim_tflite": ".4f", "psnr_keras": ".2f", "gain_db": "+.2f",
           f"ms@{spec.latency}": ".1f", "trial_median_ms": ".1f", "p90_ms": ".1f", "idle_share": ".2f",
           "gmac": ".2f", "size_kb": ".0f", "fidelity_db": ".1f", "fidelity_l2": ".2e",
           **_pipeline_fmt(_pipelines(results))}
    screened = sum(r.screened for r in rows)
    note = (f" {screened} rows are <em>screened</em>: a lower rung judged them only by what its promotion ranks "
            "(the Keras model's quality, gain_db included, and the .tflite timed at the ranked size; "
            "<code>search.screen</code>)." if screened else "")
    return [f"<h2>All results</h2><p>Click a column to sort; the table scrolls sideways.{_gpu_psnr_note(rows)}{note}</p>",
            _scroll(html_table(results, list(results[0]) if results else [], fmt=fmt))]


def _latency_section(layout: RunLayout, latency: Sequence[dict]) -> List[str]:
    if not latency:
        return []
    return [f"<h2>Latency against resolution</h2><img class='plot' src='{layout.relative(layout.latency_png)}' "
            "alt='latency vs resolution'>",
            _scroll(html_table(list(latency), ["id", "resolution", "threads", "median_ms", "p90_ms", "peak_rss_mb",
                                               "scaling_exponent"],
                               fmt={"median_ms": ".1f", "p90_ms": ".1f", "peak_rss_mb": ".0f",
                                    "scaling_exponent": ".2f"}))]


def _pipelines(results: List[Dict]) -> List[str]:
    return [k for k in (results[0] if results else {}) if k.startswith("gain_") and k != "gain_db"]


def _pipeline_fmt(by_pipeline: Sequence[str]) -> Dict[str, str]:
    return {**{k: "+.2f" for k in by_pipeline}, **{k.replace("gain_", "ssim_")[:-3]: ".4f" for k in by_pipeline}}


def _scroll(table: str) -> str:
    """A table that scrolls sideways inside its section when wider than the window."""
    return f"<div class='scroll'>{table}</div>"


def write_html(layout: RunLayout, rows: Sequence[ResultRow], decision, spec: Objectives,
               latency: Sequence[dict], crops: Sequence[Dict], title: str = "", extra: Sequence[str] = ()) -> Path:
    from portable_deblur.decision import label
    from portable_deblur.files import atomic_write
    from portable_deblur.report.crops import crops_section
    from portable_deblur.report.effects import effects_section
    from portable_deblur.report.portability import portability_section, quantization_section
    from portable_deblur.report.resolutions import resolution_section

    title = title or layout.root.name
    results = results_rows(rows, decision.front, spec)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} - portable_deblur</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             _summary(rows, decision, spec), _decision_section(decision, spec),
             *_front_section(layout, results, decision, spec),
             *resolution_section(rows, spec, {r.id: label(r) for r in rows}),
             *effects_section(rows, spec), *_stability_section(decision), *_results_section(rows, results, spec),
             *_latency_section(layout, latency), *portability_section(rows), *quantization_section(rows),
             *extra, *crops_section(crops), f"<script>{_SCRIPT}</script></body></html>"]
    return atomic_write(layout.report, "\n".join(parts))
