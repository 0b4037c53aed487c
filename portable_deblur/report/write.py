"""Report stage: everything a run writes for the people deciding what ships, from its result rows."""
from typing import Optional, Sequence

from portable_deblur.decision import Decision, decide
from portable_deblur.layout import RunLayout
from portable_deblur.rank import Objectives, front_rows
from portable_deblur.records import ResultRow, write_csv
from portable_deblur.report.crops import visual_crops
from portable_deblur.report.html import write_html
from portable_deblur.report.rungs import rungs_section
from portable_deblur.report.sharing import sharing_section
from portable_deblur.report.width_depth import width_depth_section
from portable_deblur.report.plots import latency_table, plot_latency_vs_resolution, plot_pareto


def front_table(decision: Decision, spec: Objectives):
    """``pareto.csv``'s rows: each front row's CSV fields, its tie group and its ranked intervals."""
    out = []
    for r in decision.front:
        ms = r.latency_interval(spec.latency)
        out.append({**r.flat(), "tie_group": decision.group_of(r.id), "ranked_ms": ms.estimate,
                    "ranked_low_ms": ms.low, "ranked_high_ms": ms.high})
    return out


def write_report(layout: RunLayout, rows: Sequence[ResultRow], spec: Objectives, val_pairs=(),
                 title: str = "", history: Sequence[ResultRow] = (), rungs: Sequence[int] = (),
                 full_front_ids: Optional[Sequence[str]] = None, resamples: int = 200) -> Decision:
    """Write the Pareto front (CSV, PNG) with its tie groups, the ranking's stability over frame resamples,
    the latency-vs-resolution table and plot, visual crops of the front on ``val_pairs``, and ``report.html``
    tying them together; return the run's ``Decision``. With ``rungs``, the report also judges the rungs
    from ``history`` (every rung's rows) and, given a full run's front, what they dropped (``report.rungs``)."""
    decision = decide(rows, spec, resamples)
    ok, _ = front_rows(rows, spec)
    write_csv(layout.pareto_csv, front_table(decision, spec))
    write_csv(layout.stability_csv, list(decision.stability))
    plot_pareto(layout.pareto_png, ok, list(decision.front), spec)
    table = latency_table(rows)
    if len({t["resolution"] for t in table}) < 2:
        table = []  # one resolution has no slope to show: no plot, no table, no exponent
    if table:
        write_csv(layout.latency_csv, table)
        plot_latency_vs_resolution(layout.latency_png, table)
    crops = visual_crops(layout, decision.front, val_pairs) if val_pairs else []
    write_html(layout, rows, decision, spec, table, crops, title,
               width_depth_section(history or rows, spec) + sharing_section(rows)
               + rungs_section(history, spec, rungs, full_front_ids))
    return decision
