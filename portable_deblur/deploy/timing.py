"""Timing primitives shared by every latency measurement (``deploy.measure``, ``deploy.paired``,
``deploy.adb``): a fixed input, one timed inference, how long its threads queued for a CPU (another process
took it), and ``Latency``, what one measurement records."""
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

DISTURBED_WAIT = 0.02  # a run whose threads queued for a CPU longer than this share of its wall time


def queued_ns() -> int:
    """Nanoseconds this process's threads have spent runnable but waiting for a CPU (the run-queue wait of
    ``/proc/self/task/*/schedstat``); 0 where the kernel has no schedstat (then no run counts as disturbed)."""
    total = 0
    try:
        for task in os.listdir("/proc/self/task"):
            total += int(Path(f"/proc/self/task/{task}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return total


def set_timed_input(interpreter):
    """Sets a fixed random input of the right type on ``interpreter``."""
    inp = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(inp["dtype"], np.floating):
        x = rng.random(inp["shape"]).astype(inp["dtype"])
    else:
        info = np.iinfo(inp["dtype"])
        x = rng.integers(info.min, info.max, inp["shape"], dtype=inp["dtype"], endpoint=True)
    interpreter.set_tensor(inp["index"], x)


def invoke_ms(interpreter) -> float:
    start = time.perf_counter()
    interpreter.invoke()
    return (time.perf_counter() - start) * 1000.0


def checked_run(interpreter) -> Tuple[float, float, float]:
    """One timed inference: (wall ms, run-queue wait share, CPU ms of all threads). The process clock is exact;
    schedstat's wait is brought up to date at each context switch, which is when a queued thread gets its CPU."""
    wait0, cpu0 = queued_ns(), time.process_time()
    ms = invoke_ms(interpreter)
    cpu1, wait1 = time.process_time(), queued_ns()
    return ms, (wait1 - wait0) / 1e6 / max(ms, 1e-6), (cpu1 - cpu0) * 1000.0


@dataclass(frozen=True)
class Latency:
    """Timed runs of one artifact: milliseconds, relative spread (std/mean) and resident memory."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    cv: float
    runs: int
    threads: int
    peak_rss_mb: float  # whole inference process (Python + runtime + model), high-water mark
    model_rss_mb: float  # the part that appeared once the model was loaded and run
    delegated_nodes: Optional[int] = None  # adb backend: what benchmark_model reported
    nodes: Optional[int] = None
    reference_ms: Optional[float] = None  # the reference network's median, timed alternately with this file
    reference_ratio: Optional[float] = None  # median of (this run / the reference run that followed it)
    ratio_low: Optional[float] = None  # the interval of that median (confidence.median_interval)
    ratio_high: Optional[float] = None
    pairs: Optional[int] = None  # pairs it is the median of (both runs undisturbed, else the 3 least disturbed)
    clean_runs: Optional[int] = None  # timed runs whose threads waited < DISTURBED_WAIT for a CPU (the figures')
    attempts: Optional[int] = None  # batches of runs it took (1 + retries used)
    wait_share: Optional[float] = None  # median run-queue wait / wall over all timed runs (0: nothing queued)
    cpu_ms: Optional[float] = None  # median CPU time of all its threads per undisturbed inference
    idle_share: Optional[float] = None  # the machine's idle CPU share over the measurement (/proc/stat)
    others_cpu: Optional[float] = None  # cores the other processes used meanwhile (this process excluded)
    parent_cpu: Optional[float] = None  # cores the waiting search process used meanwhile (local backend)
    disturbed: str = ""  # why too few runs were undisturbed, after every retry ("" when enough were)
