"""Training: seeded runs repeat exactly, loss goes down, losses on hand-made inputs."""
import dataclasses

import numpy as np
import pytest

from portable_deblur.backend import tf
from portable_deblur.data.pipeline import crop_batch
from portable_deblur.train.losses import LOSSES, charbonnier, get_loss, l1
from portable_deblur.registry import ConfigError
from portable_deblur.train.fit import fit, seed_everything
from portable_deblur.models.unet import build_unet


def test_losses_on_hand_made_inputs():
    a = tf.constant([[0.0, 1.0], [0.5, 0.5]])
    b = tf.constant([[0.5, 1.0], [0.5, 0.0]])
    assert float(l1(a, b)) == pytest.approx(0.25)
    assert float(charbonnier(a, b, eps=0.0)) == pytest.approx(0.25)
    assert float(charbonnier(a, a)) == pytest.approx(1e-3)
    assert sorted(LOSSES) == ["charbonnier", "l1", "psnr"]
    with pytest.raises(ConfigError, match=r"train.loss must be one of \['charbonnier', 'l1', 'psnr'\]; got 'l2'"):
        get_loss("l2")


def test_psnr_and_fft_losses_on_hand_made_inputs():
    from portable_deblur.train.losses import fft_l1, psnr

    sharp = tf.zeros([2, 4, 4, 3])
    off = tf.fill([2, 4, 4, 3], 0.1)  # MSE 0.01 -> PSNR 20 dB -> loss -20
    assert float(psnr(sharp, off)) == pytest.approx(-20.0, abs=1e-4)
    image = tf.random.stateless_uniform([1, 8, 8, 3], seed=[1, 2])
    assert float(fft_l1(image, image)) == 0.0  # identical images: no frequency error
    # A constant offset changes only the DC term: |0.1 * 64 pixels| in 1 of 8*5*2 real/imag entries per channel.
    assert float(fft_l1(image, image + 0.1)) == pytest.approx(0.1 * 64 / (8 * 5 * 2), rel=1e-4)
    combined = get_loss("charbonnier", fft_weight=0.01)
    assert float(combined(image, image + 0.1)) == pytest.approx(
        float(charbonnier(image, image + 0.1)) + 0.01 * float(fft_l1(image, image + 0.1)), rel=1e-6)


def test_a_student_nearly_equal_to_its_teacher_is_taught_no_more_steeply_than_the_teacher_learns():
    """Sandwich steps distil the narrower paths from the widest one's output. Against the plain PSNR loss a
    student within 1e-4 of its teacher (every path of a fresh residual supernet is) gets a gradient ~1/MSE,
    which swamps the teacher's own; the distillation loss is floored by the teacher's error to the sharp frame."""
    from portable_deblur.train.losses import get_distillation_loss, psnr

    sharp = tf.random.stateless_uniform([2, 8, 8, 3], seed=[3, 4])
    teacher = sharp + 0.03 * tf.random.stateless_normal([2, 8, 8, 3], seed=[5, 6])  # ~30 dB
    student = tf.Variable(teacher + 1e-4 * tf.random.stateless_normal([2, 8, 8, 3], seed=[7, 8]))
    taught = tf.Variable(teacher)

    def gradient_norm(loss, variable):
        with tf.GradientTape() as tape:
            value = loss(variable)
        return float(tf.norm(tape.gradient(value, variable)))

    own = gradient_norm(lambda t: psnr(sharp, t), taught)  # what the teacher learns from the sharp frame
    plain = gradient_norm(lambda s: psnr(teacher, s), student)
    bounded = gradient_norm(lambda s: get_distillation_loss("psnr")(sharp, teacher, s), student)
    assert plain > 100 * own  # the collapse the floor prevents
    assert bounded < own
    # the distillation value reads as a PSNR loss: the teacher's own at the teacher, and lower is closer
    distil = get_distillation_loss("psnr")
    assert float(distil(sharp, teacher, teacher)) == pytest.approx(float(psnr(sharp, teacher)), abs=1e-3)
    assert float(distil(sharp, teacher, teacher + 0.05)) > float(distil(sharp, teacher, teacher))
    # other losses distil with themselves against the teacher, the FFT term too
    image = teacher + 0.1
    assert float(get_distillation_loss("l1", 0.01)(sharp, teacher, image)) == pytest.approx(
        float(get_loss("l1", 0.01)(teacher, image)), rel=1e-6)
    with pytest.raises(ConfigError, match="train.loss must be one of"):
        get_distillation_loss("l2")


