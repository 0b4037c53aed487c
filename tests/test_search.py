"""A tiny end-to-end search in tmp_path: run directory contents, resume, failures, the CLI."""
import os
import subprocess
import sys

import dataclasses
import re

import pytest

from portable_deblur.search import artifact, trial
from portable_deblur.deploy.flatbuffer import op_counts
from portable_deblur.registry import ConfigError
from portable_deblur.search.run import prepare, run_search

TWO = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]"]


def _rows(study):
    """Latest row per artifact id, as plain dicts (what results.csv is written from)."""
    return [dataclasses.asdict(r) for r in study.rows()]


def _states(study):
    return {t.user_attrs.get("candidate"): t.state.name for t in study.study.get_trials()}


@pytest.fixture(scope="module")
def two_run(tmp_path_factory, tiny_overrides):
    """One finished tiny search of the two networks of ``TWO`` with the final paired re-timing the front ranks
    by, shared by the tests that read it (or resume it: a finished run resumed changes nothing)."""
    args = ["space=upsampling", *tiny_overrides, f"run.root={tmp_path_factory.mktemp('two')}",
            "measure.interleaved_rounds=3", *TWO]
    cfg, violations, dataset, study = prepare(args)
    front = run_search(cfg, violations, study, dataset)
    return args, study, front


@pytest.mark.slow
def test_tiny_search_writes_run_directory_and_resumes(two_run, monkeypatch):
    args, study, front = two_run
    run = study.layout.root
    for name in ("config.yaml", "study.db", "results.csv", "frames.csv", "pareto.csv", "stability.csv", "pareto.png"):
        assert (run / name).is_file(), name
    for name in ("latency_vs_resolution.csv", "latency_vs_resolution.png"):  # one resolution: no slope to show
        assert not (run / name).exists(), name
    rows = _rows(study)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert sorted(r["trial"] for r in rows) == [0, 1]  # the study records which trial made which files
    assert front and {r.id for r in front} <= {r["id"] for r in rows}
    for r in rows:
        assert r["params"] > 0 and r["macs"] > 0 and r["latency"]["32x32_t2"]["median_ms"] > 0
        assert r["latency"]["32x32_t2"]["settled"] and r["latency"]["32x32_t2"]["interleaved_pairs"] >= 3
        ranked = r["paired"]["32x32_t2"]  # the final paired re-timing, in the run's unit
        assert ranked["ratio_low"] <= ranked["ratio"] <= ranked["ratio_high"] and ranked["unit_ms"] > 0
        assert r["portability"]["gpu"]["fallback"] == {} and r["xnnpack"]["delegated_nodes"] == r["xnnpack"]["nodes"]
        assert set(r["portability"]) == {"gpu", "qnn_htp", "neuron_apu", "xnnpack"}  # the live targets
        assert r["fidelity_psnr"] > 60  # fp32 TFLite reproduces Keras
        fp16 = r["fp16_range"]["32x32"]  # what a phone's GPU computes in fp16, checked at every measured size
        assert fp16["largest"]["value"] > 0 and fp16["risky"] == []
        artifact = run / r["artifacts"]["fp32_32x32"]
        assert artifact.is_file() and (run / r["id"] / "model.keras").is_file()
        assert ("TRANSPOSE_CONV" in op_counts(artifact)) == ("transpose" in r["id"])
        assert (run / r["id"] / "tensorboard").is_dir()
        # Both camera pipelines are validated; mixed training ranks by all frames (as many of each).
        by = r["pipelines"]
        assert set(by) == {"srgb", "linear"} and by["linear"]["psnr_blurry"] < by["srgb"]["psnr_blurry"]
        assert r["psnr_tflite"] == pytest.approx((by["srgb"]["psnr_tflite"] + by["linear"]["psnr_tflite"]) / 2)
        assert r["psnr_blurry"] == pytest.approx((by["srgb"]["psnr_blurry"] + by["linear"]["psnr_blurry"]) / 2)
    header = (run / "results.csv").read_text().splitlines()[0]
    for column in ("id", "value_upsampler", "psnr_keras", "psnr_tflite", "psnr_blurry", "latency_32x32_t2_median_ms",
                   "latency_32x32_t2_p90_ms", "fallback_neuron_apu", "accel_macs_gpu", "xnnpack_undelegated", "artifact_fp32_32x32", "status", "error",
                   "psnr_tflite_srgb", "psnr_blurry_linear", "ssim_tflite_linear", "psnr_gain_srgb", "psnr_gain_linear"):
        assert column in header.split(","), column
    report = (run / "report.html").read_text()
    assert "gain_srgb_db" in report and "gain_linear_db" in report and "Latency against resolution" not in report

    frames = {r.id: r.frames for r in study.rows()}  # every frame's figures, typed
    assert all(f is not None and len(f.names) == 2 and set(f.psnr) == {"blurry", "keras", "tflite"}
               for f in frames.values())
    assert len((run / "frames.csv").read_text().splitlines()) == 1 + 2 * 2  # header, 2 artifacts x 2 frames

    # Same command again: nothing is re-run (not even the re-timing) and nothing is duplicated.
    monkeypatch.setattr(trial, "run_candidate", lambda *a, **k: pytest.fail("finished candidate re-run"))
    import portable_deblur.deploy.paired as paired_module
    monkeypatch.setattr(paired_module, "in_subprocess", lambda *a, **k: pytest.fail("re-timed again"))
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    assert sorted(r["id"] for r in _rows(study)) == sorted(r["id"] for r in rows)
    assert {r.id: r.frames for r in study.rows()} == frames  # per-frame results survive the resume
    assert study.trial_counts() == {"COMPLETE": 2}

    # A changed config must not silently mix into the old run.
    with pytest.raises(ConfigError, match="different config.*run.overwrite=true"):
        prepare([*args, "train.steps=4"])


