"""Timing primitives shared by every latency measurement (``deploy.measure``, ``deploy.paired``): a fixed
input, one timed inference, and how long its threads queued for a CPU (another process took it)."""
import os
import time
from pathlib import Path
from typing import Tuple

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
