"""A tiny end-to-end search in tmp_path: run directory contents, resume, failures, the CLI."""
import os
import subprocess
import sys

import dataclasses

import pytest

from portable_deblur import trial
from portable_deblur.flatbuffer import op_counts
from portable_deblur.registry import ConfigError
from portable_deblur.search import main, prepare, run_search

TWO = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]"]


def _rows(study):
    """Latest row per artifact id, as plain dicts (what results.csv is written from)."""
    return [dataclasses.asdict(r) for r in study.rows()]


def _states(study):
    return {t.user_attrs.get("candidate"): t.state.name for t in study.study.get_trials()}


@pytest.mark.slow
def test_tiny_search_writes_run_directory_and_resumes(tiny_args, monkeypatch):
    cfg, violations, study = prepare(["space=upsampling", *tiny_args, *TWO])
    front = run_search(cfg, violations, study)
    run = study.dir
    for name in ("config.yaml", "study.db", "results.csv", "pareto.csv", "pareto.png",
                 "latency_vs_resolution.csv", "latency_vs_resolution.png"):
        assert (run / name).is_file(), name
    rows = _rows(study)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert sorted(r["trial"] for r in rows) == [0, 1]  # the study records which trial made which files
    assert front and {r.id for r in front} <= {r["id"] for r in rows}
    for r in rows:
        assert r["params"] > 0 and r["macs"] > 0 and r["latency"]["32x32_t2"]["median_ms"] > 0
        assert r["latency"]["32x32_t2"]["interleaved_rounds"] == 3  # final interleaved re-timing
        assert r["portability"]["gpu"]["fallback"] == {} and r["xnnpack"]["delegated_nodes"] == r["xnnpack"]["nodes"]
        assert ("TRANSPOSE_CONV" in r["portability"]["nnapi_api27"]["fallback"]) == ("transpose" in r["id"])
        assert r["fidelity_psnr"] > 60  # fp32 TFLite reproduces Keras
        artifact = run / r["artifacts"]["fp32_32x32"]
        assert artifact.is_file() and (run / r["id"] / "model.keras").is_file()
        assert ("TRANSPOSE_CONV" in op_counts(artifact)) == ("transpose" in r["id"])
        assert (run / r["id"] / "tensorboard").is_dir()
    header = (run / "results.csv").read_text().splitlines()[0]
    for column in ("id", "value_upsampler", "psnr_keras", "psnr_tflite", "psnr_blurry", "latency_32x32_t2_median_ms",
                   "latency_32x32_t2_p90_ms", "fallback_nnapi_api27", "accel_macs_gpu", "xnnpack_undelegated", "artifact_fp32_32x32", "status", "error"):
        assert column in header.split(","), column

    # Same command again: nothing is re-run and nothing is duplicated.
    monkeypatch.setattr(trial, "run_candidate", lambda *a, **k: pytest.fail("finished candidate re-run"))
    cfg, violations, study = prepare(["space=upsampling", *tiny_args, *TWO])
    run_search(cfg, violations, study)
    assert sorted(r["id"] for r in _rows(study)) == sorted(r["id"] for r in rows)
    assert study.trial_counts() == {"COMPLETE": 2}

    # A changed config must not silently mix into the old run.
    with pytest.raises(ConfigError, match="different config.*run.overwrite=true"):
        prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=4"])


@pytest.mark.slow
def test_failing_candidate_is_recorded_and_search_goes_on(tiny_args, monkeypatch):
    real = trial.to_tflite

    def refuse_bilinear(model, shape, *args):  # stands in for a converter refusal
        if any("resize" in layer.name for layer in model.layers):
            raise RuntimeError("converter refused RESIZE_BILINEAR (test)")
        return real(model, shape, *args)

    monkeypatch.setattr(trial, "to_tflite", refuse_bilinear)
    cfg, violations, study = prepare(["space=upsampling", *tiny_args, *TWO])
    run_search(cfg, violations, study)
    rows = {r["id"]: r for r in _rows(study)}
    assert _states(study) == {"unet__activation-relu__upsampler-bilinear": "FAIL",
                              "unet__activation-relu__upsampler-transpose": "COMPLETE"}
    failed = [t for t in study.study.get_trials() if t.state.name == "FAIL"][0]
    assert "converter refused RESIZE_BILINEAR" in failed.user_attrs["error"]  # the reason, in the study
    assert rows["unet__activation-relu__upsampler-bilinear"]["status"] == "failed"
    assert "converter refused RESIZE_BILINEAR" in rows["unet__activation-relu__upsampler-bilinear"]["error"]
    assert rows["unet__activation-relu__upsampler-transpose"]["status"] == "ok"


