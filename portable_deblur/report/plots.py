"""The report's plots and tables: the labelled Pareto plot, and latency against resolution (table + plot)."""
from pathlib import Path
from typing import List, Sequence

from portable_deblur.rank import Objectives
from portable_deblur.records import LatencyKey, ResultRow


def label(row: ResultRow) -> str:
    """Short point label: the searched values (``prelu / transpose``), or the arch if nothing was searched."""
    return " / ".join("-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                      for _, v in sorted(row.values.items())) or row.arch


_MARKERS = "osD^vP*X"


def plot_pareto(path: Path, rows: Sequence[ResultRow], front: Sequence[ResultRow], spec: Objectives,
                ax=None) -> None:
    """Scatter of every artifact -- colour = optimization, marker = family (arch) -- front circled and
    joined, every point labelled. Draws on ``ax`` when given (notebooks), else saves to ``path``."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    ax.margins(x=0.15)
    front_ids = {r.id for r in front}
    names = list(dict.fromkeys(r.optimization for r in rows))
    palette = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    colours = {o: palette(i % palette.N) for i, o in enumerate(names)}
    markers = {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(dict.fromkeys(r.arch for r in rows))}
    crowded = len(rows) > 12  # then only the front is labelled (every row is in the tables)
    unequal = len({r.training for r in rows}) > 1  # rungs: say how long each point was trained
    for r in rows:
        y, x = spec.values(r)[:2]
        ax.scatter([x], [y], s=36, color=colours[r.optimization], marker=markers[r.arch], zorder=3)
        if r.id in front_ids:
            ax.scatter([x], [y], s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
        if r.id in front_ids or not crowded:
            text = f"{label(r)} ({r.training_label})" if unequal else label(r)
            ax.annotate(text, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    latencies = [spec.values(r)[1] for r in rows]
    if latencies and min(latencies) > 0 and max(latencies) / min(latencies) > 20:
        ax.set_xscale("log")  # e.g. 16x8 on reference kernels, ~50x slower than fp32
    for name, colour in colours.items():
        ax.scatter([], [], color=colour, marker="o", label=name)
    if len(markers) > 1:
        for arch, marker in markers.items():
            ax.scatter([], [], c="gray", marker=marker, label=arch)
    if front:
        ax.plot([spec.values(r)[1] for r in front], [spec.values(r)[0] for r in front],
                c="black", lw=1.0, label="Pareto front (circled)")
    if rows:
        ax.axhline(rows[0].psnr_blurry, c="tab:blue", ls="--", lw=1, label="blurry input")
    ax.set_xlabel(f"median latency at {spec.latency} (ms; LiteRT on this host, HxW_t<threads>)")
    ax.set_ylabel(f"PSNR of the {'.tflite' if spec.psnr == 'tflite' else 'Keras model'} on validation (dB)")
    ax.grid(alpha=0.3)
    if rows and not unequal:
        ax.set_title(f"every point trained {rows[0].training_label}", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7, ncol=2 if len(colours) > 8 else 1)
    if fig is not None:
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


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
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
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
        plt.close(fig)
