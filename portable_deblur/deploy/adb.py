"""``measure.backend=adb``: latency on a phone connected over USB, with TFLite's ``benchmark_model`` and the
delegate ``measure.adb_delegate`` names (the command lines, and the parse of its output)."""
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Union

from portable_deblur.deploy.timing import Latency
from portable_deblur.registry import ConfigError

# benchmark_model flags per delegate (TFLite tools/benchmark README).
ADB_DELEGATES = {"none": [], "xnnpack": ["--use_xnnpack=true"], "gpu": ["--use_gpu=true"],
                 "nnapi": ["--use_nnapi=true"], "hexagon": ["--use_hexagon=true"]}


def adb_commands(local: Path, cfg, threads: int) -> List[List[str]]:
    """The adb invocations that push ``local`` and run ``benchmark_model`` on it with ``cfg``'s delegate."""
    adb = ["adb"] + (["-s", cfg.adb_serial] if cfg.adb_serial else [])
    remote = f"/data/local/tmp/{local.name}"
    bench = [cfg.adb_binary, f"--graph={remote}", f"--num_threads={threads}", f"--warmup_runs={cfg.warmup}",
             f"--num_runs={cfg.runs}", f"--max_secs={cfg.max_seconds:g}", *ADB_DELEGATES[cfg.adb_delegate]]
    return [adb + ["push", str(local), remote], adb + ["shell", " ".join(bench)]]


def parse_benchmark_output(text: str, threads: int, runs: int) -> Latency:
    """Parse ``benchmark_model`` output: average inference time, delegated nodes, peak memory."""
    timing = re.search(r"Inference timings in us:.*?Inference \(avg\): ([0-9.e+]+)", text, re.S)
    if not timing:
        raise RuntimeError(f"benchmark_model output has no 'Inference (avg)' timing:\n{text[-1500:]}")
    avg_ms = float(timing.group(1)) / 1000.0
    runs_lines = re.findall(r"count=\d+ first=\d+ curr=\d+ min=(\d+) max=\d+ avg=[0-9.e+]+ std=(\d+)", text)
    std = runs_lines[-1] if runs_lines else None  # the last block is the timed run, the first the warm-up
    nodes = re.search(r"(\d+) nodes delegated out of (\d+) nodes", text)
    full = re.search(r"model graph will be completely executed by the delegate", text)
    memory = re.search(r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                       r"init=([0-9.e+]+) overall=([0-9.e+]+)", text)
    delegated, total = (int(nodes.group(1)), int(nodes.group(2))) if nodes else (None, None)
    if full and delegated is None:
        delegated = total = -1  # all nodes, count not printed
    min_ms = float(std[0]) / 1000.0 if std else avg_ms
    cv = float(std[1]) / 1000.0 / avg_ms if std and avg_ms else float("nan")
    rss = float(memory.group(2)) if memory else float("nan")
    # benchmark_model prints an average, not a median: reported in both fields, honestly labelled here.
    return Latency(avg_ms, float("nan"), avg_ms, min_ms, cv, runs, threads, rss, float("nan"), delegated, total)


def measure_adb(path: Union[str, Path], cfg, threads: int) -> Latency:
    """Time ``path`` on the phone connected over adb, with ``cfg.adb_delegate``."""
    if shutil.which("adb") is None:
        raise ConfigError("measure.backend=adb needs the 'adb' binary on PATH (Android platform-tools)")
    devices = subprocess.run(["adb", "devices"], capture_output=True, text=True).stdout
    if not re.search(r"^\S+\tdevice$", devices, re.M):
        raise ConfigError(f"measure.backend=adb: no device attached ('adb devices' printed {devices.strip()!r})")
    output = ""
    for cmd in adb_commands(Path(path), cfg, threads):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 or ("not found" in output and cfg.adb_binary in output):
            raise ConfigError(f"{' '.join(cmd)} failed; is {cfg.adb_binary} on the phone? Output:\n{output[-1500:]}")
    return parse_benchmark_output(output, threads, cfg.runs)
