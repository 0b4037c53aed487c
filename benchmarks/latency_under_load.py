"""Benchmark: is the decision the same on a quiet and a busy machine? Default searches, some beside a load.

1. The default search run several times on this machine (``--runs quiet quiet load``: each ``load`` run has
   another process keep one core busy ``--busy`` of every second, bounded: it stops with the search, or after
   ``--max-load-s``), or runs made before (``--reuse DIR ...``).
2. After each run, its competing ``.tflite`` files timed in isolation, round-robin in one plain process
   (LiteRT interpreter, 15 rounds x 5 runs, medians): the quiet-machine figure.

Prints, per run: its wall time and what the intervals cost (the final paired re-timing and the duels); per
file, the ranked figure with its interval against the isolated one; whether every ranked figure is within
5 % of it; the twin check (a PReLU network has every op of its ReLU twin plus PRELU: the ReLU file must not
rank slower beyond the intervals); then the tie groups and the recommendation of every run side by side.
Goals: every ranked figure within 5 %, no twin inverted beyond the intervals, the same front, tie groups and
choice in every run.

    python benchmarks/latency_under_load.py [--runs quiet quiet load] [--busy 0.5] [key=value overrides]
    python benchmarks/latency_under_load.py --tiny [--reuse DIR]   # smoke scale: one loaded run, or DIR judged
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


def search(name: str, overrides) -> float:
    """Run the default search in a fresh process; its wall seconds."""
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", f"run.name={name}", *overrides]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def quiet_timing(paths, threads: int = 2, rounds: int = 15, runs: int = 5) -> list:
    """Median ms per file, timed round-robin in this process (order rotated each round)."""
    from portable_deblur.deploy.runtime import load_interpreter
    from portable_deblur.deploy.timing import invoke_ms, set_timed_input

    interpreters = [load_interpreter(p, threads) for p in paths]
    for it in interpreters:
        set_timed_input(it)
        for _ in range(3):
            it.invoke()
    times = [[] for _ in paths]
    for r in range(rounds):
        for i in [(j + r) % len(paths) for j in range(len(paths))]:
            times[i] += [invoke_ms(interpreters[i]) for _ in range(runs)]
    return [float(np.median(t)) for t in times]


def one_run(kind: str, run_dir: Path, overrides, busy: float, max_load_s: float) -> dict:
    """Run (or reuse) one search; its study, wall seconds and the isolated timing of its competing files."""
    from portable_deblur.search.study import SearchStudy

    name = run_dir.name
    wall = float("nan")
    if kind != "reuse":
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(busy), str(max_load_s)]) if kind == "load" else None
        try:
            wall = search(name, overrides)
        finally:
            if load is not None:
                load.kill()
    study = SearchStudy.load(str(run_dir))
    return {"name": name, "kind": kind, "wall": wall, "study": study}


def report_run(run: dict) -> dict:
    """Print one run's figures against its isolated timing; return what the side-by-side needs."""
    from portable_deblur.decision import decide
    from portable_deblur.rank import Objectives, competing
    from portable_deblur.search import attrs
    from portable_deblur.search.settle import file_at

    study = run["study"]
    spec = Objectives.of(study.cfg)
    _, rows = competing(study.rows(), spec)
    rows = sorted(rows, key=lambda r: r.id)
    isolated = quiet_timing([study.layout / file_at(r, spec.latency) for r in rows], threads=int(spec.latency.split("_t")[1]))
    settle_s = study.study.user_attrs.get(attrs.INTERLEAVED_SECONDS, 0.0)
    duel_s = study.study.user_attrs.get(attrs.DUEL_SECONDS, 0.0)
    print(f"\n{run['name']} ({run['kind']}): wall {run['wall']:.0f} s; the intervals cost {settle_s:.1f} s of paired "
          f"re-timing + {duel_s:.1f} s of duels")
    ratios = []
    for r, quiet in zip(rows, isolated):
        ms = r.latency_interval(spec.latency)
        ratios.append(ms.estimate / quiet)
        print(f"  {r.id:52} ranked {ms.text('.2f')}  isolated {quiet:6.2f}  ({ms.estimate / quiet:.3f}x); trial "
              f"median {r.latency[spec.latency]['median_ms']:.2f}")
    print(f"  every ranked figure within 5 % of the isolated one: {bool(np.all(np.abs(np.array(ratios) - 1) <= 0.05))} "
          f"({min(ratios):.3f}-{max(ratios):.3f}x)")
    by_id = {r.id: r for r in rows}
    for r in rows:
        twin = r.id.replace("activation-prelu", "activation-relu")
        if "activation-prelu" in r.id and twin in by_id:
            relu, prelu = by_id[twin].latency_interval(spec.latency), r.latency_interval(spec.latency)
            inverted = relu.low > prelu.high
            print(f"  twin {twin.split('__')[-1]}: ReLU {relu.text('.2f')} vs PReLU {prelu.text('.2f')}: "
                  f"{'INVERTED beyond the intervals' if inverted else 'ok'}")
    decision = decide(study.rows(), spec, study.cfg.rank.resamples)
    return {"front": sorted(r.id for r in decision.front), "ties": decision.ties, "lines": decision.lines}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["quiet", "quiet", "load"], choices=["quiet", "load"])
    parser.add_argument("--reuse", nargs="*", default=[], help="run directories made before, judged the same way")
    parser.add_argument("--busy", type=float, default=0.5)
    parser.add_argument("--max-load-s", type=float, default=1800)
    from portable_deblur.config import load_config
    from portable_deblur.config.smoke import smoke_overrides, smoke_root, tiny_flag

    tiny, argv = tiny_flag(sys.argv[1:] if argv is None else argv)
    args, overrides = parser.parse_known_args(argv)
    if tiny:  # one loaded smoke run unless runs to judge are given
        overrides = [*smoke_overrides(smoke_root()), *overrides]
        args.runs = [] if args.reuse and "--runs" not in argv else (args.runs if "--runs" in argv else ["load"])
        args.max_load_s = min(args.max_load_s, 120)
    root = Path(load_config(["space=upsampling", *overrides]).run.root)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    runs = [one_run("reuse", Path(d), overrides, 0, 0) for d in args.reuse]
    runs += [one_run(kind, root / f"bench_decision_{kind}{i}_{stamp}", overrides, args.busy, args.max_load_s)
             for i, kind in enumerate(args.runs)]
    judged = [report_run(run) for run in runs]
    print("\nside by side:")
    for run, j in zip(runs, judged):
        print(f"  {run['name']} ({run['kind']}): front {j['front']}; tie groups {[list(g) for g in j['ties']]}")
        for line in j["lines"]:
            print(f"      {line}")
    same = all(j["front"] == judged[0]["front"] and j["ties"] == judged[0]["ties"] for j in judged)
    print(f"  the same front and tie groups in every run: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
