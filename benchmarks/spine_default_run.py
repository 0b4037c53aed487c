"""Benchmark: the default ``space=upsampling`` search, end to end, as a user runs it.

Runs the real command in a fresh process (fresh run directory), then prints the wall time, the time per
pipeline stage summed over candidates, and each candidate's PSNR gain over the blurry input.
Targets (issue 2): wall time <= 10 minutes on 2 CPU cores; every candidate >= +1.0 dB.

    python benchmarks/spine_default_run.py [extra key=value overrides]
"""
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path


def main() -> int:
    run_name = f"bench_spine_{time.strftime('%Y%m%d_%H%M%S')}"
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", f"run.name={run_name}", *sys.argv[1:]]
    start = time.perf_counter()
    proc = subprocess.run(cmd)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"search failed with exit {proc.returncode}")
        return 1
    latest = {}
    for line in (Path("experiments/runs") / run_name / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        latest[row["id"]] = row  # append-only file: the interleaved re-timing appends a newer row
    rows = list(latest.values())
    stages = defaultdict(float)
    for row in rows:
        for stage, seconds in row["seconds"].items():
            stages[stage] += seconds
    print(f"\nwall time: {wall:.0f} s ({wall / 60:.1f} min; target <= 10 min)")
    print("stage totals: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items())
          + f", other (startup, data, report) {wall - sum(stages.values()):.0f} s")
    gains = []
    for row in rows:
        gain = row["psnr_tflite"] - row["psnr_blurry"]
        gains.append(gain if row["status"] == "ok" else float("-inf"))
        key = next(iter(row["latency"]), "-")
        lat = row["latency"].get(key, {})
        ms = lat.get("interleaved_median_ms", lat.get("median_ms", float("nan")))
        print(f"  {row['id']:52} blurry {row['psnr_blurry']:.2f} -> tflite {row['psnr_tflite']:.2f} dB "
              f"(gain {gain:+.2f}), {ms:.1f} ms @{key}, {row['status']}")
    print(f"min gain {min(gains):+.2f} dB (target >= +1.0); all ok: {all(g >= 1.0 for g in gains)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
