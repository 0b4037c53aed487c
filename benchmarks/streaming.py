"""Benchmark: the streaming input pipeline on folder datasets of 1280x720 PNG pairs.

Generates a paired tree in a temp dir (200 distinct pairs made from the embedded photos; the 2,000-pair tree
repeats them as hard links, so the files cost no extra disk: every file is still listed, checked and decoded
like a real one), then, for each tree size in a fresh process: listing time, input throughput in crops/s
(``train.batch_size`` x ``train.crop``, ``train.crops_per_pair``) and the peak RSS of the whole process
(target < 2 GB). Beside it, the training step rate of the default U-Net and of NAFNet-16 on this machine, as
crops/s the trainer consumes: the input must not be the bottleneck.

    python benchmarks/streaming.py [--pairs 200 2000] [--batches 40] [--crops-per-pair 1 4]
    python benchmarks/streaming.py --tiny   # smoke scale: 4 pairs of 64x96 frames, a width-4 U-Net
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_tree(root: Path, distinct: int, total: int, shape=(720, 1280)) -> Path:
    """``<root>/train/{blurry,sharp}/seq/*.png`` (and a small val split) of ``shape`` (1280x720) pairs."""
    import imageio.v3 as iio

    from portable_deblur.data.blur import blur_image, shake_path
    from portable_deblur.config import load_config
    from portable_deblur.data.content import NATURAL_PHOTOS, photo

    cfg = load_config([]).data
    photos = [photo(name, 768) for name in NATURAL_PHOTOS]
    rng = np.random.default_rng(0)
    for split, count in (("train", total), ("val", 4)):
        for side in ("blurry", "sharp"):
            (root / split / side / "seq").mkdir(parents=True, exist_ok=True)
        for i in range(min(count, distinct)):
            photo = photos[i % len(photos)]
            reps = (-(-shape[0] // photo.shape[0]), -(-shape[1] // photo.shape[1]), 1)
            sharp = np.ascontiguousarray(np.tile(photo, reps)[:shape[0], :shape[1]])
            sharp = np.roll(sharp, (i * 37, i * 53), (0, 1))
            path = shake_path(rng, float(np.exp(rng.uniform(*np.log(cfg.blur_length)))), sharp.shape[:2])
            iio.imwrite(root / split / "sharp" / "seq" / f"{i:05d}.png", sharp)
            iio.imwrite(root / split / "blurry" / "seq" / f"{i:05d}.png", blur_image(sharp, path, rng, 0.01))
        for i in range(distinct, count):  # the same bytes under new names
            for side in ("blurry", "sharp"):
                os.link(root / split / side / "seq" / f"{i % distinct:05d}.png", root / split / side / "seq" / f"{i:05d}.png")
    return root


def stream(root: str, batch: int, crop: int, crops_per_pair: int, batches: int) -> dict:
    """In this process: list the tree, stream ``batches`` batches; seconds, crops/s and peak RSS."""
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.data.pipeline import batches as make_batches

    start = time.perf_counter()
    ds = load_dataset(load_config(["data.source=paired", f"data.root={root}"]).data)
    listed = time.perf_counter() - start
    data = make_batches(ds.train, batch, crop, crops_per_pair, count=batches + 2)
    it = iter(data)
    next(it), next(it)  # start-up (threads, first decodes) is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    return {"pairs": len(ds.train), "list_s": listed, "crops_per_s": batches * batch / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def training_crops_per_s(overrides, batch: int, crop: int, steps: int = 5) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_training import step_rate  # the GPU benchmark's public step timer

    rate, _, _ = step_rate(overrides, "float32", batch, crop, steps=steps)
    return rate * batch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--crops-per-pair", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: 4 small pairs, a width-4 U-Net")
    args = parser.parse_args(argv)
    shape, smoke, steps = (720, 1280), [], 5
    if args.tiny:
        from portable_deblur.config.smoke import SMOKE

        args.pairs, args.batches, args.batch, args.crop, args.crops_per_pair = [4], 2, 2, 32, [1]
        shape, smoke, steps = (64, 96), SMOKE, 1
    if args.child:
        root, batch, crop, per_pair, count = args.child
        print(json.dumps(stream(root, int(batch), int(crop), int(per_pair), int(count))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trees = {n: make_tree(Path(tmp) / f"tree{n}", min(args.pairs), n, shape) for n in args.pairs}
        print(f"generated {args.pairs} pair trees of {shape[1]}x{shape[0]} PNGs in {time.perf_counter() - start:.0f} s")
        for n, root in trees.items():
            for per_pair in args.crops_per_pair:
                out = subprocess.run([sys.executable, __file__, "--child", str(root), str(args.batch), str(args.crop),
                                      str(per_pair), str(args.batches)], capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr[-2000:])
                    return 1
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{r['pairs']:5d} pairs, crops_per_pair {per_pair}: listed in {r['list_s']:.1f} s, "
                      f"{r['crops_per_s']:7.1f} crops/s ({args.batch}x{args.crop}px), peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"({'under' if r['peak_rss_mb'] < 2048 else 'OVER'} 2 GB)")
    networks = (("default U-Net", ["space=upsampling", "grid.upsampler=[depth_to_space]", "grid.activation=[relu]"]),
                ("NAFNet-16", ["space=nafnet", "grid.width=[16]", "grid.enc_blocks=[[1,1,1,4]]"]))
    for label, overrides in networks[:1] if args.tiny else networks:  # smoke scale: the U-Net alone
        print(f"training consumes {training_crops_per_s([*overrides, *smoke], args.batch, args.crop, steps):7.1f} crops/s: {label} "
              f"(batch {args.batch}, {args.crop} px, this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
