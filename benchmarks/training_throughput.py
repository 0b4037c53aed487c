"""Benchmark: how near the CPU's peak training runs, in float32 and mixed_bfloat16, and what bfloat16 costs.

On the default network (``space=upsampling``, ``--candidate``), interleaved in one process, per precision:
- the bare training step on one fixed batch (8 x 96 px): ms, and GFLOP/s against this machine's matmul peak
  (a 2048^3 tf.matmul in float32 and bfloat16; a training step counts 3x the forward's 2 x MACs);
- ``train.fit`` on the embedded data: ms a step over ``--fit-steps`` (input rendering included);
- the validation gain after the default run's recipe (the pretrained start, ``train.steps`` of fine-tuning).
With ``--baseline-commit``, also ``train.fit`` of that commit's code (trained there, in a git worktree).
The CPU's bfloat16 instructions and what ``train.precision=auto`` picks here are printed first.

    python benchmarks/training_throughput.py --baseline-commit 4958f04
    python benchmarks/training_throughput.py --tiny   # smoke scale: every step runs, the figures mean nothing
"""
import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("float32", "mixed_bfloat16")

FIT_THERE = """
import sys, time
from portable_deblur.config import load_config
from portable_deblur.data.sources import load_dataset
from portable_deblur.models.build import build_model
from portable_deblur.models.candidate import expand
from portable_deblur.train.fit import fit
steps, wanted = int(sys.argv[1]), dict(kv.split("=") for kv in sys.argv[2].split(","))
cfg = load_config(["space=upsampling", f"train.steps={steps}", "search.rungs=[]"])
c = next(c for c in expand(cfg.arch, cfg.model, cfg.grid) if all(str(c.kwargs[k]) == v for k, v in wanted.items()))
data = load_dataset(cfg.data)
print("RESULT", fit(build_model(c), data.train, cfg.train).seconds / steps * 1000)
"""


