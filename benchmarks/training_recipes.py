"""Benchmark: what a training recipe (or a training length) buys on the validation frames, per camera pipeline.

Trains one candidate (``--candidate``, default the space's first grid point) once per recipe, each recipe a
set of ``key=value`` overrides on ``--space`` (default ``upsampling_scratch``: from the initialisers;
``upsampling``: from the shipped pretrained start), and prints its Keras validation gain over the blurry
input in each camera pipeline (embedded data: sRGB averaging as GoPro's ``blur`` set, linear light as REDS)
and every validation image's gain. Quality against training length:

    python benchmarks/training_recipes.py --candidate activation=prelu,upsampler=bilinear \\
        "train.steps=1000 search.rungs=[]" "train.steps=4000 search.rungs=[]" "train.steps=16000 search.rungs=[]"

Content alone, as the embedded set was before dead leaves and natural photos (12 photos, half of them
greyscale scans and textures, 7 scientific): append ``data.leaves_share=0
data.train_images=[astronaut,coffee,hubble_deep_field,immunohistochemistry,retina,brick,camera,coins,grass,gravel,moon,page]``
to a recipe (the blur is still rendered fresh; the fixed tile pool no longer exists). Data seeds of the
default recipe (float32; the models are built outside any precision policy):

    python benchmarks/training_recipes.py --space upsampling --candidate activation=prelu,upsampler=bilinear \
        "data.seed=0 train.seed=0" "data.seed=1 train.seed=1" "data.seed=2 train.seed=2"

Smoke scale (every step runs, the figures mean nothing): ``python benchmarks/training_recipes.py --tiny``.
"""
import argparse
import sys
import time
from collections import defaultdict

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="", help="searched values, e.g. activation=prelu,upsampler=bilinear")
    parser.add_argument("--space", default="upsampling_scratch",
                        help="the space the recipes override; upsampling: from its pretrained start (train.init)")
    parser.add_argument("recipes", nargs="*", default=[""])
    parser.add_argument("--tiny", action="store_true", help="smoke scale: width 4, 3 steps")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    smoke = SMOKE if args.tiny else []
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import expand
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import fit, seed_everything
    from portable_deblur.train.start import apply_start, configured_start

    wanted = dict(kv.split("=") for kv in args.candidate.split(",") if kv)
    table = []
    for recipe in args.recipes or [""]:
        cfg = load_config([f"space={args.space}", *smoke, "search.rungs=[]", *recipe.split()])
        ds = load_dataset(cfg.data)
        candidate = next(c for c in expand(cfg.arch, cfg.model, cfg.grid)
                         if all(str(c.values.get(k)) == v for k, v in wanted.items()))
        seed_everything(cfg.train.seed, cfg.train.jit_compile)
        model = build_model(candidate)
        apply_start(model, candidate, configured_start(cfg.train.init, candidate.id))
        start = time.perf_counter()
        fit(model, ds.train, cfg.train)
        seconds = time.perf_counter() - start
        val = quality(lambda x: model(x, training=False).numpy(), ds.val, canvas_shape(ds.val, size_multiple(candidate)))
        blurry = blurry_quality(ds.val)
        gains = "; ".join(f"{name} {val.per_pipeline[name][0] - psnr:+.3f} dB" for name, (psnr, _) in blurry.per_pipeline.items())
        print(f"[{recipe or 'space defaults'}] {candidate.id}: {cfg.train.steps} steps in {seconds:.0f} s; validation "
              f"gain {val.psnr - blurry.psnr:+.3f} dB ({gains or 'one pipeline'})", flush=True)
        table.append((recipe or "space defaults", val.psnr - blurry.psnr,
                      {name: val.per_pipeline[name][0] - psnr for name, (psnr, _) in blurry.per_pipeline.items()}))
        per_photo = defaultdict(list)
        for p, a, b in zip(ds.val, val.per_image, blurry.per_image):
            per_photo[p.name.rsplit("_", 1)[0]].append(a - b)
        print("   per photo: " + " ".join(f"{name} {np.mean(v):+.2f}" for name, v in per_photo.items()), flush=True)
    print("\nvalidation gain (dB), ranked frames and per camera pipeline:")
    for recipe, gain, per in table:
        print(f"  {gain:+.3f}  " + "  ".join(f"{name} {g:+.3f}" for name, g in per.items()) + f"  [{recipe}]")
    if len(table) > 1:  # e.g. two data seeds: how far the same recipe's figure moves
        spread = {name: np.ptp([per[name] for _, _, per in table]) for name in table[0][2]}
        print(f"  spread across the recipes: ranked {np.ptp([g for _, g, _ in table]):.3f} dB, "
              + ", ".join(f"{name} {v:.3f}" for name, v in spread.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
