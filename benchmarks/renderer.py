"""Benchmark: training crops rendered per second by each camera-shake renderer (``data.renderer``).

The embedded source renders every training crop: a shake path over a training frame, its sub-frames
resampled and summed (``blur.render_subframes``), noise and 8-bit encoding. ``numpy`` does the sums on the
CPU; ``tensorflow`` does them in TensorFlow ops on the device TensorFlow places them on -- a GPU where it sees
one, which is what ``auto`` picks there, so a GPU's training steps need not wait on the CPU. This prints, per
renderer and crop size, fresh crops per second (one process, the renderers interleaved in rounds, median and
spread), the device, and the largest difference between the two renderers' sub-frame sums.

    python benchmarks/renderer.py [--crops 64] [--sizes 96 256] [--rounds 3]
    python benchmarks/renderer.py --tiny   # smoke scale
"""
import argparse
import dataclasses
import time

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=64, help="fresh crops per renderer, size and round")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256], help="crop sides (train.crop)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: 2 crops of 32 px, one round")
    args = parser.parse_args(argv)
    if args.tiny:
        args.crops, args.sizes, args.rounds = 2, [32], 1

    from portable_deblur.backend import tf
    from portable_deblur.config import load_config
    from portable_deblur.config.smoke import SMOKE
    from portable_deblur.data.blur import render_subframes, shake_path, to_signal
    from portable_deblur.data.content import photo
    from portable_deblur.data.sources import load_dataset

    cfg = load_config([o for o in SMOKE if o.startswith("data.")] if args.tiny else [])
    scenes = load_dataset(cfg.data).train
    renderers = {name: dataclasses.replace(scenes, renderer=name) for name in ("numpy", "tensorflow")}
    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow places the tensorflow renderer on {'GPU: ' + gpus[0].name if gpus else 'the CPU'}; "
          f"data.renderer=auto picks {'tensorflow' if gpus else 'numpy'} here")
    frame = to_signal(photo(cfg.data.train_images[0], cfg.data.max_side), "linear", cfg.data.camera_gamma)
    path = shake_path(np.random.default_rng(0), 35.0, frame.shape[:2], cfg.data.rotation, cfg.data.zoom)
    window = (0, 0, min(max(args.sizes), frame.shape[0]), min(max(args.sizes), frame.shape[1]))
    gap = np.abs(render_subframes(frame, path, window) - render_subframes(frame, path, window, "tensorflow")).max()
    print(f"largest difference of the sub-frame sums, a 35-px shake over {window[2]}x{window[3]}: {gap:.2e}")
    print(f"\n{'renderer':11} {'crop':>5} {'crops/s':>9} {'spread':>7}")
    for size in args.sizes:
        rates = {name: [] for name in renderers}
        for r in range(args.rounds):  # interleaved: a slow window slows both
            for name, scenes_r in renderers.items():
                rng = np.random.default_rng([r, size])
                clock = time.perf_counter()
                for i in range(args.crops):
                    scenes_r.render(rng, 10 ** 6 * (r + 1) + i, (size, size))
                rates[name].append(args.crops / (time.perf_counter() - clock))
        for name, values in rates.items():
            median = float(np.median(values))
            spread = (max(values) - min(values)) / median if median else 0.0
            print(f"{name:11} {size:5d} {median:9.1f} {spread:7.0%}")


if __name__ == "__main__":
    main()
