"""Benchmark: does the latency axis survive a busy machine? A default search beside a deliberate CPU load.

1. A quiet default search (or ``--quiet-run <run dir>``: one made before on this machine).
2. The same search while another process keeps one core busy ``--busy`` of every second (bounded: it stops
   with the search, or after ``--max-load-s``).
3. The loaded run's primary ``.tflite`` files timed afterwards in isolation, round-robin in one plain process
   (LiteRT interpreter, 2 threads, 15 rounds x 5 runs, medians): the quiet-machine figure.

Prints, per file, each candidate figure against the quiet one -- the trial median (undisturbed runs), the
reference-scaled figure, the CPU time per inference, and the figure the study and report rank by
(``records.best_ms``) -- with Kendall tau of each order against the quiet order; the twin check (a PReLU network
has every op of its ReLU twin plus PRELU: it must not measure faster beyond the spread); which networks each
run promoted to the top rung; and the idle share, other processes' CPU and disturbed measurements recorded.
Goals: every ranked figure within 10 % of the quiet one, tau >= 0.8, no twin inverted, the same promotions.

    python benchmarks/latency_under_load.py [--quiet-run DIR] [--busy 0.5] [key=value overrides]
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LOAD = """
import sys, time
busy, stop = float(sys.argv[1]), time.time() + float(sys.argv[2])
while time.time() < stop:
    start = time.time()
    while time.time() - start < busy:
        pass
    time.sleep(max(0.0, 1.0 - busy))
"""


def search(name: str, overrides) -> Path:
    """Run the default search in a fresh process; its run directory."""
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", f"run.name={name}", *overrides]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return Path("experiments/runs") / name


def quiet_timing(paths, threads: int = 2, rounds: int = 15, runs: int = 5) -> list:
    """Median ms per file, timed round-robin in this process (order rotated each round)."""
    from portable_deblur.deploy.measure import _invoke_ms, _timed_input
    from portable_deblur.deploy.runtime import load_interpreter

    interpreters = [load_interpreter(p, threads) for p in paths]
    for it in interpreters:
        _timed_input(it)
        for _ in range(3):
            it.invoke()
    times = [[] for _ in paths]
    for r in range(rounds):
        for i in [(j + r) % len(paths) for j in range(len(paths))]:
            times[i] += [_invoke_ms(interpreters[i]) for _ in range(runs)]
    return [float(np.median(t)) for t in times]


def promoted(study) -> dict:
    """Rung -> the candidate ids trained at that rung (rung 0: all)."""
    out = {}
    for r in study.store.history():
        if r.optimization == "fp32" and r.status == "ok":
            out.setdefault(r.rung, set()).add(r.id)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet-run")
    parser.add_argument("--busy", type=float, default=0.5)
    parser.add_argument("--max-load-s", type=float, default=1800)
    args, overrides = parser.parse_known_args(argv)
    from scipy.stats import kendalltau

    from portable_deblur.config import load_config
    from portable_deblur.records import best_ms
    from portable_deblur.search.study import SearchStudy

    stamp = time.strftime("%Y%m%d_%H%M%S")
    quiet_dir = Path(args.quiet_run) if args.quiet_run else search(f"bench_latency_quiet_{stamp}", overrides)
    load = subprocess.Popen([sys.executable, "-c", LOAD, str(args.busy), str(args.max_load_s)])
    try:
        loaded_dir = search(f"bench_latency_load_{stamp}", overrides)
    finally:
        load.kill()
    loaded, quiet = SearchStudy.load(str(loaded_dir)), SearchStudy.load(str(quiet_dir))
    key = load_config(["space=upsampling", *overrides]).search.latency or next(
        iter(next(r for r in loaded.rows() if r.status == "ok").latency))
    rows = sorted((r for r in loaded.rows() if r.status == "ok" and r.optimization == "fp32"), key=lambda r: r.id)
    isolated = quiet_timing([loaded.layout / r.artifacts["primary"] for r in rows], threads=int(key.split("_t")[1]))
    figures = {
        "trial median (undisturbed runs)": [r.latency[key]["median_ms"] for r in rows],
        "reference-scaled": [r.latency[key].get("stable_ms") or np.nan for r in rows],
        "CPU ms / threads": [(r.latency[key].get("cpu_ms") or np.nan) / int(key.split("_t")[1]) for r in rows],
        "interleaved re-timing": [r.latency[key].get("interleaved_median_ms") or np.nan for r in rows],
        "ranked by (best_ms)": [best_ms(r.latency[key]) for r in rows],
    }
    print(f"\nunder a {args.busy:.0%} load on one core, {key}; quiet = the same files timed afterwards in isolation")
    print(f"  {'network':48} {'quiet':>7} " + " ".join(f"{name[:14]:>15}" for name in figures))
    for i, r in enumerate(rows):
        print(f"  {r.id:48} {isolated[i]:7.2f} "
              + " ".join(f"{v[i]:7.2f} ({v[i] / isolated[i]:4.2f})" for v in figures.values()))
    for name, values in figures.items():
        ratio = np.array(values) / np.array(isolated)
        tau = kendalltau(values, isolated).statistic if np.isfinite(values).all() else float("nan")
        print(f"  {name:32}: ratio {np.nanmin(ratio):.2f}-{np.nanmax(ratio):.2f}, within 10 %: "
              f"{bool(np.all(np.abs(ratio - 1) <= 0.10))}, Kendall tau vs quiet {tau:+.2f}")
    ranked = dict(zip((r.id for r in rows), figures["ranked by (best_ms)"]))
    for r in rows:
        if "activation-prelu" in r.id:
            twin = r.id.replace("activation-prelu", "activation-relu")
            if twin in ranked:
                spread = r.latency[key].get("cv", 0.0) * ranked[r.id]
                verdict = "INVERTED" if ranked[r.id] < ranked[twin] - spread else "ok"
                print(f"  twin {twin} {ranked[twin]:.2f} ms vs PReLU {ranked[r.id]:.2f} ms (spread "
                      f"{spread:.2f}): {verdict}")
    here, there = promoted(loaded), promoted(quiet)
    for rung in sorted(set(here) | set(there)):
        print(f"  rung {rung}: loaded {sorted(here.get(rung, ()))} | quiet {sorted(there.get(rung, ()))}: "
              f"{'same' if here.get(rung) == there.get(rung) else 'DIFFERENT'}")
    lat = [r.latency[key] for r in loaded.store.history() if key in r.latency]
    idle = [v["idle_share"] for v in lat if v.get("idle_share") is not None]
    others = [v["others_cpu"] for v in lat if v.get("others_cpu") is not None]
    parent = [v["parent_cpu"] for v in lat if v.get("parent_cpu") is not None]
    print(f"  {len(lat)} measurements under load: idle share {min(idle):.2f}-{max(idle):.2f} (median "
          f"{np.median(idle):.2f}), other processes {np.median(others):.2f} cores (median), the search process "
          f"{np.max(parent):.3f} cores at most while a child measured; retried "
          f"{sum((v.get('attempts') or 1) > 1 for v in lat)}, flagged disturbed {sum(bool(v.get('disturbed')) for v in lat)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
