"""Benchmark: the embedded dataset's blur, as a new user gets it.

Prints the generation time, the validation set's blurry PSNR (target: 24-28 dB, where real GoPro test frames
sit) with every photo's and every image's value, the training pairs' blurry PSNR, and the brightness change
from sharp to blurry (real GoPro-style pairs keep their mean brightness; linear-light averaging brightens).

    python benchmarks/embedded_data.py [key=value overrides, e.g. data.blur_space=linear data.seed=1]
"""
import sys
import time
from collections import defaultdict

import numpy as np


def main() -> int:
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.train.evaluate import image_quality

    cfg = load_config(sys.argv[1:])
    import portable_deblur.backend  # noqa: F401  (TensorFlow's import is not data generation)

    start = time.perf_counter()
    ds = load_dataset(cfg.data)
    seconds = time.perf_counter() - start
    pixels = sum(p.shape[0] * p.shape[1] for p in (*ds.train, *ds.val)) / 1e6
    print(f"generated {len(ds.train)} training + {len(ds.val)} validation pairs ({pixels:.1f} Mpx) in {seconds:.1f} s "
          f"(blur_space={cfg.data.blur_space}, lengths {list(cfg.data.blur_length)} px, rotation {cfg.data.rotation}, "
          f"zoom {cfg.data.zoom}, seed {cfg.data.seed})")
    for split, pairs in (("validation", ds.val), ("training", ds.train)):
        per_photo = defaultdict(list)
        shift = []
        for p in pairs:
            per_photo[p.name.rsplit("_", 1)[0]].append(image_quality(p.sharp, p.blurry)[0])
            shift.append(p.blurry.astype(np.float64).mean() / 255 - p.sharp.astype(np.float64).mean() / 255)
        values = [v for vs in per_photo.values() for v in vs]
        verdict = " (target 24-28 dB: " + ("in range)" if 24 <= np.mean(values) <= 28 else "OUT OF RANGE)") \
            if split == "validation" else ""
        print(f"\n{split}: blurry PSNR {np.mean(values):.2f} dB{verdict}; mean brightness change "
              f"sharp->blurry {np.mean(shift):+.4f}")
        for photo, vs in per_photo.items():
            print(f"  {photo:22} {np.mean(vs):6.2f} dB  ["
                  + " ".join(f"{v:.2f}" for v in vs) + "]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