def _model():
    return build_unet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], middle_blocks=1, activation="prelu")


def test_same_seed_same_weights(tiny_cfg, tiny_dataset):
    weights = []
    for _ in range(2):  # as trial.run_candidate does: seed, build, train
        seed_everything(tiny_cfg.train.seed, tiny_cfg.train.jit_compile)
        model = _model()
        fit(model, tiny_dataset.train, tiny_cfg.train)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_training_lowers_the_loss_below_the_identity(tiny_cfg, tiny_dataset):
    cfg = dataclasses.replace(tiny_cfg.train, steps=80, batch_size=4, learning_rate=1e-3)  # from scratch
    model = _model()
    blurry, sharp = crop_batch(tiny_dataset.train, 123, 16, 32)
    before = float(l1(sharp, model(blurry)))  # zero-initialised residual: the identity
    result = fit(model, tiny_dataset.train, cfg)
    after = float(l1(sharp, model(blurry)))
    assert result.steps == 80 and np.isfinite(result.final_loss)
    assert after < before


def test_a_loss_far_worse_than_the_first_steps_is_called_diverged():
    from portable_deblur.train.losses import diverged

    assert diverged("l1", 0.06, 2e8) and diverged("l1", 0.06, 0.61) and not diverged("l1", 0.06, 0.5)
    assert diverged("charbonnier", 0.05, 0.6) and not diverged("charbonnier", 0.05, 0.04)
    # the PSNR loss is minus a PSNR in dB: an error ten times the first's is 10 dB up
    assert diverged("psnr", -25.0, -14.0) and not diverged("psnr", -25.0, -16.0) and not diverged("psnr", -25.0, -30.0)


def test_a_finite_blow_up_stops_training_naming_the_steps_and_what_to_change(tiny_cfg, tiny_dataset, monkeypatch):
    from portable_deblur.train import fit as train

    calls = tf.Variable(0.0, trainable=False)

    def growing(*args):  # the L1 loss times 1, 2, 3, ... per step: finite, soon 10x the first window's
        def loss(sharp, restored):
            calls.assign_add(1.0)
            return l1(sharp, restored) * calls
        return loss

    monkeypatch.setattr(train, "get_loss", growing)
    cfg = dataclasses.replace(tiny_cfg.train, steps=60, log_every=5, loss="l1", learning_rate=1e-4)
    with pytest.raises(FloatingPointError, match=r"training diverged: mean l1 loss [0-9.e+]+ over steps \d+-\d+, "
                       r"against [0-9.e+-]+ over this run's first 5; try a lower train.learning_rate \(now 0.0001\) "
                       r"or a longer train.warmup_steps"):
        fit(_model(), tiny_dataset.train, cfg)
    assert 10 < float(calls.numpy()) < 60  # stopped when a window crossed it: after the first two, before the end


def test_crop_larger_than_images_is_a_clear_error(tiny_cfg, tiny_dataset):
    with pytest.raises(ConfigError, match=r"train.crop=500 is larger than the smallest training image"):
        fit(_model(), tiny_dataset.train, dataclasses.replace(tiny_cfg.train, crop=500))


def test_mirrored_strategy_path_trains_like_the_default_one(tiny_cfg, tiny_dataset):
    """``train.distribute=mirrored`` on a one-device machine (CI): the distributed step (batch split per
    replica, gradients summed) reaches the same weights as the plain step."""
    from portable_deblur.train.fit import strategy_for

    weights = []
    for mode in ("none", "mirrored"):
        cfg = dataclasses.replace(tiny_cfg.train, distribute=mode, steps=5)
        seed_everything(cfg.seed, cfg.jit_compile)
        strategy = strategy_for(cfg)
        with strategy.scope():
            model = _model()
        result = fit(model, tiny_dataset.train, cfg, strategy=strategy)
        assert np.isfinite(result.final_loss)
        weights.append(model.get_weights())
    assert isinstance(strategy, tf.distribute.MirroredStrategy) and strategy.num_replicas_in_sync == 1
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(*weights))


