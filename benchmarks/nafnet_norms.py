"""Benchmark: what each NAFNet norm costs in PSNR and buys in latency, per precision and frame size.

NAFNet-16-9 (``space=nafnet_portable``'s width-16 candidate: TLC with depthwise box filters) trained
``--steps`` from its initialiser once per norm (``layer``, ``scaled_layer``, ``batch``), with the same seed and
data. For each: the fp32, full int8 and per-layer mixed files (the mixed plan chosen at the first size), their
PSNR on the whole validation frames (paired against the first norm's fp32, LayerNorm's by default, with its
interval), their latency at every ``--sizes`` timed interleaved in this one process (median of ``--rounds``
rounds, spread), the speed-up of int8 and mixed over the same norm's fp32, the ops XNNPACK leaves to TFLite's
reference kernels, the share of MACs LiteRT's GPU accelerator takes (measured where a Vulkan adapter exists)
and the largest LayerNorm sum of squares on calibration frames at the last size (against fp16's 65504).

    python benchmarks/nafnet_norms.py --steps 1600 --sizes 256x256 720x1280
    python benchmarks/nafnet_norms.py --tiny   # smoke scale: every step runs, the figures mean nothing
"""
import argparse
import dataclasses
import tempfile
from pathlib import Path

NORMS = ("layer", "scaled_layer", "batch")


