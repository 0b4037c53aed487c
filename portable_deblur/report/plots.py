"""The report's plots and tables: the labelled Pareto plot, and latency against resolution (table + plot)."""
from pathlib import Path
from typing import List, Sequence

from portable_deblur.decision import label
from portable_deblur.rank import Objectives
from portable_deblur.records import ResultRow
from portable_deblur.latency import LatencyKey


_MARKERS = "osD^vP*X"


def spread_labels(ys: Sequence[float], gap: float) -> List[float]:
    """Label heights (axes fraction) for points at ``ys``, in the same order, at least ``gap`` apart and within
    [0, 1]: each label as near its point as the others allow, so no two labels overlap."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed: List[float] = []
    for i in order:
        placed.append(max(ys[i], placed[-1] + gap) if placed else max(ys[i], 0.0))
    overflow = (placed[-1] - 1.0) if placed else 0.0
    if overflow > 0:  # push the column down from the top, keeping the gaps
        placed = [p - overflow for p in placed]
        for k in range(len(placed) - 2, -1, -1):
            placed[k] = min(placed[k], placed[k + 1] - gap)
    out = [0.0] * len(ys)
    for rank, i in enumerate(order):
        out[i] = placed[rank]
    return out


def _against(row: ResultRow, anchor: ResultRow, spec: Objectives):
    """``row``'s PSNR minus ``anchor``'s, paired over the frames, with its interval (``rank.quality_difference``)."""
    from portable_deblur.rank import quality_difference

    return quality_difference(row, anchor, spec)


def plot_pareto(path: Path, rows: Sequence[ResultRow], front: Sequence[ResultRow], spec: Objectives,
                ax=None) -> None:
    """Every artifact's PSNR against its ranked latency, both with the intervals the front is judged by as
    error bars: PSNR as the difference to the fastest front point, paired over the validation frames (so a
    frame's difficulty, shared by every point, does not widen the bars), latency as its ranked interval --
    colour = optimization, marker = family (arch) -- front circled and joined. The axes fit the points (the
    anchor's own gain over the blurry input is a note, not the floor) and the labels stand in a column beside
    the plot, each joined to its point, so none overlap. Draws on ``ax`` when given (notebooks), else saves
    to ``path`` (a bare matplotlib Figure: no pyplot state, no display needed)."""
    fig = None
    if ax is None:
        fig = _figure((11, 5.5))
        ax = fig.add_axes([0.1, 0.1, 0.62, 0.8])
    anchor = min(front or rows, key=lambda r: r.latency_interval(spec.latency).estimate) if rows else None
    colours, markers = _styles(rows)
    points = _draw_points(ax, rows, front, spec, anchor, colours, markers)
    latencies = [r.latency_interval(spec.latency).estimate for r in rows]
    if latencies and min(latencies) > 0 and max(latencies) / min(latencies) > 20:
        ax.set_xscale("log")  # e.g. 16x8 on reference kernels, ~50x slower than fp32
    ax.margins(x=0.08, y=0.12)
    if front:
        line = sorted(((r.latency_interval(spec.latency).estimate, _against(r, anchor, spec).estimate) for r in front))
        ax.plot(*zip(*line), c="black", lw=1.0, label="Pareto front (circled)")
    for name, colour in colours.items():
        ax.scatter([], [], color=colour, marker="o", label=name)
    if len(markers) > 1:
        for arch, marker in markers.items():
            ax.scatter([], [], c="gray", marker=marker, label=arch)
    _label_column(ax, points)
    _axes_text(ax, rows, spec, anchor)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7, ncol=2 if len(colours) > 8 else 1)
    if fig is not None:
        fig.savefig(path)


def _figure(size):
    """A matplotlib Figure drawn off-screen (Agg through ``savefig``), owned by the caller alone."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=120)


def _styles(rows: Sequence[ResultRow]):
    """(colour per optimization, marker per family)."""
    from matplotlib import colormaps

    names = list(dict.fromkeys(r.optimization for r in rows))
    palette = colormaps["tab20" if len(names) > 10 else "tab10"]
    colours = {o: palette(i % palette.N) for i, o in enumerate(names)}
    return colours, {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(dict.fromkeys(r.arch for r in rows))}


def _draw_points(ax, rows, front, spec: Objectives, anchor, colours, markers) -> list:
    """Each row's point with both error bars, the front's circled; returns the (x, y, label) to write."""
    front_ids = {r.id for r in front}
    crowded = len(rows) > 12  # then only the front is labelled (every row is in the tables)
    unequal = len({r.training for r in rows}) > 1  # rungs: say how long each point was trained
    points = []
    for r in rows:
        gain, ms = _against(r, anchor, spec), r.latency_interval(spec.latency)
        ax.errorbar([ms.estimate], [gain.estimate], xerr=[[ms.estimate - ms.low], [ms.high - ms.estimate]],
                    yerr=[[gain.estimate - gain.low], [gain.high - gain.estimate]], fmt=markers[r.arch],
                    color=colours[r.optimization], ms=6, capsize=2, lw=0.8, zorder=3)
        if r.id in front_ids:
            ax.scatter([ms.estimate], [gain.estimate], s=140, facecolors="none", edgecolors="black", linewidths=1.2,
                       zorder=4)
        if r.id in front_ids or not crowded:
            points.append((ms.estimate, gain.estimate, f"{label(r)} ({r.training_label})" if unequal else label(r)))
    return points


def _axes_text(ax, rows, spec: Objectives, anchor) -> None:
    """Axis labels, the quality margin's band, and the title: how the points were trained, the anchor's gain."""
    ax.set_xlabel(f"latency at {spec.latency} (ms; LiteRT on this host; {100 * spec.level:g} % interval)")
    ax.set_ylabel(f"PSNR - {label(anchor) if anchor else ''}'s\n(dB, paired over the frames; "
                  f"{100 * spec.level:g} %)")
    if spec.quality_margin_db and anchor is not None:
        ax.axhspan(-spec.quality_margin_db, spec.quality_margin_db, color="0.92", zorder=0,
                   label=f"within {spec.quality_margin_db:g} dB: a tie")
    ax.grid(alpha=0.3)
    gain = (f"{label(anchor)}: {anchor.ranked_psnr(spec.psnr):.2f} dB, {anchor.psnr_gain:+.2f} dB over the "
            f"blurry input ({anchor.psnr_blurry:.2f} dB)") if anchor else ""
    unequal = len({r.training for r in rows}) > 1
    trained = f"every point trained {rows[0].training_label}; " if rows and not unequal else ""
    ax.set_title(f"{trained}{gain}", fontsize=8)


def _label_column(ax, points) -> None:
    """Each (x, y, text) labelled in a column right of the axes, at heights ``spread_labels`` keeps apart."""
    if not points:
        return
    to_axes = ax.transData + ax.transAxes.inverted()
    ys = [to_axes.transform((x, y))[1] for x, y, _ in points]
    for (x, y, text), height in zip(points, spread_labels(ys, 0.055)):
        ax.annotate(text, (x, y), xytext=(1.03, height), textcoords="axes fraction", fontsize=7, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})


def latency_table(rows: Sequence[ResultRow]) -> List[dict]:
    """Latency per candidate, resolution and threads, with the pixel-scaling exponent of each
    (candidate, threads) series."""
    from portable_deblur.deploy.measure import scaling_exponent

    series: dict = {}
    for r in (r for r in rows if r.status == "ok"):
        for key, lat in r.latency.items():
            k = LatencyKey.parse(key)
            series.setdefault((r.id, k.threads), []).append(
                {"id": r.id, "resolution": f"{k.height}x{k.width}", "threads": k.threads, "pixels": k.pixels,
                 "median_ms": lat["median_ms"], "p90_ms": lat["p90_ms"], "cv": lat["cv"],
                 "peak_rss_mb": lat["peak_rss_mb"], "padded_to": lat.get("padded_to", "")})
    table = []
    for points in series.values():
        k = scaling_exponent([p["pixels"] for p in points], [p["median_ms"] for p in points])
        table.extend({**p, "scaling_exponent": k} for p in points)
    return table


def plot_latency_vs_resolution(path: Path, table: Sequence[dict], ax=None) -> None:
    """Latency against pixels per candidate (log-log), as the MediaTek paper's Figure 4. Draws on ``ax``
    when given (notebooks), else saves to ``path``."""
    fig = None
    if ax is None:
        fig = _figure((8, 5))
        ax = fig.add_subplot()
    for (cid, threads) in dict.fromkeys((t["id"], t["threads"]) for t in table):
        points = [t for t in table if t["id"] == cid and t["threads"] == threads]
        pts = sorted((t["pixels"], t["median_ms"]) for t in points)
        ax.plot(*zip(*pts), marker="o", label=f"{cid.split('__', 1)[-1]} t{threads} (k={points[0]['scaling_exponent']:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input pixels")
    ax.set_ylabel("median latency (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    if fig is not None:
        fig.tight_layout()
        fig.savefig(path)
