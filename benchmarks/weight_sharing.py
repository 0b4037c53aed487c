"""Benchmark: does one weight-sharing supernet rank a grid as training each network on its own does?

Side by side on one machine, the networks of ``space=upsampling`` (six op choices), or with ``--elastic`` eight
U-Nets that differ in width (8, 12, 16, 24) and depth (one or two blocks per level):
- stand-alone: each trained ``--steps`` N from its initialiser (the space's recipe, one schedule each);
- supernet, per path-sampling rule (``--rules``: fair, uniform, sandwich): the grid's supernet trained on as
  many paths as the stand-alone networks together (N per network; a sandwich step trains 2 +
  ``search.sandwich_random`` paths, so it takes that many times fewer steps), then every candidate extracted
  and fine-tuned ``--fine-tune`` steps (the space's recipe for a trained start; the rest uses
  ``space=upsampling_scratch``'s recipe).
Prints each network's validation PSNR gain (Keras, ranked frames, and per camera pipeline) under each, and
per rule: Kendall tau of the PSNR rankings against stand-alone (before and after fine-tuning), whether the
stand-alone top-2 are the supernet's top-2, the hypervolume of both PSNR x latency fronts (latency: each
network's fp32 .tflite timed interleaved once, the same file in both), and the wall time of each; and each
pair of rules paired frame by frame (per network and averaged over them, with the interval of
``rank.confidence``), so choosing one rule over another rests on a difference beyond its interval.
``--repeat-seed S`` trains the stand-alone networks a second time from seed S (``train.seed`` and
``data.seed``): the tau between the two stand-alone rankings is the most any ranking can agree with one of
them, since the reference itself moves that much with the seed.

    python benchmarks/weight_sharing.py --steps 600 --fine-tune 200 --rules fair uniform
    python benchmarks/weight_sharing.py --steps 2000 --rules --repeat-seed 1    # the reference's own tau
    python benchmarks/weight_sharing.py --elastic --steps 600 --rules sandwich fair --repeat-seed 1
    python benchmarks/weight_sharing.py --tiny   # smoke scale: every step runs, the figures mean nothing
"""
import argparse
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="stand-alone steps per network (N)")
    parser.add_argument("--fine-tune", type=int, default=200, help="steps each extracted candidate fine-tunes")
    parser.add_argument("--rules", nargs="*", default=["fair", "uniform"], help="path-sampling rules (none: no supernet)")
    parser.add_argument("--repeat-seed", type=int, default=None,
                        help="also train the stand-alone networks from this train.seed and data.seed")
    parser.add_argument("overrides", nargs="*", help="config overrides (key=value)")
    parser.add_argument("--elastic", action="store_true",
                        help="eight U-Nets of four widths x two depths (bilinear, relu) instead of six op choices")
    parser.add_argument("--tiny", action="store_true", help="smoke scale: two width-4 networks, 2 steps each")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    if args.elastic:
        args.overrides = ["grid.width=[8,12,16,24]", "grid.enc_blocks=[[1,1,1,1],[2,2,2,2]]", "model.dec_blocks=null",
                          "grid.upsampler=[bilinear]", "grid.activation=[relu]", *args.overrides]
    if args.tiny:
        args.steps, args.fine_tune, args.rules = 2, 1, ["sandwich", "fair"] if args.elastic else ["fair", "uniform"]
        args.overrides = [*(o for o in SMOKE if not o.startswith("search.rungs")),
                          "grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]", *args.overrides,
                          *(["grid.width=[4,8]", "grid.enc_blocks=[[1,1],[1,2]]", "model.enc_blocks=[1,1]"]
                            if args.elastic else [])]

    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.measure import measure_interleaved
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.supernet import inherit, read_table
    from portable_deblur.rank import hypervolume, pareto_front
    from portable_deblur.report.rungs import kendall_tau
    from portable_deblur.layout import RunLayout
    from portable_deblur.search.weight_sharing import train_supernet
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import fit, seed_everything

    # Stand-alone and shared training from scratch use the space's from-scratch recipe; fine-tuning the
    # extracted candidates uses the space's own (the recipe for a trained start).
    cfg = load_config(["space=upsampling_scratch", "search.rungs=[]", *args.overrides])
    tune_cfg = load_config(["space=upsampling", *args.overrides])
    dataset = load_dataset(cfg.data)
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    blurry = blurry_quality(dataset.val)
    canvas = canvas_shape(dataset.val, max(size_multiple(c) for c in candidates))

    ranked = np.array([getattr(p, "ranked", True) for p in dataset.val])

    def gains(model):
        q = quality(lambda x: model(x, training=False).numpy(), dataset.val, canvas)
        return {"gain": q.psnr - blurry.psnr, "frames": np.asarray(q.per_image)[ranked],
                **{name: psnr - blurry.per_pipeline[name][0] for name, (psnr, _) in q.per_pipeline.items()}}

    def train(model, steps, recipe=None, data=None):
        fit(model, (data or dataset).train, dataclasses.replace((recipe or cfg).train, steps=steps, init=None))
        return model

    def stand_alone(recipe, data, label):
        clock, scores = time.perf_counter(), {}
        for c in candidates:
            seed_everything(recipe.train.seed, recipe.train.jit_compile)
            scores[c.id] = gains(train(build_model(c), args.steps, recipe, data))
            print(f"{label} {c.id}: {scores[c.id]['gain']:+.3f} dB", flush=True)
        results[label], seconds[label] = scores, time.perf_counter() - clock
        return scores

    results, seconds = {}, {}
    alone = stand_alone(cfg, dataset, "stand-alone")
    if args.repeat_seed is not None:  # the validation frames stay the same: data.seed moves training data only
        seeds = [f"train.seed={args.repeat_seed}", f"data.seed={args.repeat_seed}"]
        again = load_config(["space=upsampling_scratch", "search.rungs=[]", *args.overrides, *seeds])
        stand_alone(again, load_dataset(again.data), f"stand-alone seed {args.repeat_seed}")

    with tempfile.TemporaryDirectory() as tmp:
        shapes = cfg.measure.shapes[0]
        paths = []
        for c in candidates:
            paths.append(Path(tmp) / f"{c.id}.tflite")
            paths[-1].write_bytes(to_tflite(build_model(c), shapes))
        latency = {c.id: s["interleaved_median_ms"] for c, s in
                   zip(candidates, measure_interleaved(paths, cfg.measure, cfg.measure.threads[0], 1 if args.tiny else 5))}

        for rule in args.rules:
            clock = time.perf_counter()
            folder = Path(tmp) / rule
            rcfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, path_sampling=rule))
            per_step = 2 + cfg.search.sandwich_random if rule == "sandwich" else 1  # paths a step trains
            steps = max(1, args.steps * len(candidates) // per_step)
            train_supernet(rcfg, folder, dataset, candidates, steps=steps, save_every=steps)
            table = read_table(RunLayout.weight_table(folder))
            shared, tuned = {}, {}
            for c in candidates:
                seed_everything(cfg.train.seed, cfg.train.jit_compile)
                model = build_model(c)
                inherit(model, table, c.kwargs, "the supernet")
                shared[c.id] = gains(model)
                tuned[c.id] = gains(train(model, args.fine_tune, tune_cfg))
            results[f"{rule} supernet"] = shared
            results[f"{rule} + fine-tune"], seconds[f"{rule} + fine-tune"] = tuned, time.perf_counter() - clock

    ids = [c.id for c in candidates]
    pipelines = [k for k in alone[ids[0]] if k not in ("gain", "frames")]
    print(f"\n{'network':50} {'ms':>6} " + " ".join(f"{name:>22}" for name in results))
    for cid in ids:
        cells = " ".join(f"{results[n][cid]['gain']:+7.3f} (" + "/".join(f"{results[n][cid][p]:+.2f}" for p in pipelines)
                         + ")" for n in results)
        print(f"{cid:50} {latency[cid]:6.1f} {cells}")
    print(f"(gain in dB over the blurry input on the ranked frames; in brackets: {'/'.join(pipelines)})\n")

    def front_hv(scores):
        points = [(scores[cid]["gain"], latency[cid]) for cid in ids]
        front = [points[i] for i in pareto_front(points, (True, False))]
        return hypervolume(front, (0.0, 1.1 * max(latency.values())), (True, False))

    top2 = set(sorted(ids, key=lambda i: -alone[i]["gain"])[:2])
    print(f"{'':24} {'tau vs stand-alone':>18} {'top-2 kept':>11} {'hypervolume':>12} {'wall s':>8}")
    for name, scores in results.items():
        tau = kendall_tau([alone[i]["gain"] for i in ids], [scores[i]["gain"] for i in ids])
        kept = set(sorted(ids, key=lambda i: -scores[i]["gain"])[:2]) == top2
        wall = seconds.get(name, float("nan"))
        print(f"{name:24} {tau:+18.2f} {str(kept):>11} {front_hv(scores):12.3f} {wall:8.0f}")
    n = len(ids)
    print(f"\nstand-alone: {n} x {args.steps} steps" + (f"; each supernet: {n * args.steps} paths trained (a sandwich "
          f"step trains {2 + cfg.search.sandwich_random}) + {n} x {args.fine_tune} fine-tuning (its wall time "
          f"includes both)" if args.rules else ""))
    print_rule_differences(results, ids, cfg.rank.confidence)


def print_rule_differences(results, ids, level: float) -> None:
    """Each pair of rules at the same stage (straight from the supernet, fine-tuned), paired frame by frame:
    per network, and averaged over the networks (each frame's difference averaged over the networks first, so
    the interval is over frames). A difference whose interval holds 0 is a tie."""
    from portable_deblur.confidence import paired_difference

    for stage in ("supernet", "+ fine-tune"):
        names = [n for n in results if n.endswith(stage) and not n.startswith("stand-alone")]
        for a, b in itertools.combinations(names, 2):
            print(f"\n{a} minus {b}, paired on {len(results[a][ids[0]]['frames'])} frames [{level:.0%}]:")
            for cid in ids:
                d = paired_difference(results[a][cid]["frames"], results[b][cid]["frames"], level)
                print(f"  {cid:50} {d.text('+.3f', ' dB')}")
            mean = [np.mean([results[n][cid]["frames"] for cid in ids], axis=0) for n in (a, b)]
            print(f"  {'all networks':50} {paired_difference(*mean, level).text('+.3f', ' dB')}")


if __name__ == "__main__":
    main()
