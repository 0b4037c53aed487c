"""Benchmark: the embedded data as a new user gets it -- blur strength, brightness per camera pipeline, and
whether rendering every training crop afresh keeps up with training on this machine.

Prints:
- the validation frames' blurry PSNR per pipeline and photo (real GoPro test frames sit at 24-28 dB);
- the brightness change sharp -> blurry per pipeline beside the real datasets' (GoPro ``blur``: +-0.001;
  REDS: +0.018..+0.034 on 8 measured 720p pairs), on the validation frames and on fresh training crops;
- crops/s rendered in one thread and through the training input pipeline, and what the input costs a step:
  a ``train.fit`` of the default U-Net and of NAFNet-16 on fresh crops against the same fit on one fixed,
  pre-rendered batch (interleaved, medians), as ms per step and % of the step.

    python benchmarks/embedded_data.py [--steps 60] [key=value overrides, e.g. data.blur_space=srgb data.seed=1]
    python benchmarks/embedded_data.py --tiny   # smoke scale: every step runs, the figures mean nothing
"""
import argparse
import dataclasses
import sys
import time
from collections import defaultdict

import numpy as np

REAL = {"srgb": "GoPro blur +-0.001", "linear": "REDS +0.018..+0.034"}


def brightness(ds, cfg) -> None:
    from portable_deblur.data.pipeline import crop_batch
    from portable_deblur.train.evaluate import image_quality

    per = defaultdict(lambda: defaultdict(list))
    for p in ds.val:
        per[p.pipeline][p.name.rsplit("_", 2)[0]].append(image_quality(p.sharp, p.blurry)[0])
    for space in per:
        shift = [(p.blurry.mean() - p.sharp.mean()) / 255 for p in ds.val if p.pipeline == space]
        fresh = dataclasses.replace(ds.train, blur_space=space)
        crops = [crop_batch(fresh, i, 8, cfg.train.crop) for i in range(12)]
        train_shift = np.mean([(b.mean() - s.mean()) for b, s in crops])
        values = [v for vs in per[space].values() for v in vs]
        print(f"{space:6}: validation blurry PSNR {np.mean(values):.2f} dB; brightness sharp->blurry validation "
              f"{np.mean(shift):+.4f} (frames {min(shift):+.4f}..{max(shift):+.4f}), fresh training crops "
              f"{train_shift:+.4f}; real: {REAL.get(space, '')}")
        for photo, vs in per[space].items():
            print(f"    {photo:20} {np.mean(vs):6.2f} dB  [" + " ".join(f"{v:.2f}" for v in vs) + "]")


def render_rate(train, crop: int, batch: int, count: int = 30) -> tuple:
    """(crops/s in this thread, crops/s through ``pipeline.batches``)."""
    from portable_deblur.data.pipeline import batches, crop_batch

    crop_batch(train, 10 ** 6, batch, crop)  # fills the photo caches
    start = time.perf_counter()
    for i in range(count):
        crop_batch(train, i, batch, crop)
    single = count * batch / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in batches(train, batch, crop, start=count, count=count):
        pass
    return single, count * batch / (time.perf_counter() - start)


def step_cost(arch_args, train, cfg, steps: int, rounds: int = 3) -> dict:
    """Seconds a step of ``train.fit`` on fresh crops vs on one fixed batch (no rendering), interleaved."""
    from portable_deblur.data import pipeline
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.train import fit as fit_module

    candidate = expand(*arch_args)[0]
    fixed = pipeline.crop_batch(train, 0, cfg.batch_size, cfg.crop)
    run_cfg = dataclasses.replace(cfg, steps=steps, log_every=steps)
    fresh_s, fixed_s = [], []
    original = pipeline.crop_batch
    for _ in range(rounds):
        for kind, out in (("fresh", fresh_s), ("fixed", fixed_s)):
            if kind == "fixed":
                fit_module.batches.__globals__["crop_batch"] = lambda *a, **k: fixed
            try:
                out.append(fit_module.fit(build_model(candidate), train, run_cfg).seconds / steps)
            finally:
                fit_module.batches.__globals__["crop_batch"] = original
    return {"fresh": float(np.median(fresh_s)), "fixed": float(np.median(fixed_s)),
            "spread": (min(fresh_s), max(fresh_s), min(fixed_s), max(fixed_s))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    from portable_deblur.config import load_config
    from portable_deblur.config.smoke import SMOKE, tiny_flag
    from portable_deblur.data.sources import load_dataset

    tiny, argv = tiny_flag(sys.argv[1:] if argv is None else argv)
    args, overrides = parser.parse_known_args(argv)
    smoke = SMOKE if tiny else []
    steps, rounds = (2, 1) if tiny else (args.steps, 3)
    cfg = load_config(["space=upsampling", *smoke, *overrides])
    import portable_deblur.backend  # noqa: F401  (TensorFlow's import is not data generation)

    start = time.perf_counter()
    ds = load_dataset(cfg.data)
    print(f"validation: {len(ds.val)} frames of {cfg.data.val_images} in {time.perf_counter() - start:.1f} s "
          f"(training: rendered per crop from {list(cfg.data.train_images)} + dead leaves, share "
          f"{cfg.data.leaves_share}; blur_space={cfg.data.blur_space}, camera_gamma {cfg.data.camera_gamma}, "
          f"lengths {list(cfg.data.blur_length)} px, seed {cfg.data.seed})")
    brightness(ds, cfg)
    single, piped = render_rate(ds.train, cfg.train.crop, cfg.train.batch_size, 2 if tiny else 30)
    print(f"\nrendering {cfg.train.crop}-px crops: {single:.0f} crops/s in one thread, {piped:.0f} through the "
          f"input pipeline (idle trainer)")
    nafnet = load_config(["space=nafnet", *smoke, "grid.width=[4]" if tiny else "grid.width=[16]"])
    networks = (("default U-Net", (cfg.arch, cfg.model, cfg.grid)), ("NAFNet-16", (nafnet.arch, nafnet.model, nafnet.grid)))
    for name, arch_args in networks[:1] if tiny else networks:  # smoke scale: the U-Net alone
        cost = step_cost(arch_args, ds.train, cfg.train, steps, rounds)
        extra = cost["fresh"] - cost["fixed"]
        print(f"{name:14}: {cost['fresh'] * 1000:.0f} ms a step on fresh crops vs {cost['fixed'] * 1000:.0f} on a "
              f"fixed batch: rendering costs {extra * 1000:+.0f} ms ({100 * extra / cost['fixed']:+.0f} % of the step); "
              f"consumes {cfg.train.batch_size / cost['fresh']:.0f} crops/s (spreads fresh "
              f"{cost['spread'][0] * 1000:.0f}-{cost['spread'][1] * 1000:.0f}, fixed "
              f"{cost['spread'][2] * 1000:.0f}-{cost['spread'][3] * 1000:.0f} ms)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
