"""Benchmark: training speed on a GPU (float32 vs mixed precision) and one long training of a default candidate.

1. Steps/s of the default U-Net and of NAFNet-16-18 at 256x256, batch 32, for each ``train.precision``; the
   achieved TFLOP/s (6 FLOPs per MAC per image: forward 2, backward 4) against the GPU's dense peak for that
   precision (``--peak-tflops`` overrides the table; on a CPU the peak is not known and is not printed).
2. One training of a default candidate on the realistic embedded data for ``--minutes`` (default 20): its
   validation PSNR gain over the blurry input (Keras and the fp32 .tflite) and the saved weights, which
   ``train.init=<out>/<candidate>`` warm-starts a search from.

    python benchmarks/gpu_training.py [--minutes 20] [--out experiments/runs/gpu_training]
    python benchmarks/gpu_training.py --tiny      # CPU smoke run (the test suite runs this)
"""
import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

# Dense tensor-core peaks, TFLOP/s (NVIDIA data sheets, SXM parts): float32 runs as TF32 on these GPUs.
PEAKS = {"H100": {"float32": 495, "mixed_float16": 989, "mixed_bfloat16": 989},
         "H200": {"float32": 495, "mixed_float16": 989, "mixed_bfloat16": 989},
         "A100": {"float32": 156, "mixed_float16": 312, "mixed_bfloat16": 312}}
DEFAULT_UNET = ["space=upsampling_scratch", "search.rungs=[]", "grid.upsampler=[depth_to_space]", "grid.activation=[relu]"]
NAFNET_16_18 = ["space=nafnet", "grid.width=[16]", "grid.enc_blocks=[[1,1,1,10]]"]  # 13 + 1 + 4 blocks


def _gpu_peak(precision: str, override: float):
    from portable_deblur.backend import tf

    gpus = tf.config.list_physical_devices("GPU")
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "") if gpus else ""
    peak = override or next((p[precision] for key, p in PEAKS.items() if key in name), None)
    return peak, name or "CPU"


def step_rate(overrides, precision: str, batch: int, size: int, steps: int):
    """(steps/s, GMAC per image) of one training step on a fixed batch (the input pipeline excluded)."""
    import numpy as np

    from portable_deblur.backend import tf
    from portable_deblur.models.candidate import expand
    from portable_deblur.config import load_config
    from portable_deblur.train.losses import get_loss
    from portable_deblur.models.macs import count_macs
    from portable_deblur.models.build import build_model
    from portable_deblur.train.fit import make_optimizer, precision_policy

    cfg = load_config(overrides)
    candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
    with precision_policy(precision):
        model = build_model(candidate)
    macs = count_macs(model, (size, size))
    _, optimizer = make_optimizer(cfg.train)
    if precision == "mixed_float16":
        from portable_deblur.backend import keras
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    loss_fn = get_loss("l1")
    x = tf.constant(np.random.default_rng(0).random((batch, size, size, 3), np.float32))

    @tf.function(jit_compile=cfg.train.jit_compile)
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(x, tf.cast(model(x, training=True), tf.float32))
            scaled = optimizer.get_scaled_loss(loss) if precision == "mixed_float16" else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if precision == "mixed_float16":
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for _ in range(3):
        step().numpy()  # trace and warm up
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.numpy()
    return steps / (time.perf_counter() - start), macs / 1e9, candidate.id


