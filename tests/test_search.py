"""A tiny end-to-end search in tmp_path: run directory contents, resume, failures, the CLI."""
import json
import os
import subprocess
import sys

import pytest

from portable_deblur import trial
from portable_deblur.flatbuffer import op_counts
from portable_deblur.registry import ConfigError
from portable_deblur.search import main, prepare, run_search

TWO = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]"]


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_search_writes_run_directory_and_resumes(tiny_args, monkeypatch):
    cfg, candidates, store = prepare(["space=upsampling", *tiny_args, *TWO])
    front = run_search(cfg, candidates, store)
    run = store.dir
    for name in ("config.yaml", "results.jsonl", "results.csv", "pareto.csv", "pareto.png"):
        assert (run / name).is_file(), name
    rows = _rows(run)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert front and {r.id for r in front} <= {r["id"] for r in rows}
    for r in rows:
        assert r["params"] > 0 and r["macs"] > 0 and r["latency"]["32x32"]["median_ms"] > 0
        assert r["fidelity_psnr"] > 60  # fp32 TFLite reproduces Keras
        artifact = run / r["artifacts"]["fp32_32x32"]
        assert artifact.is_file() and (run / r["id"] / "model.keras").is_file()
        assert ("TRANSPOSE_CONV" in op_counts(artifact)) == ("transpose" in r["id"])
        assert (run / r["id"] / "tensorboard").is_dir()
    header = (run / "results.csv").read_text().splitlines()[0]
    for column in ("id", "value_upsampler", "psnr_keras", "psnr_tflite", "psnr_blurry", "latency_32x32_median_ms",
                   "latency_32x32_p90_ms", "artifact_fp32_32x32", "status", "error"):
        assert column in header.split(","), column

    # Same command again: nothing is re-run and nothing is duplicated.
    monkeypatch.setattr(trial, "run_candidate", lambda *a, **k: pytest.fail("finished candidate re-run"))
    cfg, candidates, store = prepare(["space=upsampling", *tiny_args, *TWO])
    run_search(cfg, candidates, store)
    assert len(_rows(run)) == 2

    # A changed config must not silently mix into the old run.
    with pytest.raises(ConfigError, match="different config.*run.overwrite=true"):
        prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=4"])


@pytest.mark.slow
def test_failing_candidate_is_recorded_and_search_goes_on(tiny_args, monkeypatch):
    real = trial.to_tflite

    def refuse_bilinear(model, shape):
        if any("resize" in layer.name for layer in model.layers):
            raise RuntimeError("converter refused RESIZE_BILINEAR (test)")
        return real(model, shape)

    monkeypatch.setattr(trial, "to_tflite", refuse_bilinear)
    cfg, candidates, store = prepare(["space=upsampling", *tiny_args, *TWO])
    run_search(cfg, candidates, store)
    rows = {r["id"]: r for r in _rows(store.dir)}
    assert rows["unet__activation-relu__upsampler-bilinear"]["status"] == "failed"
    assert "converter refused RESIZE_BILINEAR" in rows["unet__activation-relu__upsampler-bilinear"]["error"]
    assert rows["unet__activation-relu__upsampler-transpose"]["status"] == "ok"


@pytest.mark.slow
def test_cli_runs_default_training_path_in_a_subprocess(tiny_args):
    """The real command, with the XLA training path the default run uses."""
    args = [a for a in tiny_args if a != "train.jit_compile=false"]
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", *args,
           "grid.upsampler=[depth_to_space]", "grid.activation=[prelu]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unet__activation-prelu__upsampler-depth_to_space" in proc.stdout
    assert "pareto.csv" in proc.stdout
