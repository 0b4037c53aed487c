"""Measure stage: latency and memory of a ``.tflite``, in a fresh subprocess (or on a phone over adb).

Locally each artifact is timed in its own process (``python -m portable_deblur.deploy.measure``) so one model's
allocator and thread-pool state cannot leak into another's numbers, and the child's peak RSS is the
artifact's own. Timing noise on shared machines can reach 2x between windows, so we report median, p90
and spread (CV), never a single run. ``backend=adb`` runs TFLite's ``benchmark_model`` on a phone
(``deploy.adb``).

A busy machine inflates wall times unevenly: on 2 cores a 2-thread inference needs both, and another process
running part of the time made a default run's figures 1.15-1.39x too high and misordered them. So every timed
run is checked for disturbance: the time its threads spent runnable but waiting for a CPU (the kernel's
per-thread run-queue wait, ``/proc/self/task/*/schedstat``, in ns). A run whose threads waited more than
``DISTURBED_WAIT`` of its wall time is disturbed; the figures are the undisturbed runs'. Too few of them and
the runs are repeated after a pause (``measure.retries``); still too few and the result is flagged with the
reason (``disturbed``). Each measurement also records the machine's idle share and the other processes' CPU
use over its window (``/proc/stat``), the CPU time per inference, and, in the search process that waits for
the child, how much CPU that parent used meanwhile (it should be idle: no spinning thread pools).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from portable_deblur.deploy.paired import pairs_of
from portable_deblur.deploy.adb import measure_adb
from portable_deblur.deploy.timing import DISTURBED_WAIT, Latency, checked_run, set_timed_input


def _peak_rss_mb() -> float:
    """This process's resident-set high-water mark in MiB.

    Read from /proc (VmHWM), which starts afresh at exec: getrusage's ru_maxrss survives execve, so a
    child forked from a 1 GB TensorFlow parent would report the parent's size, not the model's.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB; other OSes differ


MIN_CLEAN = 0.5  # share of a batch's runs (at least 3) that must be undisturbed
RETRY_PAUSE_S = 0.5  # between batches: lets a burst of other work pass


