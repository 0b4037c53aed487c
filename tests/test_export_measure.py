"""Export, flatbuffer reading, latency measurement in a subprocess, evaluation helpers."""
import numpy as np
import pytest

from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality, quality_and_fidelity, restore
from portable_deblur.deploy.export import to_tflite
from portable_deblur.layout import RunLayout
from portable_deblur.files import atomic_write
from portable_deblur.deploy.flatbuffer import op_counts, op_names
from portable_deblur.deploy.measure import measure_local
from portable_deblur.models.unet import build_unet


def test_op_inventory_of_a_hand_checked_model(tmp_path):
    model = build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=1, upsampler="bilinear")
    flat = to_tflite(model, (16, 16))
    # enc0 conv, pool, mid conv, resize, 1x1 conv, concat, dec conv, out conv, residual add
    assert op_counts(flat) == {"ADD": 1, "CONCATENATION": 1, "CONV_2D": 5, "MAX_POOL_2D": 1, "RESIZE_BILINEAR": 1}
    path = atomic_write(RunLayout.artifact(tmp_path, "fp32", (16, 16)), flat)
    assert path.name == "fp32_16x16.tflite" and op_names(path) == op_names(flat)


def test_measure_runs_in_a_subprocess(tmp_path):
    path = atomic_write(tmp_path / "m.tflite", to_tflite(build_unet(width=4, enc_blocks=[1], dec_blocks=[1]), (32, 32)))
    lat = measure_local(path, threads=1, warmup=1, runs=5)
    assert lat.runs == 5 and lat.threads == 1
    assert 0 < lat.min_ms <= lat.median_ms <= lat.p90_ms
    assert lat.peak_rss_mb > 10 and 0 <= lat.model_rss_mb < lat.peak_rss_mb


def test_a_slow_artifact_stops_timing_at_the_time_budget(tmp_path):
    from portable_deblur.deploy.measure import time_interpreter

    path = atomic_write(tmp_path / "m.tflite", to_tflite(build_unet(width=4, enc_blocks=[1], dec_blocks=[1]), (32, 32)))
    assert time_interpreter(path, 1, warmup=5, runs=50, max_seconds=1e-6, retries=0).runs == 3  # at least 3 runs
    assert time_interpreter(path, 1, warmup=1, runs=4, retries=0).runs == 4
    small = time_interpreter(path, 1, warmup=1, runs=2)  # a batch takes the 3 runs the figures need at once
    # Another batch of 3 follows only while the earlier ones hold fewer than 3 undisturbed runs (a loaded CI host
    # retried once): so every batch is 3 runs, and a retried measurement's earlier batches were short of clean runs.
    assert small.runs == 3 * small.attempts and (small.attempts == 1 or small.clean_runs < 3 + 3)


def test_runs_that_waited_for_a_cpu_are_left_out_retried_and_flagged(tmp_path, monkeypatch):
    """Another process taking a CPU shows as run-queue wait of the timed threads: those runs do not count."""
    from portable_deblur.deploy import measure as m, timing

    path = atomic_write(tmp_path / "m.tflite", to_tflite(build_unet(width=4, enc_blocks=[1], dec_blocks=[1]), (32, 32)))
    state = {"run": 0, "queued": 0, "disturbed": lambda i: i % 2 == 1}

    def invoke(_):  # every other run "waits 30 ms for a CPU" and takes 50 ms instead of 10
        state["run"] += 1
        slow = state["disturbed"](state["run"])
        state["queued"] += 30_000_000 if slow else 0
        return 50.0 if slow else 10.0

    monkeypatch.setattr(timing, "invoke_ms", invoke)
    monkeypatch.setattr(timing, "queued_ns", lambda: state["queued"])
    monkeypatch.setattr(m.time, "sleep", lambda s: None)
    lat = m.time_interpreter(path, 1, warmup=1, runs=10)
    assert lat.median_ms == 10.0 and lat.p90_ms == 10.0
    assert (lat.runs, lat.clean_runs, lat.attempts, lat.disturbed) == (10, 5, 1, "")
    state.update(run=0, disturbed=lambda i: i % 10 != 0)  # 1 run in 10 undisturbed: retried, then flagged
    lat = m.time_interpreter(path, 1, warmup=1, runs=10, retries=2)
    assert lat.attempts == 3 and lat.runs == 30 and lat.clean_runs == 3 and lat.median_ms == 10.0
    assert lat.disturbed == ""  # 3 undisturbed runs over the batches are enough for a figure
    state.update(run=0, disturbed=lambda i: True)
    lat = m.time_interpreter(path, 1, warmup=1, runs=5, retries=1)
    assert lat.attempts == 2 and lat.clean_runs == 0 and "0 of 10 runs undisturbed after 2 batches" in lat.disturbed
    assert lat.idle_share is not None and lat.others_cpu is not None