def matmul_gflops(dtype, n: int = 2048, repeats: int = 10) -> float:
    from portable_deblur.backend import tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    mm = tf.function(lambda x: tf.matmul(x, x))
    mm(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = mm(a)
    out.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", default="activation=prelu,upsampler=bilinear")
    parser.add_argument("--bare-steps", type=int, default=40)
    parser.add_argument("--fit-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repetitions of each timing")
    parser.add_argument("--baseline-commit", default=None)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: width 4, 2 steps each, no baseline")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    smoke, matmul_n = (SMOKE, 256) if args.tiny else ([], 2048)
    if args.tiny:
        args.bare_steps, args.fit_steps, args.repeats, args.baseline_commit = 2, 2, 1, None

    import numpy as np

    from portable_deblur import environment
    from portable_deblur.backend import tf
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.macs import count_macs
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import make_step, fit, make_optimizer, precision_policy, seed_everything
    from portable_deblur.train.losses import get_loss
    from portable_deblur.train.start import apply_start, configured_start

    cpu = environment.describe()["cpu"]
    print(f"CPU: {cpu['model']}; ISA: {cpu['isa']}; native bfloat16: {environment.native_bfloat16()}; "
          f"train.precision=auto -> {environment.training_precision('auto')}")
    cfg = load_config(["space=upsampling", *smoke])
    wanted = dict(kv.split("=") for kv in args.candidate.split(","))
    candidate = next(c for c in expand(cfg.arch, cfg.model, cfg.grid) if all(str(c.kwargs[k]) == v for k, v in wanted.items()))
    dataset = load_dataset(cfg.data)
    batch, crop = cfg.train.batch_size, cfg.train.crop
    flops = 3 * 2 * count_macs(build_model(candidate), (crop, crop)) * batch
    peak = {"float32": matmul_gflops(tf.float32, matmul_n), "mixed_bfloat16": matmul_gflops(tf.bfloat16, matmul_n)}
    print(f"matmul peak: float32 {peak['float32']:.0f} GFLOP/s, bfloat16 {peak['mixed_bfloat16']:.0f} GFLOP/s; "
          f"a training step of {candidate.id} at {batch} x {crop} px: {flops / 1e9:.1f} GFLOP")

    x = np.random.default_rng(0).random((batch, crop, crop, 3), np.float32)
    y = np.clip(x * 0.95 + 0.02, 0, 1).astype(np.float32)
    bare = {p: [] for p in PRECISIONS}
    fitted = {p: [] for p in PRECISIONS}
    for _ in range(args.repeats):
        for precision in PRECISIONS:
            with precision_policy(precision):
                model = build_model(candidate)
            _, optimizer = make_optimizer(cfg.train)
            optimizer.build(model.trainable_variables)
            step = make_step(model, optimizer, get_loss(cfg.train.loss, 0.0), tf.distribute.get_strategy(), False)
            for _ in range(5):
                step(x, y)
            start = time.perf_counter()
            for _ in range(args.bare_steps):
                loss = step(x, y)
            float(loss)
            bare[precision].append((time.perf_counter() - start) / args.bare_steps * 1000)
            with precision_policy(precision):
                model = build_model(candidate)
            result = fit(model, dataset.train, dataclasses.replace(cfg.train, steps=args.fit_steps, init=None,
                                                                   precision=precision))
            fitted[precision].append(result.seconds / args.fit_steps * 1000)

    baseline = None
    if args.baseline_commit:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", tmp, args.baseline_commit],
                           check=True, capture_output=True)
            try:
                out = subprocess.run([sys.executable, "-c", FIT_THERE, str(args.fit_steps), args.candidate], cwd=tmp,
                                     capture_output=True, text=True, env={"PYTHONPATH": tmp, "PATH": "/usr/bin:/bin"})
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
                baseline = float(line.split()[1]) if line else None
                if baseline is None:
                    print(f"baseline run failed: {out.stderr[-500:]}")
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], capture_output=True)

    blurry = blurry_quality(dataset.val)
    canvas = canvas_shape(dataset.val, 2 ** len(cfg.model["enc_blocks"]))
    gains = {}
    for precision in PRECISIONS:
        seed_everything(cfg.train.seed, cfg.train.jit_compile)
        with precision_policy(precision):
            model = build_model(candidate)
        apply_start(model, candidate, configured_start(cfg.train.init, candidate.id))
        fit(model, dataset.train, dataclasses.replace(cfg.train, precision=precision))
        with precision_policy("float32"):
            twin = build_model(candidate)
        twin.set_weights(model.get_weights())
        q = quality(lambda im: twin(im, training=False).numpy(), dataset.val, canvas)
        gains[precision] = (q.psnr - blurry.psnr, {n: p - blurry.per_pipeline[n][0] for n, (p, _) in q.per_pipeline.items()})

    print(f"\n{'precision':16} {'bare ms':>9} {'GFLOP/s':>8} {'% peak':>7} {'fit ms/step':>12} {'steps/s':>8} "
          f"{'gain dB':>8}  per pipeline")
    for precision in PRECISIONS:
        b, f = statistics.median(bare[precision]), statistics.median(fitted[precision])
        gflops = flops / (b / 1000) / 1e9
        gain, per = gains[precision]
        print(f"{precision:16} {b:9.1f} {gflops:8.1f} {gflops / peak[precision]:7.1%} {f:12.1f} {1000 / f:8.2f} "
              f"{gain:+8.3f}  " + ", ".join(f"{n} {g:+.3f}" for n, g in per.items()))
    print(f"(bare: one fixed batch, {args.bare_steps} steps; fit: {args.fit_steps} steps of train.fit on the embedded "
          f"data, tracing included; medians of {args.repeats} interleaved repeats: bare "
          + ", ".join(f"{p} {min(v):.1f}-{max(v):.1f}" for p, v in bare.items()) + "; fit "
          + ", ".join(f"{p} {min(v):.1f}-{max(v):.1f}" for p, v in fitted.items())
          + f"; gain: the pretrained start + {cfg.train.steps} steps, the exported model float32 either way)")
    if baseline is not None:
        print(f"train.fit at {args.baseline_commit} (a host sync every step), float32: {baseline:.1f} ms/step")


if __name__ == "__main__":
    main()
