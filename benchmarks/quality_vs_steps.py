"""Benchmark: does longer training buy quality? The default network trained N steps, validation gain per pipeline.

For every step count, trains one candidate (``--candidate``, default prelu/bilinear: the network the data
measurements were made with) from scratch with its own schedule on the current embedded data (one run per
``--data`` override set), and -- with ``--baseline-commit`` -- on the data of an earlier commit of this repo
(trained there, in a git worktree, by that commit's own code; evaluated here), then prints the Keras gain over
the blurry input on the current validation frames (held-out photos, both camera pipelines) for each, and
per validation photo (both pipelines averaged): an earlier commit's data may have held one of them (the
embedded set before dead leaves trained on coffee).

    python benchmarks/quality_vs_steps.py --steps 1000 4000 16000 --data "" "data.blur_space=srgb" \\
        --baseline-commit 1ee6302
    python benchmarks/quality_vs_steps.py --tiny   # smoke scale: 2 steps, no baseline commit
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run inside the baseline worktree: train with that commit's data and code, save the Keras model.
TRAIN_THERE = """
import sys
from portable_deblur.config import load_config
from portable_deblur.data.sources import load_dataset
from portable_deblur.models.build import build_model
from portable_deblur.models.candidate import expand
from portable_deblur.train.fit import fit, seed_everything
steps, wanted, out = int(sys.argv[1]), dict(kv.split("=") for kv in sys.argv[2].split(",") if kv), sys.argv[3]
cfg = load_config(["space=upsampling", f"train.steps={steps}", "search.rungs=[]"])
candidate = next(c for c in expand(cfg.arch, cfg.model, cfg.grid) if all(str(c.values.get(k)) == v for k, v in wanted.items()))
seed_everything(cfg.train.seed, cfg.train.jit_compile)
model = build_model(candidate)
fit(model, load_dataset(cfg.data).train, cfg.train)
model.save(out)
"""


def gains(model, candidate, val) -> dict:
    from portable_deblur.models.build import size_multiple
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality

    q = quality(lambda x: model(x, training=False).numpy(), val, canvas_shape(val, size_multiple(candidate)))
    blurry = blurry_quality(val)
    photos = {}
    for pair, a, b in zip(val, q.per_image, blurry.per_image):  # a baseline may have trained on a photo
        photos.setdefault(pair.name.rsplit("_", 2)[0], []).append(a - b)
    return {"ranked": q.psnr - blurry.psnr, **{name: q.per_pipeline[name][0] - psnr
                                               for name, (psnr, _) in blurry.per_pipeline.items()},
            **{f"({photo})": sum(v) / len(v) for photo, v in photos.items()}}


def baseline(commit: str, steps: int, wanted: str, folder: Path) -> Path:
    """Train in a worktree of ``commit`` (its own code and data); the saved model's path."""
    tree = folder / f"tree_{commit}"
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
    out = folder / f"baseline_{steps}.keras"
    subprocess.run([sys.executable, "-c", TRAIN_THERE, str(steps), wanted, str(out)], cwd=tree, check=True,
                   env={**__import__("os").environ, "PYTHONPATH": str(tree)})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--candidate", default="activation=prelu,upsampler=bilinear")
    parser.add_argument("--data", nargs="*", default=[""], help="override sets for the current data, e.g. data.blur_space=srgb")
    parser.add_argument("--baseline-commit", help="also train on this commit's data (its code, in a git worktree)")
    parser.add_argument("--tiny", action="store_true", help="smoke scale: 2 steps, width 4, no baseline commit")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    smoke = [o for o in SMOKE if not o.startswith(("train.steps", "search.rungs"))] if args.tiny else []
    if args.tiny:
        args.steps, args.baseline_commit = [2], None
    from portable_deblur.backend import keras
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.layers import CUSTOM_OBJECTS
    from portable_deblur.train.fit import fit, seed_everything

    wanted = dict(kv.split("=") for kv in args.candidate.split(",") if kv)
    default = load_config(["space=upsampling_scratch", *smoke])
    val = load_dataset(default.data).val  # one validation for every row
    candidate = next(c for c in expand(default.arch, default.model, default.grid)
                     if all(str(c.values.get(k)) == v for k, v in wanted.items()))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            for data in args.data:
                cfg = load_config(["space=upsampling_scratch", *smoke, f"train.steps={steps}", "search.rungs=[]",
                                   *data.split()])
                seed_everything(cfg.train.seed, cfg.train.jit_compile)
                model = build_model(candidate)
                start = time.perf_counter()
                fit(model, load_dataset(cfg.data).train, cfg.train, desc=f"{steps} {data}")
                results.append((steps, data or f"current ({cfg.data.blur_space})", time.perf_counter() - start,
                                gains(model, candidate, val)))
                print(results[-1], flush=True)
            if args.baseline_commit:
                start = time.perf_counter()
                saved = baseline(args.baseline_commit, steps, args.candidate, Path(tmp))
                model = keras.models.load_model(saved, custom_objects=CUSTOM_OBJECTS, compile=False)
                results.append((steps, f"commit {args.baseline_commit}", time.perf_counter() - start,
                                gains(model, candidate, val)))
                print(results[-1], flush=True)
    if args.baseline_commit:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)
    print(f"\n{candidate.id}: Keras validation gain over the blurry input (dB), held-out photos")
    for steps, data, seconds, g in results:
        print(f"  {steps:6d} steps  {data:28}  ranked {g['ranked']:+.3f}  "
              + "  ".join(f"{k} {v:+.3f}" for k, v in g.items() if k != "ranked") + f"  ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