@pytest.mark.slow
def test_cli_runs_in_a_subprocess_with_the_xla_switch(tiny_args):
    """The real command, with the XLA training path (which cannot share a process with op determinism)."""
    cmd = [sys.executable, "-m", "portable_deblur.search", "space=upsampling", *tiny_args, "train.jit_compile=true",
           "grid.upsampler=[depth_to_space]", "grid.activation=[prelu]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unet__activation-prelu__upsampler-depth_to_space" in proc.stdout
    assert "pareto.csv" in proc.stdout


@pytest.mark.slow
def test_required_target_skips_candidates_before_training(tiny_args, monkeypatch):
    calls = []
    real = trial.fit
    monkeypatch.setattr(trial, "fit", lambda model, *a, **k: calls.append(model) or real(model, *a, **k))
    args = ["space=upsampling", *tiny_args, *TWO, "portability.require=[nnapi_api28]"]
    cfg, violations, study = prepare(args)
    run_search(cfg, violations, study)
    rows = {r["id"]: r for r in _rows(study)}
    assert set(_states(study).values()) == {"PRUNED"}
    skipped = rows["unet__activation-relu__upsampler-transpose"]
    assert skipped["status"] == "skipped" and "nnapi_api28: TRANSPOSE_CONV needs API 29" in skipped["error"]
    # bilinear's half-pixel RESIZE_BILINEAR needs API 30, so it is skipped too: nothing was trained.
    assert rows["unet__activation-relu__upsampler-bilinear"]["status"] == "skipped"
    assert calls == []


@pytest.mark.slow
def test_flagged_candidates_are_trained_but_kept_off_the_front(tiny_args):
    args = ["space=upsampling", *tiny_args, *TWO, "portability.require=[nnapi_api29]",
            "portability.on_violation=flag"]
    cfg, violations, study = prepare(args)
    front = run_search(cfg, violations, study)
    rows = {r["id"]: r for r in _rows(study)}
    assert rows["unet__activation-relu__upsampler-bilinear"]["violations"] == ["nnapi_api29"]
    assert rows["unet__activation-relu__upsampler-bilinear"]["status"] == "ok"
    assert [r.id for r in front] == ["unet__activation-relu__upsampler-transpose"]


@pytest.mark.slow
def test_same_seed_same_numbers_across_runs(tiny_args, tmp_path):
    results = []
    for name in ("a", "b"):
        args = ["space=upsampling", *tiny_args, "grid.upsampler=[depth_to_space]", "grid.activation=[prelu]",
                f"run.name={name}"]
        cfg, violations, study = prepare(args)
        run_search(cfg, violations, study)
        results.append([(r["psnr_keras"], r["psnr_tflite"], r["params"]) for r in _rows(study)])
    assert results[0] == results[1]


@pytest.mark.slow
def test_nan_loss_stops_that_candidate_early_and_the_search_goes_on(tiny_args, monkeypatch):
    from portable_deblur import train

    real = train.get_loss
    monkeypatch.setattr(train, "get_loss", lambda *a: (lambda s, r: real(*a)(s, r) * float("nan")))
    cfg, violations, study = prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=50"])
    run_search(cfg, violations, study)
    rows = _rows(study)
    assert set(_states(study).values()) == {"FAIL"}
    assert all(r["status"] == "failed" for r in rows)
    assert all("training loss became nan at step 1" in r["error"] for r in rows)
