"""Report stage: the Pareto front of (deployed PSNR up, measured latency down) as CSV and a labelled plot."""
from pathlib import Path
from typing import List, Sequence, Tuple

from portable_deblur.rank import pareto_front
from portable_deblur.results import ResultRow, write_csv


def objectives(row: ResultRow, resolution: str) -> Tuple[float, float]:
    """(PSNR of the .tflite, median latency at ``resolution``) of a finished row."""
    return row.psnr_tflite, row.latency[resolution]["median_ms"]


def front_rows(rows: Sequence[ResultRow], resolution: str) -> Tuple[List[ResultRow], List[ResultRow]]:
    """(the ok rows, the Pareto-optimal ones sorted by latency)."""
    ok = [r for r in rows if r.status == "ok" and resolution in r.latency]
    front = [ok[i] for i in pareto_front([objectives(r, resolution) for r in ok])]
    return ok, sorted(front, key=lambda r: objectives(r, resolution)[1])


def plot_pareto(path: Path, rows: Sequence[ResultRow], front: Sequence[ResultRow], resolution: str) -> None:
    """Scatter of every candidate, front highlighted and joined, every point labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    front_ids = {r.id for r in front}
    for r in rows:
        x, y = objectives(r, resolution)[::-1]
        on = r.id in front_ids
        ax.scatter([x], [y], s=60 if on else 30, c="tab:red" if on else "tab:gray", zorder=3)
        ax.annotate(r.id.split("__", 1)[-1], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    if front:
        ax.plot([objectives(r, resolution)[1] for r in front], [r.psnr_tflite for r in front],
                c="tab:red", lw=1.2, label="Pareto front")
    if rows:
        ax.axhline(rows[0].psnr_blurry, c="tab:blue", ls="--", lw=1, label="blurry input")
    ax.set_xlabel(f"median latency at {resolution} (ms, LiteRT on this host)")
    ax.set_ylabel("PSNR of the .tflite on validation (dB)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(run_dir: Path, rows: Sequence[ResultRow], resolution: str) -> List[ResultRow]:
    """Write ``pareto.csv`` and ``pareto.png`` into ``run_dir``; return the front."""
    ok, front = front_rows(rows, resolution)
    write_csv(Path(run_dir) / "pareto.csv", [r.flat() for r in front])
    plot_pareto(Path(run_dir) / "pareto.png", ok, front, resolution)
    return front
