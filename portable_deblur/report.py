"""Report stage: the Pareto front of (deployed PSNR up, measured latency down) as CSV and a labelled plot."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from portable_deblur.rank import pareto_front
from portable_deblur import results
from portable_deblur.results import ResultRow, write_csv


@dataclass(frozen=True)
class Objectives:
    """What the front ranks: PSNR (``tflite`` or ``keras``, maximised) and the median latency at ``latency``
    (minimised)[, the accelerator MAC fraction on ``target``, maximised]; constraints keep rows off it."""

    latency: str
    psnr: str = "tflite"
    target: Optional[str] = None
    max_latency_ms: Optional[float] = None

    @classmethod
    def of(cls, cfg) -> "Objectives":
        from portable_deblur.results import latency_key

        key = cfg.search.latency or latency_key(cfg.measure.shapes[0], cfg.measure.threads[0])
        return cls(key, cfg.search.psnr, cfg.portability.objective, cfg.search.max_latency_ms)

    @property
    def maximize(self) -> Tuple[bool, ...]:
        return (True, False, True) if self.target else (True, False)

    def values(self, row: ResultRow) -> Tuple[float, ...]:
        """The objective values of ``row``; the interleaved re-measurement is preferred when there is one."""
        lat = row.latency[self.latency]
        base = (getattr(row, f"psnr_{self.psnr}"), lat.get("interleaved_median_ms", lat["median_ms"]))
        return base + ((row.portability[self.target]["accelerator_mac_fraction"],) if self.target else ())

    def constraints(self, row: ResultRow) -> Dict[str, float]:
        """Optuna constraints (feasible when every value is <= 0): required targets the row falls back on
        (``portability.on_violation=flag``), and latency over ``search.max_latency_ms``."""
        out = {"required_targets_missed": float(len(row.violations))}
        if self.max_latency_ms is not None:
            out["latency_over_budget_ms"] = self.values(row)[1] - self.max_latency_ms
        return out


def front_rows(rows: Sequence[ResultRow], spec: Objectives) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, the feasible Pareto-optimal ones sorted by latency)."""
    ok = [r for r in rows if r.status == "ok" and spec.latency in r.latency]
    feasible = [r for r in ok if all(c <= 0 for c in spec.constraints(r).values())]
    front = [feasible[i] for i in pareto_front([spec.values(r) for r in feasible], spec.maximize)]
    return ok, sorted(front, key=lambda r: spec.values(r)[1])


def label(row: ResultRow) -> str:
    """Short point label: the searched values (``prelu / transpose``), or the arch if nothing was searched."""
    return " / ".join("-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                      for _, v in sorted(row.values.items())) or row.arch


def optimization(row: ResultRow) -> str:
    """The row's optimization label (``results.optimization``)."""
    return results.optimization(row.values)


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
    names = list(dict.fromkeys(optimization(r) for r in rows))
    palette = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    colours = {o: palette(i % palette.N) for i, o in enumerate(names)}
    markers = {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(dict.fromkeys(r.arch for r in rows))}
    crowded = len(rows) > 12  # then only the front is labelled (every row is in the tables)
    for r in rows:
        y, x = spec.values(r)[:2]
        ax.scatter([x], [y], s=36, color=colours[optimization(r)], marker=markers[r.arch], zorder=3)
        if r.id in front_ids:
            ax.scatter([x], [y], s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
        if r.id in front_ids or not crowded:
            ax.annotate(label(r), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7, ncol=2 if len(colours) > 8 else 1)
    if fig is not None:
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def latency_table(rows: Sequence[ResultRow]) -> List[dict]:
    """Latency per candidate, resolution and threads, with the pixel-scaling exponent of each
    (candidate, threads) series."""
    from portable_deblur.measure import scaling_exponent

    series: dict = {}
    for r in (r for r in rows if r.status == "ok"):
        for key, lat in r.latency.items():
            res, threads = key.rsplit("_t", 1)
            h, w = map(int, res.split("x"))
            series.setdefault((r.id, int(threads)), []).append(
                {"id": r.id, "resolution": res, "threads": int(threads), "pixels": h * w,
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


def write_report(run_dir: Path, rows: Sequence[ResultRow], spec: Objectives, val_pairs=(),
                 title: str = "") -> List[ResultRow]:
    """Write the Pareto front (CSV, PNG), latency-vs-resolution table and plot, visual crops of the front
    on ``val_pairs``, and ``report.html`` tying them together; return the front."""
    from portable_deblur.report_html import visual_crops, write_html

    ok, front = front_rows(rows, spec)
    write_csv(Path(run_dir) / "pareto.csv", [r.flat() for r in front])
    plot_pareto(Path(run_dir) / "pareto.png", ok, front, spec)
    table = latency_table(rows)
    if table:
        write_csv(Path(run_dir) / "latency_vs_resolution.csv", table)
        plot_latency_vs_resolution(Path(run_dir) / "latency_vs_resolution.png", table)
    crops = visual_crops(Path(run_dir), front, val_pairs) if val_pairs else []
    write_html(Path(run_dir), rows, front, spec, table, crops, title)
    return front