@pytest.mark.slow
def test_failing_candidate_is_recorded_and_search_goes_on(tiny_args, monkeypatch):
    real = artifact.to_tflite

    def refuse_bilinear(model, shape, *args):  # stands in for a converter refusal
        if any("resize" in layer.name for layer in model.layers):
            raise RuntimeError("converter refused RESIZE_BILINEAR (test)")
        return real(model, shape, *args)

    monkeypatch.setattr(artifact, "to_tflite", refuse_bilinear)
    cfg, violations, dataset, study = prepare(["space=upsampling", *tiny_args, *TWO])
    run_search(cfg, violations, study, dataset)
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
    # No terminal: no bars, one line per finished trial instead; TensorFlow's start-up lines are gone.
    assert "[1/1] unet__activation-prelu__upsampler-depth_to_space: PSNR" in proc.stdout
    assert "left" in proc.stdout
    for noise in ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "XNNPACK delegate for CPU"):
        assert noise not in proc.stderr + proc.stdout, noise
    # The end names the report first, then the next command.
    tail = proc.stdout[proc.stdout.index("trials:"):]
    assert tail.index("report.html") < tail.index("handoff") < tail.index("pareto.csv")


def test_a_failed_start_writes_nothing_and_the_corrected_command_runs(tiny_args, tmp_path):
    """Bad input stops the run before anything is written, so the corrected command is not refused."""
    bad = ["space=upsampling", *tiny_args, *TWO, "data.source=gopro", f"data.root={tmp_path / 'nonexistent'}"]
    with pytest.raises(ConfigError, match="nonexistent.* is not a directory"):
        prepare(bad)
    assert not (tmp_path / "runs").exists()
    tree = tmp_path / "gopro" / "train" / "S" / "blur"
    tree.mkdir(parents=True)
    (tree / "a.png").write_bytes(b"not a png")  # a tree with one unreadable file
    with pytest.raises(ConfigError, match="no sharp twin|cannot read image"):
        prepare([*bad[:-1], f"data.root={tmp_path / 'gopro'}"])
    assert not (tmp_path / "runs").exists()
    for name in ("../../escape", "a/b", ".hidden"):  # a run name is a name: never a path out of run.root
        with pytest.raises(ConfigError, match=f"run.name must be a folder name .*{re.escape(name)}"):
            prepare(["space=upsampling", *tiny_args, *TWO, f"run.name={name}"])
    with pytest.raises(ConfigError, match="space must be one of .*got 'nope'"):
        prepare(["space=upsampling", *tiny_args, *TWO, "space=nope"])
    assert not (tmp_path / "runs").exists() and not any(tmp_path.parent.glob("escape"))
    cfg, _, _, study = prepare(["space=upsampling", *tiny_args, *TWO])
    assert study.trial_counts() == {}


def test_a_run_with_no_finished_trial_is_replaced_by_a_new_config(tiny_args):
    """The other order: a run was opened (and stopped in its first trial), then the config changed."""
    from optuna.trial import TrialState

    _, _, _, first = prepare(["space=upsampling", *tiny_args, *TWO])
    interrupted = first.study.ask()
    first.study.tell(interrupted, state=TrialState.FAIL)
    _, _, _, second = prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=4"])
    assert second.trial_counts() == {} and second.cfg.train.steps == 4
    done = second.study.ask()
    second.study.tell(done, [30.0, 1.0])
    with pytest.raises(ConfigError, match="different config"):  # a finished trial is worth protecting
        prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=5"])


def test_config_yaml_records_the_machine_and_still_loads(tiny_args):
    from portable_deblur.search.storage import comparable as _comparable
    from portable_deblur.search.study import SearchStudy

    cfg, _, _, study = prepare(["space=upsampling", *tiny_args, *TWO])
    text = (study.layout.root / "config.yaml").read_text()
    assert "environment:" in text and "cpu:" in text and "onednn:" in text and "tensorflow:" in text
    assert _comparable(SearchStudy.load(study.layout.root).cfg) == _comparable(cfg)
    assert any(k.startswith("environment.") for k in study.study.user_attrs)


