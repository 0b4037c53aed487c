"""Benchmark: which training recipe learns the realistic embedded blur within a laptop's step budget.

Trains one default candidate (``space=upsampling``'s first grid point) once per recipe, each recipe a set of
``key=value`` overrides, and prints its Keras validation gain over the blurry input, every validation
image's gain (flat photos such as ``rocket`` show a brightness error first) and the gain on a sample of
training tiles. The data is rendered once per distinct data config.

    python benchmarks/training_recipes.py "train.loss=l1" "train.loss=psnr train.warmup_steps=60"
"""
import sys
import time

import numpy as np


def main(argv=None) -> int:
    from portable_deblur.models.candidate import expand
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, image_quality, quality
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.train.fit import fit, seed_everything

    recipes = list(sys.argv[1:] if argv is None else argv) or [""]
    datasets = {}
    for recipe in recipes:
        cfg = load_config(["space=upsampling", *recipe.split()])
        key = repr(cfg.data)
        if key not in datasets:
            datasets[key] = load_dataset(cfg.data)
        ds = datasets[key]
        candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
        seed_everything(cfg.train.seed, cfg.train.jit_compile)
        model = build_model(candidate)
        start = time.perf_counter()
        fit(model, ds.train, cfg.train)
        seconds = time.perf_counter() - start
        predict = lambda x: model(x, training=False).numpy()  # noqa: E731
        multiple = size_multiple(candidate)
        val = quality(predict, ds.val, canvas_shape(ds.val, multiple))
        blurry = [image_quality(p.sharp, p.blurry)[0] for p in ds.val]
        tiles = ds.train[::16]
        train_gain = quality(predict, tiles, canvas_shape(tiles, multiple)).psnr - blurry_quality(tiles)[0]
        print(f"[{recipe or 'space defaults'}] {candidate.id}: {cfg.train.steps} steps in {seconds:.0f} s; "
              f"validation {val.psnr:.3f} dB, gain {val.psnr - np.mean(blurry):+.3f}; training tiles "
              f"{train_gain:+.3f}", flush=True)
        print("   per image: " + " ".join(f"{p.name} {a - b:+.2f}" for p, a, b in zip(ds.val, val.per_image, blurry)),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
