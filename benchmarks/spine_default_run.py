"""Benchmark: the default ``space=upsampling`` search, end to end, as a user runs it.

Runs the real command in a fresh process (fresh run directory), then prints the wall time, the time per
pipeline stage summed over candidates, the search overhead, each trial's steps and PSNR gain over the blurry
input on the embedded validation frames (held-out photos, 24-28 dB blurry) in each camera pipeline (sRGB
averaging as GoPro's ``blur`` set, linear light as REDS), and the front's candidates with their training
steps. Targets: wall time <= 10 minutes on 2 CPU cores; every candidate's .tflite above its blurry input in
both pipelines; search overhead -- everything but training, conversion and measurement (evaluation,
portability and the final interleaved re-timing count as measurement): process start, data generation, the
up-front candidate check, Optuna storage, reports -- <= 10 % of wall time.

    python benchmarks/spine_default_run.py [extra key=value overrides]
    python benchmarks/spine_default_run.py --tiny   # smoke scale in a temporary folder (targets not judged)
"""
import csv
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from portable_deblur.search.study import SearchStudy


def main(argv=None) -> int:
    from portable_deblur.config import load_config
    from portable_deblur.config.smoke import smoke_overrides, smoke_root, tiny_flag

    tiny, argv = tiny_flag(sys.argv[1:] if argv is None else argv)
    argv = [*smoke_overrides(smoke_root()), "grid.upsampler=[bilinear]", "grid.activation=[relu,prelu]", *argv] \
        if tiny else argv
    run_name = f"bench_spine_{time.strftime('%Y%m%d_%H%M%S')}"
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", f"run.name={run_name}", *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"search failed with exit {proc.returncode}")
        return 1
    run_dir = Path(load_config(["space=upsampling", *argv]).run.root) / run_name
    search = SearchStudy.load(str(run_dir))
    study = search.study
    rows = [row for t in study.get_trials() for row in t.user_attrs.get("rows", [])]
    ranked = {r.id: r for r in search.rows()}  # with the final paired re-timing: the figure the front ranks by
    stages = defaultdict(float)
    for row in rows:
        for stage, seconds in row["seconds"].items():
            stages[stage] += seconds
    stages["paired re-timing"] = study.user_attrs.get("interleaved_seconds", 0.0)
    stages["duels"] = study.user_attrs.get("duel_seconds", 0.0)
    overhead = wall - sum(stages.values())
    print(f"\nwall time: {wall:.0f} s ({wall / 60:.1f} min; target <= 10 min)")
    print("stage totals: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    print(f"search overhead (startup, data, candidate check, Optuna, reports): {overhead:.0f} s = "
          f"{100 * overhead / wall:.1f} % of wall time (target <= 10 %)")
    gains = defaultdict(list)
    for row in rows:
        ok = row["status"] == "ok"
        figures = {"ranked": (row["psnr_blurry"], row["psnr_tflite"]),
                   **{name: (f["psnr_blurry"], f["psnr_tflite"]) for name, f in row.get("pipelines", {}).items()}}
        for name, (blurry, tflite) in figures.items():
            gains[name].append(tflite - blurry if ok else float("-inf"))
        key = next(iter(row["latency"]), "-")
        ms = ranked[row["id"]].best_ms(key)
        per = ", ".join(f"{name} {tflite - blurry:+.3f}" for name, (blurry, tflite) in figures.items() if name != "ranked")
        print(f"  {row['id']:52} {row.get('steps', 0):5d} steps: blurry {row['psnr_blurry']:.2f} -> tflite "
              f"{row['psnr_tflite']:.3f} dB (gain {figures['ranked'][1] - figures['ranked'][0]:+.3f}; {per}), "
              f"{ms:.1f} ms @{key}, {row['status']}")
    print(f"validation blurry PSNR {rows[0]['psnr_blurry']:.2f} dB (target 24-28)")
    for name, values in gains.items():
        print(f"  gains ({name}): {min(values):+.3f} .. {max(values):+.3f} dB; every candidate beats its blurry "
              f"input: {all(g > 0 for g in values)}")
    with open(run_dir / "pareto.csv", newline="") as f:
        front = list(csv.DictReader(f))
    print("front: " + ", ".join(f"{r['id']} ({r['steps']} steps)" for r in front))
    return 0


if __name__ == "__main__":
    sys.exit(main())
