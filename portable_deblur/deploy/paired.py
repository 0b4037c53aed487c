"""Paired latency: files timed in alternation inside one process, so a slow window of the machine slows both
runs of a pair alike and cancels in their ratio.

A 2-core host slows in windows that no per-process counter shows: a file's runs took 13-27 % longer with no
run-queue wait at all, and a reference network timed in the same window slowed alike. The run-queue filter
(``deploy.measure``) catches queueing; pairing catches the rest. Three uses, one loop (``paired_ratios``):

- each trial's measurement: the artifact against the run's reference network (``deploy.measure``);
- ``interleaved``: every file competing for the front timed round-robin in one process, each against the
  reference (rounds rotated), which sets the ratios the front ranks by;
- ``duel``: two front neighbours whose intervals overlap, A/B/A/B until their ratio's interval excludes 1
  (ordered) or ``max_seconds`` pass (tied).

Run as ``python -m portable_deblur.deploy.paired`` (JSON on stdout) so the search process stays idle while it
times, as ``deploy.measure`` does.
"""
import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from portable_deblur.confidence import Interval, median_interval
from portable_deblur.deploy.timing import DISTURBED_WAIT, checked_run, set_timed_input

Run = Callable[[], Tuple[float, float, float]]  # one timed inference: (wall ms, run-queue wait share, CPU ms)


@dataclass(frozen=True)
class Pairs:
    """Alternated runs of ``a`` and ``b``: the pairs whose two runs were both undisturbed (or, when too few
    were, every pair), and the median ratio a/b with its interval."""

    a_ms: Tuple[float, ...]
    b_ms: Tuple[float, ...]
    ratio: Interval
    clean: int  # pairs with neither run queued
    total: int

    @property
    def a_median(self) -> float:
        return float(np.median(self.a_ms))

    @property
    def b_median(self) -> float:
        return float(np.median(self.b_ms))


def pairs_of(samples: Sequence[Tuple[Tuple[float, float, float], Tuple[float, float, float]]],
             level: float) -> Pairs:
    """``Pairs`` from (a run, b run) samples: a pair counts when neither of its runs waited for a CPU (another
    process took it); with fewer than three such pairs, the three least disturbed."""
    clean = [(a, b) for a, b in samples if a[1] <= DISTURBED_WAIT and b[1] <= DISTURBED_WAIT]
    used = clean if len(clean) >= 3 else sorted(samples, key=lambda s: max(s[0][1], s[1][1]))[:3]
    ratios = [a[0] / b[0] for a, b in used]
    return Pairs(tuple(a[0] for a, _ in used), tuple(b[0] for _, b in used), median_interval(ratios, level),
                 len(clean), len(samples))


def paired_ratios(run_a: Run, run_b: Run, pairs: int, max_seconds: float = float("inf"), level: float = 0.95,
                  stop: Optional[Callable[[Pairs], bool]] = None, check_every: int = 10) -> Pairs:
    """Time ``run_a`` then ``run_b``, ``pairs`` times (at least 3; fewer once ``max_seconds`` of timed runs have
    passed); with ``stop``, also end as soon as it holds for the pairs so far (checked every ``check_every``)."""
    samples, spent_ms = [], 0.0
    while len(samples) < max(pairs, 3):
        a, b = run_a(), run_b()
        samples.append((a, b))
        spent_ms += a[0] + b[0]
        if len(samples) >= 3 and spent_ms > 1000.0 * max_seconds:
            break
        if stop is not None and len(samples) % check_every == 0 and stop(pairs_of(samples, level)):
            break
    return pairs_of(samples, level)


def checked_runner(interpreter) -> Run:
    """One timed inference of a loaded interpreter (``deploy.timing.checked_run``)."""
    return lambda: checked_run(interpreter)


def _load(path, threads: int):
    from portable_deblur.deploy.runtime import load_interpreter

    interpreter = load_interpreter(path, threads)
    set_timed_input(interpreter)
    for _ in range(2):
        interpreter.invoke()
    return interpreter


@dataclass(frozen=True)
class Retimed:
    """One file of an ``interleaved`` re-timing: its median ratio to the reference with the interval, how
    many pairs (clean / all), and its own and the reference's median milliseconds in that process."""

    ratio: float
    ratio_low: float
    ratio_high: float
    pairs: int
    clean: int
    median_ms: float
    reference_ms: float


def interleaved(paths: Sequence[Path], reference: Path, threads: int, rounds: int, pairs_per_round: int = 5,
                max_seconds: float = float("inf"), level: float = 0.95) -> List[Retimed]:
    """Every file timed against ``reference`` in this one process, ``rounds`` times round-robin (the order
    rotated each round), ``pairs_per_round`` pairs a round; a file's timed runs stop after ``max_seconds``."""
    ref = checked_runner(_load(reference, threads))
    runners = [checked_runner(_load(p, threads)) for p in paths]
    samples: List[list] = [[] for _ in paths]
    spent = [0.0] * len(paths)
    for r in range(rounds):
        for i in [(j + r) % len(paths) for j in range(len(paths))]:
            if len(samples[i]) >= 3 and spent[i] > 1000.0 * max_seconds:
                continue
            for _ in range(pairs_per_round):
                a, b = runners[i](), ref()
                samples[i].append((a, b))
                spent[i] += a[0]
    out = []
    for s in samples:
        p = pairs_of(s, level)
        out.append(Retimed(p.ratio.estimate, p.ratio.low, p.ratio.high, len(p.a_ms), p.clean, p.a_median, p.b_median))
    return out


MIN_DUEL_PAIRS = 10  # undisturbed pairs before a duel may stop as ordered (fewer: the interval is their range)


def ordered(pairs: Pairs) -> bool:
    """Whether a duel may stop: at least ``MIN_DUEL_PAIRS`` undisturbed pairs, and the interval of a/b excludes 1."""
    return pairs.clean >= MIN_DUEL_PAIRS and not pairs.ratio.covers(1.0)


def duel(a: Path, b: Path, threads: int, max_seconds: float, level: float = 0.95) -> Pairs:
    """``a`` against ``b`` A/B/A/B until they are ``ordered`` or ``max_seconds`` of timed runs pass."""
    run_a, run_b = checked_runner(_load(a, threads)), checked_runner(_load(b, threads))
    return paired_ratios(run_a, run_b, pairs=10 ** 6, max_seconds=max_seconds, level=level, stop=ordered)


def in_subprocess(args: Sequence[str]) -> dict:
    """Run this module's CLI in a fresh process (the caller stays idle) and return its JSON."""
    proc = subprocess.run([sys.executable, "-m", "portable_deblur.deploy.paired", *map(str, args)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"paired timing {' '.join(map(str, args))} failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Paired LiteRT timings; prints JSON.")
    parser.add_argument("mode", choices=["interleaved", "duel"])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--reference", help="interleaved: the file each one is paired with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pairs-per-round", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--level", type=float, default=0.95)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.mode == "interleaved":
        out = [asdict(r) for r in interleaved(args.paths, args.reference, args.threads, args.rounds,
                                              args.pairs_per_round, args.max_seconds, args.level)]
    else:
        p = duel(args.paths[0], args.paths[1], args.threads, args.max_seconds, args.level)
        out = {"ratio": p.ratio.estimate, "low": p.ratio.low, "high": p.ratio.high, "pairs": len(p.a_ms),
               "clean": p.clean}
    print(json.dumps({"result": out, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