def cpu_ticks() -> Tuple[int, int, int]:
    """(all, idle, this process's) clock ticks: ``/proc/stat``'s machine total and idle (+ iowait), and this
    process's user + system time (``/proc/self/stat``); zeros where /proc is absent."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return sum(fields[:8]), fields[3] + fields[4], int(own[11]) + int(own[12])
    except (OSError, IndexError, ValueError):
        return 0, 0, 0


def machine_load(before: Tuple[int, int, int], after: Tuple[int, int, int]) -> Tuple[float, float]:
    """(idle share of the machine, cores used by other processes) between two ``cpu_ticks`` readings."""
    total, idle, own = (a - b for a, b in zip(after, before))
    if total <= 0:
        return float("nan"), float("nan")
    cores = os.cpu_count() or 1
    return idle / total, max(total - idle - own, 0) / total * cores


def _timed_batches(run, runs: int, max_seconds: float, retries: int, paired) -> Tuple[list, list, int]:
    """Batches of ``runs`` checked runs -- at least 3, the fewest undisturbed runs the figures take, so a small
    ``measure.runs`` never waits for a second batch it was bound to need -- each run followed by one of
    ``paired`` when given, stopping a batch after ``max_seconds`` (at least 3 runs); another batch after a
    pause while fewer than ``MIN_CLEAN`` of the runs are undisturbed, at most ``retries`` more. (the runs, the
    paired runs, batches used)"""
    checked, partner, attempts, runs = [], [], 0, max(runs, 3)
    while attempts <= retries:
        if attempts:
            time.sleep(RETRY_PAUSE_S)
        attempts, budget_ms, batch = attempts + 1, 1000.0 * max_seconds, []
        for _ in range(runs):
            batch.append(run())
            budget_ms -= batch[-1][0]
            if paired is not None:
                partner.append(paired())
            if budget_ms < 0 and len(batch) >= 3:
                break
        checked += batch
        if sum(w <= DISTURBED_WAIT for _, w, _ in checked) >= max(3, MIN_CLEAN * len(batch)):
            break
    return checked, partner, attempts


def time_interpreter(path: Union[str, Path], threads: int, warmup: int, runs: int,
                     max_seconds: float = float("inf"), reference: Optional[Union[str, Path]] = None,
                     retries: int = 3, level: float = 0.95) -> Latency:
    """Warm up, then time ``runs`` invocations on a fixed random input (in this process). A slow model
    (16x8 on reference kernels: ~1 s a run) stops after ``max_seconds`` of timed runs (at least 3) and
    a quarter of that of warm-up (at least 1); ``Latency.runs`` says how many were timed.

    Runs whose threads queued for a CPU (another process took it) are left out of the figures; while fewer
    than ``MIN_CLEAN`` of a batch are undisturbed, another batch follows a pause, at most ``retries`` times.

    With a ``reference`` file, each timed run of ``path`` is followed by one of the reference, so both see
    the same machine conditions: ``reference_ratio`` is the median of the ratios of the pairs whose two runs
    were both undisturbed, with its interval at ``level`` (``deploy.paired``)."""
    from portable_deblur.deploy.runtime import load_interpreter

    ref = load_interpreter(reference, threads) if reference is not None else None
    if ref is not None:
        set_timed_input(ref)
        ref.invoke()  # its memory is counted before the artifact's
    before = _peak_rss_mb()
    interpreter = load_interpreter(path, threads)
    set_timed_input(interpreter)
    _warm_up([interpreter] + ([ref] if ref is not None else []), warmup, max_seconds / 4)
    ticks = cpu_ticks()
    checked, ref_runs, attempts = _timed_batches(lambda: checked_run(interpreter), runs, max_seconds, retries,
                                                 (lambda: checked_run(ref)) if ref is not None else None)
    idle, others = machine_load(ticks, cpu_ticks())
    clean, disturbed = _undisturbed(checked, attempts, idle, others)
    t = np.array([c[0] for c in clean])
    peak = _peak_rss_mb()
    extra = {}
    if ref is not None:
        pairs = pairs_of(list(zip(checked, ref_runs)), level)
        extra = {"reference_ms": pairs.b_median, "reference_ratio": pairs.ratio.estimate,
                 "ratio_low": pairs.ratio.low, "ratio_high": pairs.ratio.high, "pairs": len(pairs.a_ms)}
    return Latency(float(np.median(t)), float(np.percentile(t, 90)), float(t.mean()), float(t.min()),
                   float(t.std() / t.mean()), len(checked), threads, peak, peak - before,
                   clean_runs=sum(c[1] <= DISTURBED_WAIT for c in checked), attempts=attempts,
                   wait_share=float(np.median([c[1] for c in checked])),
                   cpu_ms=float(np.median([c[2] for c in clean])), idle_share=idle, others_cpu=others,
                   disturbed=disturbed, **extra)


def _warm_up(interpreters, warmup: int, max_seconds: float) -> None:
    """``warmup`` invocations of each interpreter in turn, stopping after ``max_seconds`` (at least one)."""
    start = time.perf_counter()
    for _ in range(warmup):
        for interpreter in interpreters:
            interpreter.invoke()
        if time.perf_counter() - start > max_seconds:
            break


def _undisturbed(checked: list, attempts: int, idle: float, others: float) -> Tuple[list, str]:
    """(the runs whose threads did not queue for a CPU, "") -- or, when fewer than 3 were, (the 3 least
    disturbed, why the figures are flagged)."""
    clean = [c for c in checked if c[1] <= DISTURBED_WAIT]
    if len(clean) >= 3:
        return clean, ""
    why = (f"{len(clean)} of {len(checked)} runs undisturbed after {attempts} batches: its threads waited "
           f"{100 * float(np.median([w for _, w, _ in checked])):.0f} % of a run for a CPU; other "
           f"processes used {others:.2f} cores, the machine was {100 * idle:.0f} % idle")
    return sorted(checked, key=lambda c: c[1])[:3], why


def measure_local(path: Union[str, Path], threads: int = 2, warmup: int = 3, runs: int = 20,
                  max_seconds: float = 5.0, reference: Optional[Path] = None, retries: int = 3,
                  level: float = 0.95) -> Latency:
    """Time ``path`` in a fresh Python subprocess (alternating with ``reference`` when given); raises
    RuntimeError with its stderr if it fails. ``parent_cpu``: the cores this process used while it waited."""
    cmd = [sys.executable, "-m", "portable_deblur.deploy.measure", str(path), "--threads", str(threads),
           "--warmup", str(warmup), "--runs", str(runs), "--max-seconds", str(max_seconds), "--retries", str(retries),
           "--level", str(level)]
    cmd += ["--reference", str(reference)] if reference is not None else []
    own, start = cpu_ticks()[2], time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    parent = (cpu_ticks()[2] - own) / (os.sysconf("SC_CLK_TCK") * max(time.perf_counter() - start, 1e-6))
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {path} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return Latency(**{**json.loads(proc.stdout.strip().splitlines()[-1]), "parent_cpu": parent})


BACKENDS = {"local": lambda path, cfg, threads, reference, level: measure_local(
    path, threads, cfg.warmup, cfg.runs, cfg.max_seconds, reference, cfg.retries, level),
            "adb": lambda path, cfg, threads, reference, level: measure_adb(path, cfg, threads)}  # deploy/adb.py


def measure(path: Union[str, Path], cfg, threads: int, reference: Optional[Path] = None,
            level: float = 0.95) -> Latency:
    """Latency of ``path`` with the configured backend (a ``MeasureConfig``) at ``threads`` threads; locally,
    timed alternately with the ``reference`` file when one is given, its ratio's interval at ``level`` (adb:
    no reference)."""
    return BACKENDS[cfg.backend](path, cfg, threads, reference, level)


def measure_interleaved(paths: List[Path], cfg, threads: int, rounds: int) -> List[dict]:
    """Re-time several artifacts round-robin (order rotated each round) so slow drift of the machine hits
    them all alike; per artifact, the median of the per-round medians and their relative spread."""
    medians: List[List[float]] = [[] for _ in paths]
    for r in range(rounds):
        order = list(range(len(paths)))
        order = order[r % len(order):] + order[: r % len(order)] if order else order
        for i in order:
            medians[i].append(measure(paths[i], cfg, threads).median_ms)
    return [{"interleaved_median_ms": float(np.median(m)), "interleaved_spread": float((max(m) - min(m)) / np.median(m)),
             "interleaved_rounds": rounds} for m in medians]


def scaling_exponent(pixels: List[float], latency_ms: List[float]) -> float:
    """Slope k of log(latency) = c + k * log(pixels): k = 1 means latency grows linearly with pixels."""
    if len(pixels) < 2 or len(set(pixels)) < 2:
        return float("nan")
    return float(np.polyfit(np.log(pixels), np.log(latency_ms), 1)[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time one .tflite file with LiteRT; prints JSON.")
    parser.add_argument("path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--reference", help="a .tflite timed alternately with PATH (reference_ratio)")
    parser.add_argument("--retries", type=int, default=3, help="extra batches while too few runs are undisturbed")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the reference ratio")
    args = parser.parse_args(argv)
    print(json.dumps(asdict(time_interpreter(args.path, args.threads, args.warmup, args.runs, args.max_seconds,
                                             args.reference, args.retries, args.level))))


if __name__ == "__main__":
    main()
