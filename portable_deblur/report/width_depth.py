"""The width x depth table of a search that varies both (the thesis's Table 6.1 ablation): each network's
quality with its interval, what it gives up against the largest one (paired over the same frames), and its
measured latency with its interval -- from one elastic supernet when the run shares weights, every cell then
judged on the same training.

For NAFNet the thesis's own figures stand beside it for the trend (its Table 6.1: NAFNetLocal-C-N, trained
200K steps on GoPro, timed on a phone GPU). The extracted thesis text keeps the table's caption and these
figures from its prose: PSNR from 32.87 dB (32-36) down to 29.00 dB (8-9) and GPU time from 293 ms down to
19 ms; 16-18 is 1.72 dB below 32-36 and 8.37x faster on the GPU; 16-9 is 1.06 dB below 16-18 and 9 ms faster.
"""
from typing import Dict, List, Sequence

from portable_deblur.rank import Objectives, gain_interval, quality_difference
from portable_deblur.records import ResultRow, equally_trained

DEPTH_KEYS = ("enc_blocks", "middle_blocks", "dec_blocks")
# (width, NAFBlocks) -> (GoPro PSNR dB, phone GPU ms), as derived from the thesis's text (module docstring).
THESIS_TABLE_6_1 = {(32, 36): (32.87, 293.0), (16, 18): (round(32.87 - 1.72, 2), round(293 / 8.37, 1)),
                    (16, 9): (round(32.87 - 1.72 - 1.06, 2), round(293 / 8.37 - 9, 1)), (8, 9): (29.00, 19.0)}


def _token(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def width_depth_rows(rows: Sequence[ResultRow], spec: Objectives) -> List[Dict]:
    """One row per float network of the equally trained rows of the first rung (every candidate judged
    there), when they vary in width and in a depth key; empty otherwise."""
    base = equally_trained([r for r in rows if r.status == "ok" and r.optimization == "fp32" and r.rung == 0
                            and spec.latency in r.latency])
    depth = [k for k in DEPTH_KEYS if len({_token(r.values.get(k)) for r in base}) > 1]
    if len({r.values.get("width") for r in base}) < 2 or not depth:
        return []
    largest = max(base, key=lambda r: (r.macs, r.psnr_keras))
    out = []
    for r in sorted(base, key=lambda r: (r.values["width"], *(_token(r.values[k]) for k in depth), r.id)):
        out.append({"width": r.values["width"], **{k: _token(r.values[k]) for k in depth}, "candidate": r.id,
                    "gain_interval": gain_interval(r, spec).text("+.3f"),
                    "vs_largest_db": "-" if r is largest else quality_difference(r, largest, spec).text("+.3f"),
                    "ms_interval": r.latency_interval(spec.latency).text(".2f"), "gmac": r.macs / 1e9,
                    "params": r.params, "steps": f"{r.inherited_steps} shared + {r.steps} own"})
    return out


def width_depth_section(rows: Sequence[ResultRow], spec: Objectives) -> List[str]:
    """The report's width x depth section (HTML parts); empty unless the run varies width and depth."""
    from portable_deblur.report.table import html_table

    table = width_depth_rows(rows, spec)
    if not table:
        return []
    depth = [k for k in DEPTH_KEYS if k in table[0]]
    parts = [f"<h2>Width x depth</h2><p>Every network of the first rung, judged on the same training "
             f"({table[0]['steps']} steps). Gain over the blurry frames and the difference to the largest "
             f"network are paired over the same validation frames, latency at {spec.latency} is the paired "
             f"ratio to the reference network scaled back to ms; each with its {100 * spec.level:g} % interval. "
             f"A difference whose interval holds 0 is a tie.</p>",
             html_table(table, ["width", *depth, "candidate", "gain_interval", "vs_largest_db", "ms_interval",
                                "gmac", "params", "steps"], fmt={"gmac": ".2f"})]
    if all(r.arch == "nafnet" for r in rows if r.status == "ok"):
        thesis = [{"network": f"NAFNetLocal-{c}-{n}", "psnr_gopro": p, "gpu_ms": ms}
                  for (c, n), (p, ms) in THESIS_TABLE_6_1.items()]
        parts += ["<p>The thesis's Table 6.1 for the trend (NAFNetLocal-C-N: width C, N NAFBlocks; 200K steps on "
                  "GoPro at 256 px, a phone GPU; figures as its text gives them, 16-18 and 16-9 derived from its "
                  "stated differences). Absolute figures are not comparable with a laptop-scale run; the order "
                  "and the spacing are.</p>",
                  html_table(thesis, ["network", "psnr_gopro", "gpu_ms"], fmt={"psnr_gopro": ".2f", "gpu_ms": ".1f"})]
    return parts