def _size(text: str):
    return tuple(int(v) for v in text.split("x"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--sizes", nargs="+", default=["256x256", "720x1280"], help="HxW of the timed files")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--norms", nargs="+", default=list(NORMS), choices=NORMS)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: width 8, the batch norm, 2 steps, timed at the 64-px canvas")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    smoke = [o for o in SMOKE if not o.startswith("measure.resolutions")] if args.tiny else []
    if args.tiny:
        args.steps, args.rounds, args.norms = 2, 1, ["batch"]
        smoke += ["optimize.representative_count=2", "optimize.mixed_max_tries=1"]
    sizes = [_size(s) for s in args.sizes]

    from portable_deblur.confidence import paired_difference
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.flatbuffer import op_inventory
    from portable_deblur.deploy.fp16_range import FP16_MAX, peaks
    from portable_deblur.deploy.gpu import measure_placement
    from portable_deblur.deploy.measure import measure_interleaved
    from portable_deblur.deploy.portability import mac_fraction, scale_refusals, xnnpack_nodes
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import expand
    from portable_deblur.optimize.mixed import Calibrated, plan_for
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import fit, seed_everything

    width = 8 if args.tiny else 16
    cfg = load_config(["space=nafnet_portable", *smoke, f"train.steps={args.steps}",
                       "measure.resolutions=[" + ",".join(f"[{h},{w}]" for h, w in sizes) + "]"])
    dataset = load_dataset(cfg.data)
    if args.tiny:  # time the validation canvas itself: its files are converted once, for PSNR and latency
        sizes = [canvas_shape(dataset.val, 2 ** len(cfg.model["enc_blocks"]))]
        args.sizes = [f"{h}x{w}" for h, w in sizes]
    blurry = blurry_quality(dataset.val).psnr
    rows, files = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for norm in args.norms:
            candidate = next(c for c in expand(cfg.arch, cfg.model, cfg.grid)
                             if c.kwargs["width"] == width and c.kwargs["norm"] == norm)
            seed_everything(cfg.train.seed, cfg.train.jit_compile)
            model = build_model(candidate)
            fit(model, dataset.train, dataclasses.replace(cfg.train, steps=args.steps), desc=candidate.id)
            canvas = canvas_shape(dataset.val, size_multiple(candidate))
            folder = Path(tmp) / norm
            folder.mkdir()
            plan = plan_for(model, cfg, dataset, sizes[0], folder)
            rep = lambda s: representative_inputs(dataset.train, s, cfg.optimize.representative_count, cfg.data.seed)  # noqa: E731
            convert = {"fp32": lambda s: to_tflite(model, s), "int8": lambda s: to_tflite(model, s, "int8", rep(s)),
                       "mixed": lambda s: Calibrated(model, s, rep(s)).quantize(plan.islands, plan.ops)
                       if plan.islands else file_of("int8", s)}  # no island: the int8 file itself
            made = {}  # (precision, shape) -> file: the validation canvas may be a timed size too
            file_of = lambda label, s: made[label, s] if (label, s) in made else made.setdefault(  # noqa: E731
                (label, s), convert[label](s))
            frames = [x for [x] in representative_inputs(dataset.train, sizes[-1], 2, cfg.data.seed)()]
            squares = max((p.value for p in peaks(model, frames) if p.kind == "sum of squares"), default=0.0)
            for label in convert:
                q = quality(predictor(file_of(label, canvas)), dataset.val, canvas, ssim=False)
                row = {"norm": norm, "file": label, "psnr": q.psnr, "per_image": q.per_image, "squares": squares,
                       "islands": len(plan.islands) if label == "mixed" else 0, "ms": {}, "spread": {}}
                for size in sizes:
                    path = folder / f"{label}_{size[0]}x{size[1]}.tflite"
                    path.write_bytes(file_of(label, size))
                    files.append((row, size, path))
                first = folder / f"{label}_{sizes[0][0]}x{sizes[0][1]}.tflite"
                original, taken, _, names = xnnpack_nodes(first.read_bytes())
                why = scale_refusals(first.read_bytes())
                row["slow_nodes"] = [(d["op_name"], names[d["outputs"][0]], why.get(names[d["outputs"][0]], ""))
                                     for i, d in enumerate(original) if i not in taken]
                row["slow_ops"] = sorted({op for op, _, _ in row["slow_nodes"]})
                placement = measure_placement(first)
                row["gpu_macs"] = None if placement is None else mac_fraction(op_inventory(first), list(placement.rejected))
                rows.append(row)
        for size in sizes:  # one interleaved timing per size: every norm and precision in the same window
            timed = [(row, path) for row, s, path in files if s == size]
            for (row, _), t in zip(timed, measure_interleaved([p for _, p in timed], cfg.measure,
                                                               cfg.measure.threads[0], args.rounds)):
                row["ms"][size], row["spread"][size] = t["interleaved_median_ms"], t["interleaved_spread"]

    reference = next(r for r in rows if r["norm"] == args.norms[0] and r["file"] == "fp32")
    fp32 = {r["norm"]: r for r in rows if r["file"] == "fp32"}
    head = "".join(f" {f'{h}x{w} ms':>14} {'x fp32':>7}" for h, w in sizes)
    print(f"\n{'norm':13} {'file':6} {'PSNR':>7} {'gain':>7} {f'vs {args.norms[0]} fp32 [95%]':>26}{head} "
          f"{'GPU MACs':>9} {'islands':>8}  slow ops on XNNPACK")
    for r in rows:
        d = paired_difference(r["per_image"], reference["per_image"])
        timing = "".join(f" {r['ms'][s]:8.2f} ±{r['spread'][s]:4.0%} {fp32[r['norm']]['ms'][s] / r['ms'][s]:7.2f}"
                         for s in sizes)
        gpu = "n/a" if r["gpu_macs"] is None else f"{r['gpu_macs']:.0%}"
        print(f"{r['norm']:13} {r['file']:6} {r['psnr']:7.3f} {r['psnr'] - blurry:+7.3f} "
              f"{d.estimate:+8.3f} [{d.low:+.3f}, {d.high:+.3f}]{timing} {gpu:>9} {r['islands']:8d}  "
              f"{' '.join(r['slow_ops']) or '-'}")
    print(f"(PSNR over {len(reference['per_image'])} validation frames; latency at {cfg.measure.threads[0]} threads, "
          f"median of {args.rounds} interleaved rounds, ± spread; x fp32 > 1: faster than that norm's fp32 file; "
          f"GPU MACs: share on LiteRT's GPU accelerator at {args.sizes[0]}, n/a without a Vulkan adapter)")
    for r in rows:  # which layers: the ops above name kinds, a refused int8 ADD/MUL is a scale check on one node
        for op, name, why in r["slow_nodes"]:
            print(f"{r['norm']:13} {r['file']:6} on TFLite's reference kernel: {op:20} -> {name}  {why}")
    for norm in args.norms:
        print(f"{norm:13} largest LayerNorm sum of squares at {args.sizes[-1]}: {fp32[norm]['squares']:.3g} "
              f"({fp32[norm]['squares'] / FP16_MAX:.1%} of fp16's 65504)")


if __name__ == "__main__":
    main()
