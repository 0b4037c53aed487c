"""Measure stage: latency of a ``.tflite`` with the LiteRT interpreter, in a fresh subprocess.

Each artifact is timed in its own process (``python -m portable_deblur.measure``) so one model's allocator
and thread-pool state cannot leak into another's numbers, and the child's peak RSS is the artifact's own.
Timing noise on shared machines can reach 2x between windows, so we report median, p90 and spread.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Timed runs of one artifact: milliseconds, relative spread (std/mean) and peak resident memory."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    cv: float
    runs: int
    threads: int
    peak_rss_mb: float


def time_interpreter(path: Union[str, Path], threads: int, warmup: int, runs: int) -> Latency:
    """Warm up, then time ``runs`` invocations on a fixed random input (in this process)."""
    from portable_deblur.runtime import load_interpreter

    interpreter = load_interpreter(path, threads)
    inp = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(inp["dtype"], np.floating):
        x = rng.random(inp["shape"]).astype(inp["dtype"])
    else:
        info = np.iinfo(inp["dtype"])
        x = rng.integers(info.min, info.max, inp["shape"], dtype=inp["dtype"], endpoint=True)
    interpreter.set_tensor(inp["index"], x)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000.0)
    t = np.array(times)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    return Latency(float(np.median(t)), float(np.percentile(t, 90)), float(t.mean()), float(t.min()),
                   float(t.std() / t.mean()), runs, threads, rss_mb)


def measure(path: Union[str, Path], threads: int = 2, warmup: int = 3, runs: int = 20) -> Latency:
    """Time ``path`` in a fresh Python subprocess; raises RuntimeError with its stderr if it fails."""
    cmd = [sys.executable, "-m", "portable_deblur.measure", str(path),
           "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {path} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return Latency(**json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time one .tflite file with LiteRT; prints JSON.")
    parser.add_argument("path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    print(json.dumps(asdict(time_interpreter(args.path, args.threads, args.warmup, args.runs))))


if __name__ == "__main__":
    main()