def test_the_waiting_search_process_is_idle_while_a_child_measures(tmp_path):
    """Measured, not assumed: the parent's CPU use while the measuring child runs (after TensorFlow is loaded
    in it, as in a search)."""
    from portable_deblur.backend import tf  # noqa: F401  (the search process has TensorFlow's pools)

    path = atomic_write(tmp_path / "m.tflite", to_tflite(build_unet(width=4, enc_blocks=[1], dec_blocks=[1]), (32, 32)))
    lat = measure_local(path, threads=1, warmup=1, runs=20000)  # ~1 s of inference: the spawn is small beside it
    assert lat.parent_cpu is not None and lat.parent_cpu < 0.1  # a spinning pool would hold a core (1.0)


def test_measure_failure_names_the_file(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="measuring .*broken.tflite failed"):
        measure_local(bad, runs=1)


def test_pad_restore_crop_and_identity_baseline(tiny_dataset):
    pairs = tiny_dataset.val
    canvas = canvas_shape(pairs, 8)
    assert canvas[0] % 8 == 0 and canvas[0] >= pairs[0].blurry.shape[0]
    out = restore(lambda x: x, pairs[0].blurry, canvas)
    assert out.shape == pairs[0].blurry.shape
    q = quality(lambda x: x, pairs, canvas)
    assert q.psnr == pytest.approx(blurry_quality(pairs).psnr)
    assert blurry_quality(pairs) is blurry_quality(pairs)  # computed once per validation set, kept
    assert list(blurry_quality(pairs[:1]).per_image) == list(blurry_quality(pairs).per_image)[:1]  # another set: its own
    same_q, same = quality_and_fidelity(lambda x: x, lambda x: x, pairs, canvas)
    assert same.l2 == 0 and same.psnr == float("inf") and same_q == q
    darker = lambda x: x * 0.9  # noqa: E731
    darker_q, off = quality_and_fidelity(lambda x: x, darker, pairs, canvas)
    assert darker_q == quality(darker, pairs, canvas)  # the one-pass quality is the plain one
    expected = np.mean([np.mean((np.clip(restore(lambda x: x, p.blurry, canvas), 0, 1)
                                 - np.clip(restore(darker, p.blurry, canvas), 0, 1)) ** 2) for p in pairs])
    assert off.l2 == pytest.approx(expected) and off.psnr < 45
    kept = []  # the reference's outputs kept from its own judging stand in for running it again
    assert quality(lambda x: x, pairs, canvas, keep=kept) == q and len(kept) == len(pairs)
    assert quality_and_fidelity(kept, darker, pairs, canvas) == (darker_q, off)


def test_a_judged_model_keeps_its_outputs_for_the_fidelity_check_only_while_they_fit(tiny_dataset, tiny_cfg, tmp_path,
                                                                                      monkeypatch):
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.optimize.plan import TRAINED
    from portable_deblur.train import judge

    candidate = expand(tiny_cfg.arch, tiny_cfg.model, tiny_cfg.grid)[0]
    model = build_model(candidate)
    t = judge.judged(candidate, model, tiny_cfg, tiny_dataset, tmp_path, TRAINED)
    assert len(t.outputs) == len(tiny_dataset.val)
    np.testing.assert_array_equal(t.outputs[0], restore(lambda x: model(x, training=False).numpy(),
                                                        tiny_dataset.val[0].blurry, t.canvas))
    monkeypatch.setattr(judge, "KEPT_OUTPUTS_MB", 0)  # frames too many to hold: the model runs again instead
    assert judge.judged(candidate, model, tiny_cfg, tiny_dataset, tmp_path, TRAINED).outputs == ()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a.tflite"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # not bytes: the write fails midway
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tflite"]
