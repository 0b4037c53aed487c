"""Measurement helpers that need no device: adb command construction and benchmark_model parsing,
the scaling exponent, padding of resolutions that are not a multiple of 2**depth."""
import shutil
from pathlib import Path

import pytest

from portable_deblur.config import load_config
from portable_deblur.deploy.adb import adb_commands, measure_adb, parse_benchmark_output
from portable_deblur.deploy.measure import scaling_exponent
from portable_deblur.registry import ConfigError
from portable_deblur.search.artifact import padded

# benchmark_model output in the format its README documents (tensorflow/lite/tools/benchmark).
PARTIAL_GPU = """STARTING!
Log parameter values verbosely: [0]
Num threads: [4]
Graph: [/data/local/tmp/unet.tflite]
Use gpu: [1]
Loaded model /data/local/tmp/unet.tflite
INFO: Created TensorFlow Lite delegate for GPU.
Though GPU delegate is explicitly applied, the model graph will not be executed by the delegate completely (i.e. 2 delegate kernels, 58 nodes delegated out of 82 nodes).
The input model file size (MB): 1.99
Initialized session in 5.264ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=44 first=18535 curr=10745 min=10547 max=18535 avg=11370 std=1244

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=94 first=10689 curr=10532 min=10423 max=11057 avg=10636.6 std=125

Inference timings in us: Init: 5264, First inference: 18535, Warmup (avg): 11370, Inference (avg): 10636.6
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your one discretion.
Memory footprint delta from the start of the tool (MB): init=3.04688 overall=9.51562
"""

FULL_NNAPI = PARTIAL_GPU.replace(
    "Though GPU delegate is explicitly applied, the model graph will not be executed by the delegate completely "
    "(i.e. 2 delegate kernels, 58 nodes delegated out of 82 nodes).",
    "Explicitly applied NNAPI delegate, and the model graph will be completely executed by the delegate.")


def test_parse_partial_delegation():
    lat = parse_benchmark_output(PARTIAL_GPU, threads=4, runs=94)
    assert lat.median_ms == pytest.approx(10.6366) and lat.min_ms == pytest.approx(10.423)
    assert lat.cv == pytest.approx(0.125 / 10.6366, rel=1e-3)
    assert (lat.delegated_nodes, lat.nodes) == (58, 82)
    assert lat.peak_rss_mb == pytest.approx(9.51562)


def test_parse_full_delegation_and_garbage():
    lat = parse_benchmark_output(FULL_NNAPI, threads=4, runs=94)
    assert lat.delegated_nodes == lat.nodes == -1  # "completely executed": all nodes, count not printed
    with pytest.raises(RuntimeError, match="no 'Inference \\(avg\\)' timing"):
        parse_benchmark_output("Segmentation fault", threads=1, runs=1)


def test_adb_command_construction():
    cfg = load_config(["measure.backend=adb", "measure.adb_delegate=gpu", "measure.adb_serial=R58M123",
                       "measure.runs=50", "measure.warmup=5"]).measure
    push, run = adb_commands(Path("/runs/x/fp32_256x256.tflite"), cfg, threads=4)
    assert push == ["adb", "-s", "R58M123", "push", "/runs/x/fp32_256x256.tflite", "/data/local/tmp/fp32_256x256.tflite"]
    assert run[:4] == ["adb", "-s", "R58M123", "shell"]
    assert run[4] == ("/data/local/tmp/benchmark_model --graph=/data/local/tmp/fp32_256x256.tflite --num_threads=4 "
                      "--warmup_runs=5 --num_runs=50 --max_secs=5 --use_gpu=true")


def test_adb_without_binary_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    cfg = load_config(["measure.backend=adb"]).measure
    with pytest.raises(ConfigError, match="needs the 'adb' binary on PATH"):
        measure_adb("model.tflite", cfg, threads=1)


def test_scaling_exponent_and_padding():
    assert scaling_exponent([1e5, 4e5, 1.6e6], [2.0, 8.0, 32.0]) == pytest.approx(1.0)
    assert scaling_exponent([1e5, 4e5], [2.0, 4.0]) == pytest.approx(0.5)
    assert padded((900, 1600), 8) == (904, 1600) and padded((720, 1280), 8) == (720, 1280)