def test_trial_log_prints_one_line_per_trial(capsys):
    from optuna.trial import TrialState

    from portable_deblur.config import load_config
    from portable_deblur.records import ResultRow
    from portable_deblur.search.summary import TrialLog
    from portable_deblur.search.jobs import Outcome

    row = ResultRow(id="unet__x", arch="unet", values={}, status="ok", psnr_tflite=26.5, psnr_blurry=26.0,
                    latency={"720x1280_t2": {"median_ms": 21.25}},
                    pipelines={"srgb": {"psnr_blurry": 27.0, "psnr_tflite": 27.25},
                               "linear": {"psnr_blurry": 25.0, "psnr_tflite": 25.75}})
    TrialLog(load_config([]), total=3, done=1, enabled=True)(Outcome(TrialState.COMPLETE, [row]))
    TrialLog(load_config([]), total=3, done=0, enabled=False)(Outcome(TrialState.COMPLETE, [row]))  # bars on
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("[2/3] unet__x: PSNR 26.50 dB (+0.50 over blurry; srgb +0.25; linear +0.75), "
                               "21.2 ms @720x1280_t2; elapsed 0:00")
    assert lines[0].endswith("left")
    # A screened row (a lower rung's: no file judged over the frames) says so and gives its Keras model's figures.
    screened = ResultRow(id="unet__y", arch="unet", values={}, status="ok", psnr_keras=26.25, psnr_blurry=26.0,
                         latency={"720x1280_t2": {"median_ms": 30.0}}, screened=True,
                         pipelines={"srgb": {"psnr_blurry": 27.0, "psnr_keras": 27.5}})
    TrialLog(load_config([]), total=3, done=2, enabled=True)(Outcome(TrialState.PRUNED, [screened]))
    assert capsys.readouterr().out.startswith("[3/3] unet__y: PSNR 26.25 dB (Keras model, screened) (+0.25 over "
                                              "blurry; srgb +0.50), 30.0 ms @720x1280_t2")

@pytest.mark.slow
def test_required_target_skips_candidates_before_training(tiny_args, monkeypatch):
    calls = []
    real = trial.fit
    monkeypatch.setattr(trial, "fit", lambda model, *a, **k: calls.append(model) or real(model, *a, **k))
    args = ["space=upsampling", *tiny_args, *TWO, "portability.require=[nnapi_api28]"]
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
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
    cfg, violations, dataset, study = prepare(args)
    front = run_search(cfg, violations, study, dataset)
    rows = {r["id"]: r for r in _rows(study)}
    assert rows["unet__activation-relu__upsampler-bilinear"]["violations"] == ["nnapi_api29"]
    assert rows["unet__activation-relu__upsampler-bilinear"]["status"] == "ok"
    assert [r.id for r in front] == ["unet__activation-relu__upsampler-transpose"]


@pytest.mark.slow
def test_same_seed_same_numbers_across_runs(two_run, tmp_path):
    args, first, _ = two_run
    cfg, violations, dataset, again = prepare([*args, f"run.root={tmp_path}"])  # the same config, a new folder
    run_search(cfg, violations, again, dataset)
    numbers = lambda study: sorted((r["id"], r["psnr_keras"], r["psnr_tflite"], r["params"]) for r in _rows(study))  # noqa: E731
    assert numbers(again) == numbers(first)


@pytest.mark.slow
def test_nan_loss_stops_that_candidate_early_and_the_search_goes_on(tiny_args, monkeypatch):
    from portable_deblur.train import fit as train

    real = train.get_loss
    monkeypatch.setattr(train, "get_loss", lambda *a: (lambda s, r: real(*a)(s, r) * float("nan")))
    cfg, violations, dataset, study = prepare(["space=upsampling", *tiny_args, *TWO, "train.steps=50"])
    run_search(cfg, violations, study, dataset)
    rows = _rows(study)
    assert set(_states(study).values()) == {"FAIL"}
    assert all(r["status"] == "failed" for r in rows)
    assert all("training loss became nan at step 1" in r["error"] for r in rows)


@pytest.mark.slow
def test_train_init_starts_each_candidate_from_an_earlier_runs_weights(two_run, tiny_args, monkeypatch):
    import numpy as np

    from portable_deblur.backend import keras
    from portable_deblur.models.layers import CUSTOM_OBJECTS

    one = ["space=upsampling", *tiny_args, "grid.upsampler=[bilinear]", "grid.activation=[relu]"]
    _, first, _ = two_run  # the earlier run (on a laptop, say) that trained the candidate
    cid = "unet__activation-relu__upsampler-bilinear"
    saved = keras.models.load_model(first.layout.root / cid / "model.keras", custom_objects=CUSTOM_OBJECTS, compile=False)
    assert (first.layout.root / cid / "checkpoint" / "checkpoint").is_file()  # optimizer state and step, to continue
    started = []
    real = trial.fit
    monkeypatch.setattr(trial, "fit", lambda model, *a, **k: started.append(model.get_weights()) or real(model, *a, **k))
    cfg, violations, dataset, second = prepare([*one, "run.name=gpu_box", f"train.init={first.layout.root}"])
    run_search(cfg, violations, second, dataset)
    assert all(np.array_equal(a, b) for a, b in zip(started[0], saved.get_weights()))
