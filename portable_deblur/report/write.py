"""Report stage: everything a run writes for the people deciding what ships, from its result rows."""
from typing import List, Optional, Sequence

from portable_deblur.layout import RunLayout
from portable_deblur.rank import Objectives, front_rows
from portable_deblur.records import ResultRow, write_csv
from portable_deblur.report.html import visual_crops, write_html
from portable_deblur.report.rungs import rungs_section
from portable_deblur.report.sharing import sharing_section
from portable_deblur.report.plots import latency_table, plot_latency_vs_resolution, plot_pareto


def write_report(layout: RunLayout, rows: Sequence[ResultRow], spec: Objectives, val_pairs=(),
                 title: str = "", history: Sequence[ResultRow] = (), rungs: Sequence[int] = (),
                 full_front_ids: Optional[Sequence[str]] = None) -> List[ResultRow]:
    """Write the Pareto front (CSV, PNG), latency-vs-resolution table and plot, visual crops of the front
    on ``val_pairs``, and ``report.html`` tying them together; return the front. With ``rungs``, the report
    also judges the rungs from ``history`` (every rung's rows) and, given a full run's front, what they
    dropped (``report.rungs``)."""
    ok, front = front_rows(rows, spec)
    write_csv(layout.pareto_csv, [r.flat() for r in front])
    plot_pareto(layout.pareto_png, ok, front, spec)
    table = latency_table(rows)
    if len({t["resolution"] for t in table}) < 2:
        table = []  # one resolution has no slope to show: no plot, no table, no exponent
    if table:
        write_csv(layout.latency_csv, table)
        plot_latency_vs_resolution(layout.latency_png, table)
    crops = visual_crops(layout, front, val_pairs) if val_pairs else []
    write_html(layout, rows, front, spec, table, crops, title,
               sharing_section(rows) + rungs_section(history, spec, rungs, full_front_ids))
    return front