def long_training(overrides, minutes: float, out: Path, candidate_id: str):
    """Train one default candidate for ``minutes`` on the embedded data; print its validation gain."""
    from portable_deblur.models.candidate import expand
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.train.fit import fit, seed_everything

    cfg = load_config(["space=upsampling", *overrides])
    candidate = next(c for c in expand(cfg.arch, cfg.model, cfg.grid) if c.id == candidate_id or not candidate_id)
    dataset = load_dataset(cfg.data)
    seed_everything(cfg.train.seed, cfg.train.jit_compile)
    model = build_model(candidate)
    probe = dataclasses.replace(cfg.train, steps=20)  # how many steps fit in the time asked for
    start = time.perf_counter()
    fit(model, dataset.train, probe)
    rate = 20 / (time.perf_counter() - start)
    steps = max(int(rate * minutes * 60), 20)
    seed_everything(cfg.train.seed, cfg.train.jit_compile)
    model = build_model(candidate)
    folder = out / candidate.id
    shutil.rmtree(folder, ignore_errors=True)  # a checkpoint left there would be resumed, not retrained
    start = time.perf_counter()
    fit(model, dataset.train, dataclasses.replace(cfg.train, steps=steps), log_dir=folder / "tensorboard",
        desc=candidate.id, checkpoint=folder / "checkpoint")
    seconds = time.perf_counter() - start
    model.save(folder / "model.keras")
    canvas = canvas_shape(dataset.val, size_multiple(candidate))
    blurry = blurry_quality(dataset.val).psnr
    keras_q = quality(lambda x: model(x, training=False).numpy(), dataset.val, canvas)
    tflite_q = quality(predictor(to_tflite(model, canvas)), dataset.val, canvas)
    print(f"\nlong training: {candidate.id}, {steps} steps in {seconds / 60:.1f} min "
          f"({steps / seconds:.2f} steps/s, batch {cfg.train.batch_size}, crop {cfg.train.crop})")
    print(f"  validation: blurry {blurry:.2f} dB -> Keras {keras_q.psnr:.2f} dB ({keras_q.psnr - blurry:+.2f}), "
          f".tflite {tflite_q.psnr:.2f} dB ({tflite_q.psnr - blurry:+.2f}); per image "
          + " ".join(f"{p:.2f}" for p in tflite_q.per_image))
    print(f"  weights: {folder / 'model.keras'} (warm start: train.init={folder})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None, help="default experiments/runs/gpu_training (--tiny: a temp folder)")
    parser.add_argument("--candidate", default="unet__activation-relu__upsampler-depth_to_space")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--peak-tflops", type=float, default=0.0)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: width 4, 32 px, a few steps")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import smoke_root

    args.out = args.out or (smoke_root() if args.tiny else Path("experiments/runs/gpu_training"))
    tiny = ["model.width=4", "data.max_side=64", "data.train_images=[astronaut]", "data.val_images=[chelsea]",
            "data.leaves_size=64", "data.val_blurs_per_image=1", "train.crop=32", "train.batch_size=2"] \
        if args.tiny else []
    precisions = ("float32", "mixed_float16", "mixed_bfloat16")
    models = (("default U-Net", DEFAULT_UNET, precisions), ("NAFNet-16-18", NAFNET_16_18, precisions))
    if args.tiny:  # every code path once, as small as it goes: the U-Net in each precision, NAFNet in one
        args.batch, args.size, args.steps, args.minutes = 2, 32, 1, 0.01
        models = (models[0], ("NAFNet-16-18", [*NAFNET_16_18, "grid.enc_blocks=[[1,1,1,1]]"], precisions[:1]))
    print(f"{'model':48} {'precision':15} {'steps/s':>8} {'GMAC/img':>9} {'TFLOP/s':>8} {'peak':>6} {'of peak':>8}")
    for label, overrides, precisions in models:
        for precision in precisions:
            rate, gmac, cid = step_rate([*overrides, *tiny], precision, args.batch, args.size, args.steps)
            tflops = 6 * gmac * args.batch * rate / 1e3
            peak, device = _gpu_peak(precision, args.peak_tflops)
            share = f"{100 * tflops / peak:7.1f}%" if peak else "     n/a"
            print(f"{label + ' ' + cid[:30]:48} {precision:15} {rate:8.2f} {gmac:9.2f} {tflops:8.2f} "
                  f"{peak or 'n/a':>6} {share}")
    print(f"device: {device}, batch {args.batch}, {args.size}x{args.size}")
    long_training(tiny, args.minutes, args.out, args.candidate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
