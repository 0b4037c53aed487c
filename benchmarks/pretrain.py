"""Benchmark and maker of the pretrained start the package ships (``portable_deblur/pretrained/``): the
default space's supernet (every upsampler x activation of ``space=upsampling`` in one weight-sharing U-Net)
trained long on the embedded data, one path per step.

Trains in pieces of ``--piece`` steps in ``--work`` (each piece checkpointed: the same command resumes an
interrupted or finished run and continues it), until ``--steps`` or ``--minutes`` of training in this session,
then writes ``<out>/upsampling.npz`` (the weight table) and ``upsampling.json`` (config, steps, seconds,
CPU seconds, machine, seed, every path's validation gain per camera pipeline, SHA-256, this command) and
prints the gains.

The recipe: the from-scratch space's learning rate (3e-4) after a 500-step warm-up, then constant
(``train.final_lr_ratio=1``), so a run can be continued without a schedule that restarts; give
``train.final_lr_ratio`` to decay it by a cosine over the planned ``--steps`` instead (a resumed run keeps the
same schedule). ``train.init`` names a start to continue (``pretrained``: the start the package ships, or
any weight table); the new record keeps the start's record under ``continued_from`` and adds its steps and
seconds. Runs unchanged on a GPU machine (TensorFlow places the steps there).

The shipped start is 19,000 steps of this recipe in float32 (``train.precision=float32``; ``auto`` now picks
bfloat16 where the CPU has it), the best-validating snapshot of a 69,000-step run. Longer training has not
validated better on the embedded data (measured on the validation frames, whole): 69,000 steps at the
constant rate +0.01..+0.09 dB per path (the start: +0.22..+0.26); 90 % dead-leaves crops with a cosine over
80,000 steps -0.32..-0.37 at 35,000 (while gaining +1.03 on dead-leaves crops and +0.17 on 96-px crops of the
validation photographs); continuing the start at 1e-5 decaying, 96-px crops, +0.18..+0.19 after 22,000 more;
at 192-px crops +0.24 after 1,000 and 4,000 more, +0.14..+0.20 after 16,000 (94.7 CPU-min in all). A cosine
over 70,000 steps from scratch with ``data.colour_shuffle=true``: +0.04..+0.09 (it sharpens the defocused
background of a validation photo); continued with textures among the photos and then with leaves defocused up
to 12 px (``data.leaves_defocus=12``): +0.23..+0.26 straight from the weights (134 CPU-min), but the default
run's 300-step fine-tune from it ends below the shipped start's (docs/benchmarks.md has the figures).

    python benchmarks/pretrain.py --steps 19000 train.precision=float32    # the shipped start
    python benchmarks/pretrain.py --steps 16000 train.init=pretrained train.learning_rate=1e-5 train.warmup_steps=0 train.final_lr_ratio=0.01 train.crop=192
    python benchmarks/pretrain.py --steps 70000 --work W1 --out O1 train.final_lr_ratio=0.01 data.colour_shuffle=true
    python benchmarks/pretrain.py --steps 15000 --work W2 --out O2 train.init=O1/upsampling.npz train.learning_rate=1e-4 train.warmup_steps=200 train.final_lr_ratio=0.01 data.colour_shuffle=true "data.train_images=[astronaut,rocket,china,flower,grace_hopper,brick,grass,gravel]" data.leaves_share=0.3
    python benchmarks/pretrain.py --steps 15000 --work W3 --out O3 train.init=O2/upsampling.npz train.learning_rate=1e-4 train.warmup_steps=200 train.final_lr_ratio=0.01 data.colour_shuffle=true "data.train_images=[astronaut,rocket,china,flower,grace_hopper,brick,grass,gravel]" data.leaves_defocus=12
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["search.rungs=[]", "train.final_lr_ratio=1.0", "train.warmup_steps=500", "search.weight_sharing=supernet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=19_000,
                        help="stop at this many steps (a decaying rate decays over them; default %(default)s)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training this session (the same command continues it)")
    parser.add_argument("--piece", type=int, default=1000, help="steps between checkpoints")
    parser.add_argument("--work", default=str(ROOT / "experiments/runs/pretrain-upsampling"))
    parser.add_argument("--out", default=str(ROOT / "portable_deblur/pretrained"))
    parser.add_argument("overrides", nargs="*", help="config overrides (key=value) on top of the recipe")
    args = parser.parse_args()

    from portable_deblur import environment
    from portable_deblur.backend import tf
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.pretrained import NAME, record_file, sha256, table_file
    from portable_deblur.search.weight_sharing import RECORD, TABLE, train_supernet

    cfg = load_config(["space=upsampling_scratch", *RECIPE, *args.overrides])
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    before = {}
    if cfg.train.init:  # a continued start: its own record goes into the new one
        from portable_deblur.models.pretrained import read_record
        from portable_deblur.train.start import configured_start

        before = {"continued_from": {k: v for k, v in read_record(configured_start(cfg.train.init, candidates[0].id).path).items()
                                     if k not in ("config", "machine")}}
    # what reproduces the weights: the planned steps (they set the schedule) and the overrides; not the folders
    command = " ".join(["python benchmarks/pretrain.py", f"--steps {args.steps}", *args.overrides])
    record = train_supernet(cfg, work, load_dataset(cfg.data), candidates, steps=args.steps, save_every=args.piece,
                            minutes=args.minutes, extra={
                                "command": command, "recipe": RECIPE + args.overrides,
                                "config": {"model": cfg.model, "grid": cfg.grid,
                                           "train": {**cfg.train.__dict__, "steps": args.steps},  # the schedule's length
                                           "data": cfg.data.__dict__},
                                "machine": environment.describe(),
                                "gpus": [d.name for d in tf.config.list_physical_devices("GPU")], **before})
    out = table_file(Path(args.out), NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / TABLE, out)
    record["sha256"] = sha256(out)
    record_file(out).write_text(json.dumps(record, indent=1, default=str) + "\n")
    (work / RECORD).unlink(missing_ok=True)  # the work folder stays resumable, not "done"
    print(f"{record['steps']} steps, {record['seconds'] / 60:.1f} min ({record['cpu_seconds'] / 60:.1f} CPU-min); "
          f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    print(f"{'path':52} {'gain':>7} " + " ".join(f"{k[5:]:>7}" for k in next(iter(record["paths"].values())) if k.startswith("gain_")))
    for cid, figures in record["paths"].items():
        print(f"{cid:52} {figures['gain']:+7.3f} " + " ".join(f"{v:+7.3f}" for k, v in figures.items() if k.startswith("gain_")))


if __name__ == "__main__":
    main()
