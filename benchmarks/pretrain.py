"""Benchmark and maker of the pretrained start the package ships (``portable_deblur/pretrained/``): the
default space's supernet (every upsampler x activation of ``space=upsampling`` in one weight-sharing U-Net)
trained long on the embedded data, one path per step.

Trains in pieces of ``--piece`` steps in ``--work`` (each piece checkpointed: the same command resumes an
interrupted or finished run and continues it), until ``--steps`` or ``--minutes`` of training in this session,
then writes ``<out>/upsampling.npz`` (the weight table) and ``upsampling.json`` (config, steps, seconds,
CPU seconds, machine, seed, every path's validation gain per camera pipeline, SHA-256, this command) and
prints the gains. The learning rate stays constant after its warm-up (``train.final_lr_ratio=1``), so
training can be continued later without a schedule that restarts; every candidate's own fine-tuning decays
it. Runs unchanged on a GPU machine (TensorFlow places the steps there).

    python benchmarks/pretrain.py --minutes 95
    python benchmarks/pretrain.py --steps 60000          # reproduce the shipped start's step count
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
    parser.add_argument("--steps", type=int, default=1_000_000, help="stop at this many steps")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training this session")
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
    command = "python benchmarks/pretrain.py " + " ".join(a for a in sys.argv[1:])
    record = train_supernet(cfg, work, load_dataset(cfg.data), candidates, steps=args.steps, save_every=args.piece,
                            minutes=args.minutes, extra={
                                "command": command, "recipe": RECIPE + args.overrides,
                                "config": {"model": cfg.model, "grid": cfg.grid, "train": cfg.train.__dict__,
                                           "data": cfg.data.__dict__},
                                "machine": environment.describe(),
                                "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]})
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
