"""Benchmark: how long a training run waits for its input pipeline after its last step.

Trains the default network (``space=upsampling``'s first candidate) for ``--steps`` steps with
``train.fit``, once with the product's input (``portable_deblur.data.pipeline.batches``: fixed parallelism,
tf.data's autotuner off) and once with the same map and prefetch left to ``tf.data.AUTOTUNE``, as the
pipeline was before; interleaved over ``--rounds``. The figure is the time from the last step's result to
``fit`` returning. With the autotuner, fits often returned only 20.5 s or 41.0 s after they started whatever
their steps took (sums of periods doubling from 10 ms: we take it for the autotuner's background thread,
which dropping the iterator waited for), so a 100-step fit that trained 21 s could return after 41 s.

    python benchmarks/input_teardown.py [--steps 100] [--rounds 3]
    python benchmarks/input_teardown.py --tiny   # smoke scale, the product's input only (the autotuned one
                                                 # can wait 20 s by itself)
"""
import argparse
import sys
import time

import numpy as np


def autotuned(pairs, batch_size: int, crop: int, count: int):
    """The training input as it was built before: parallel map and prefetch left to tf.data's autotuner."""
    from portable_deblur.backend import tf
    from portable_deblur.data.pipeline import crop_batch

    def load(index):
        blurry, sharp = tf.numpy_function(lambda i: crop_batch(pairs, int(i), batch_size, crop), [index],
                                          (tf.float32, tf.float32), stateful=False)
        return blurry, sharp

    ds = tf.data.Dataset.range(count).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def wait_after_last_step(cfg, pairs, candidate, make_input) -> float:
    """Train ``candidate`` with ``make_input`` as ``fit``'s input; seconds from the last step to the return."""
    import portable_deblur.train.fit as fit_module
    from portable_deblur.models.build import build_model

    made, product_input, last = fit_module.make_step, fit_module.batches, []

    def timed_step(*args):
        step = made(*args)

        def run(blurry, sharp):
            loss = step(blurry, sharp)
            float(loss)
            last[:] = [time.perf_counter()]
            return loss
        return run

    fit_module.make_step, fit_module.batches = timed_step, make_input
    try:
        fit_module.seed_everything(cfg.train.seed, cfg.train.jit_compile)
        fit_module.fit(build_model(candidate), pairs, cfg.train)
        return time.perf_counter() - last[0]
    finally:
        fit_module.make_step, fit_module.batches = made, product_input


def main(argv=None) -> int:
    from portable_deblur.config import load_config
    from portable_deblur.data import pipeline
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.candidate import expand

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="smoke scale, the product's input only")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    if args.tiny:
        args.steps, args.rounds = 2, 1
    cfg = load_config(["space=upsampling", *(SMOKE if args.tiny else []), "search.rungs=[]", f"train.steps={args.steps}"])
    pairs = load_dataset(cfg.data).train
    candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
    inputs = {"fixed (pipeline.batches)": pipeline.batches,
              "autotuned (before)": lambda p, size, crop, per_pair, seed, start, count: autotuned(p, size, crop, count)}
    if args.tiny:
        inputs = dict(list(inputs.items())[:1])
    waits = {name: [] for name in inputs}
    for _ in range(args.rounds):
        for name, make_input in inputs.items():
            waits[name].append(wait_after_last_step(cfg, pairs, candidate, make_input))
    print(f"{candidate.id}, {args.steps} steps, {args.rounds} rounds interleaved: seconds from the last step "
          f"to fit() returning")
    for name, w in waits.items():
        print(f"  {name:26} median {np.median(w):6.2f} s  (each: {', '.join(f'{x:.2f}' for x in w)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