def test_training_in_pieces_from_a_checkpoint_equals_training_at_once(tiny_cfg, tiny_dataset, tmp_path):
    """Weights, optimizer state and step resume from ``checkpoint``; the batches are a function of the step."""
    cfg = dataclasses.replace(tiny_cfg.train, steps=6)
    seed_everything(cfg.seed, cfg.jit_compile)
    straight = _model()
    fit(straight, tiny_dataset.train, cfg)
    seed_everything(cfg.seed, cfg.jit_compile)
    first = _model()
    assert fit(first, tiny_dataset.train, cfg, checkpoint=tmp_path, stop_at=3).steps == 3
    second = _model()  # a fresh process would build it anew; the checkpoint brings everything back
    assert fit(second, tiny_dataset.train, cfg, checkpoint=tmp_path).steps == 6
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(straight.get_weights(), second.get_weights()))


def test_warm_start_loads_the_saved_weights_and_names_a_mismatch(tiny_dataset, tmp_path):
    from portable_deblur.models.supernet import inherit
    from portable_deblur.train.start import init_file, saved_table

    def warm_start(model, path):
        inherit(model, saved_table(path), {}, f"train.init={str(path)!r}")

    source = _model()
    source.set_weights([w + 0.5 for w in source.get_weights()])
    (tmp_path / "cand").mkdir()
    source.save(tmp_path / "cand" / "model.keras")
    assert init_file(str(tmp_path), "cand") == tmp_path / "cand" / "model.keras"
    assert init_file(str(tmp_path / "cand"), "other") == tmp_path / "cand" / "model.keras"
    target = _model()
    warm_start(target, tmp_path / "cand" / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), target.get_weights()))
    wider = build_unet(width=8, enc_blocks=[1, 1], dec_blocks=[1, 1], middle_blocks=1, activation="prelu")
    with pytest.raises(ConfigError, match=r"does not fit this candidate: its first mismatch is layer 'enc0_blk0_conv\w*', weights \[\(3, 3, \d+, 8\)"):
        warm_start(wider, tmp_path / "cand" / "model.keras")
    with pytest.raises(ConfigError, match="holds no model.keras for candidate 'x'"):
        init_file(str(tmp_path / "missing"), "x")


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_exports_the_same_float32_file(tiny_cfg, tiny_dataset, precision, tmp_path):
    """16-bit compute while training; evaluation and export get a float32 twin with the same weights, so
    the .tflite is the one a float32 model with those weights gives."""
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_counts
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.train.fit import as_float32, precision_policy

    cfg = dataclasses.replace(tiny_cfg.train, steps=3, precision=precision)
    with precision_policy(precision):
        model = _model()
    assert model.layers[1].compute_dtype != "float32"
    result = fit(model, tiny_dataset.train, cfg)
    assert np.isfinite(result.final_loss)
    export = as_float32(model)
    assert {layer.compute_dtype for layer in export.layers} == {"float32"}
    reference = _model()
    reference.set_weights(model.get_weights())
    x = crop_batch(tiny_dataset.train, 0, 1, 32)[0]
    assert np.allclose(export(x).numpy(), reference(x).numpy(), atol=1e-6)
    ours, theirs = to_tflite(export, (32, 32)), to_tflite(reference, (32, 32))
    folder = tmp_path
    (folder / "a.tflite").write_bytes(ours)
    (folder / "b.tflite").write_bytes(theirs)
    assert op_counts(folder / "a.tflite") == op_counts(folder / "b.tflite")
    assert "CAST" not in op_counts(folder / "a.tflite") and "DEQUANTIZE" not in op_counts(folder / "a.tflite")
    assert np.allclose(predictor(folder / "a.tflite")(x), reference(x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_gpu_training_benchmark_runs_on_cpu_with_tiny_settings(tmp_path, capsys):
    """benchmarks/gpu_training.py is meant for a GPU box; on CI's CPU it must still run end to end."""
    import importlib.util

    from portable_deblur.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("gpu_training", REPO_ROOT / "benchmarks" / "gpu_training.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("default U-Net", "NAFNet-16-18", "mixed_float16", "mixed_bfloat16", "TFLOP/s", "validation: blurry"):
        assert line in out, line
    assert (tmp_path / "unet__activation-relu__upsampler-depth_to_space" / "model.keras").is_file()
