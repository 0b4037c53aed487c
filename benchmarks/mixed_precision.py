"""Benchmark: per-layer mixed precision against whole-network fp32 and int8, for both families.

NAFNet-16-9 (``space=nafnet``'s width-16, 9-block candidate, with its LayerNorms and TLC pooling) trained
``--nafnet-steps`` from its initialiser, and default U-Nets (``space=upsampling``) from the shipped pretrained
start fine-tuned ``--unet-steps``. For each network: its fp32 file, the full int8 file (PTQ) and the mixed
file (``optimize.ptq=[mixed]``: the plan ``optimize/mixed.py`` chooses at 256x256), each judged on the whole
validation frames (the deployed PSNR, as every row) and timed interleaved in this one process (median of
``--rounds`` round-robin rounds, spread). Then the islands chosen and the per-layer error table (the layers
quantization damages most, and those XNNPACK leaves on TFLite's own kernels) of one NAFNet and one U-Net
int8 file.

    python benchmarks/mixed_precision.py --nafnet-steps 1600 --unet-steps 300
    python benchmarks/mixed_precision.py --tiny   # smoke scale: every step runs, the figures mean nothing
"""
import argparse
import dataclasses
import tempfile
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nafnet-steps", type=int, default=1600)
    parser.add_argument("--unet-steps", type=int, default=300)
    parser.add_argument("--unets", nargs="+", default=["relu/transpose", "prelu/bilinear", "prelu/depth_to_space"],
                        help="activation/upsampler of the default U-Nets to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shape", default="256x256", help="HxW of the timed files and of the plan")
    parser.add_argument("--tiny", action="store_true", help="smoke scale: one width-4 U-Net, 32 px, 2 steps")
    args = parser.parse_args(argv)
    from portable_deblur.config.smoke import SMOKE

    smoke = [o for o in SMOKE if not o.startswith("measure.resolutions")] if args.tiny else []
    if args.tiny:
        args.nafnet_steps, args.unet_steps, args.unets, args.rounds, args.shape = 2, 2, ["relu/bilinear"], 1, "32x32"
        smoke += ["optimize.representative_count=2", "optimize.mixed_max_tries=1"]

    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.measure import measure_interleaved
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import expand
    from portable_deblur.optimize.mixed import Calibrated, float_islands, plan_for, undelegated_layers
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import fit, seed_everything
    from portable_deblur.train.start import apply_start, configured_start

    shape = tuple(int(v) for v in args.shape.split("x"))
    networks = []
    nafnet_cfg = load_config(["space=nafnet", *smoke, *(["grid.width=[8]"] if args.tiny else []),
                              f"train.steps={args.nafnet_steps}", f"measure.resolutions=[[{shape[0]},{shape[1]}]]"])
    nafnet = next(c for c in expand(nafnet_cfg.arch, nafnet_cfg.model, nafnet_cfg.grid)
                  if c.kwargs["width"] == (8 if args.tiny else 16) and list(c.kwargs["enc_blocks"]) == [1, 1, 1, 1])
    if not args.tiny:  # smoke scale: the U-Net alone (NAFNet's conversions alone take a minute)
        networks.append((nafnet_cfg, nafnet, args.nafnet_steps, None))
    unet_cfg = load_config(["space=upsampling", *smoke, f"train.steps={args.unet_steps}",
                            f"measure.resolutions=[[{shape[0]},{shape[1]}]]"])
    for wanted in args.unets:
        act, up = wanted.split("/")
        c = next(c for c in expand(unet_cfg.arch, unet_cfg.model, unet_cfg.grid)
                 if c.kwargs["activation"] == act and c.kwargs["upsampler"] == up)
        networks.append((unet_cfg, c, args.unet_steps, configured_start(unet_cfg.train.init, c.id)))

    datasets = {}
    results, files, tables = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg, candidate, steps, start in networks:
            key = repr(cfg.data)
            dataset = datasets[key] if key in datasets else datasets.setdefault(key, load_dataset(cfg.data))
            seed_everything(cfg.train.seed, cfg.train.jit_compile)
            model = build_model(candidate)
            if start is not None:
                apply_start(model, candidate, start)
            fit(model, dataset.train, dataclasses.replace(cfg.train, steps=steps), desc=candidate.id)
            canvas = canvas_shape(dataset.val, size_multiple(candidate))
            folder = Path(tmp) / candidate.id
            folder.mkdir()
            plan = plan_for(model, cfg, dataset, shape, folder)
            rep = lambda s: representative_inputs(dataset.train, s, cfg.optimize.representative_count, cfg.data.seed)  # noqa: E731
            made = {
                "fp32": lambda s: to_tflite(model, s),
                "int8": lambda s: to_tflite(model, s, "int8", rep(s)),
                "mixed": lambda s: Calibrated(model, s, rep(s)).quantize(plan.islands, plan.ops),
            }
            blurry = blurry_quality(dataset.val).psnr
            for label, convert in made.items():
                q = quality(predictor(convert(canvas)), dataset.val, canvas)
                path = folder / f"{label}.tflite"
                path.write_bytes(convert(shape))
                files.append(path)
                results.append({"network": candidate.id, "file": label, "psnr": q.psnr, "gain": q.psnr - blurry,
                                "islands": len(float_islands(path.read_bytes())) if label == "mixed" else 0,
                                "undelegated": sum(len(v) for v in undelegated_layers(path.read_bytes()).values())})
            if candidate.arch not in tables:
                tables[candidate.arch] = (candidate.id, plan, Calibrated(model, shape, rep(shape)).layer_errors(),
                                          undelegated_layers(to_tflite(model, shape, "int8", rep(shape))))
        timing = measure_interleaved(files, unet_cfg.measure, unet_cfg.measure.threads[0], args.rounds)

    for r, t in zip(results, timing):
        r["ms"], r["spread"] = t["interleaved_median_ms"], t["interleaved_spread"]
    fp32 = {r["network"]: r for r in results if r["file"] == "fp32"}
    print(f"\n{'network':58} {'file':6} {'PSNR':>7} {'gain':>7} {'vs fp32':>8} {'ms':>7} {'spread':>7} {'x fp32':>7} "
          f"{'islands':>8} {'slow ops':>9}")
    for r in results:
        base = fp32[r["network"]]
        print(f"{r['network']:58} {r['file']:6} {r['psnr']:7.3f} {r['gain']:+7.3f} {r['psnr'] - base['psnr']:+8.3f} "
              f"{r['ms']:7.2f} {r['spread']:7.1%} {base['ms'] / r['ms']:7.2f} {r['islands']:8d} {r['undelegated']:9d}")
    print(f"(latency at {args.shape}, {unet_cfg.measure.threads[0]} threads, median of {args.rounds} interleaved rounds; "
          "x fp32 > 1: faster than the fp32 file; slow ops: nodes XNNPACK left on TFLite's reference kernels)")
    for arch, (cid, plan, errors, slow) in tables.items():
        print(f"\n{cid}: islands chosen ({len(plan.islands)}):")
        for layer in plan.islands:
            print(f"  {layer:28} {plan.reasons.get(layer, '')}")
        print("  plans tried: " + "; ".join(f"{len(t['islands'])} islands {t['ms']:.1f} ms {t['psnr']:.2f} dB"
                                             + (" (kept)" if t["kept"] else "") for t in plan.tried))
        print(f"{cid}: per-layer error of its int8 file (worst 10) and layers XNNPACK left off:")
        print(f"  {'layer':28} {'rmse/scale':>10}  {'ops':30} undelegated in int8")
        shown = [e for e in errors[:10]] + [e for e in errors[10:] if e["layer"] in slow][:10]
        for e in shown:
            print(f"  {e['layer']:28} {e['rmse_over_scale']:10.2f}  {' '.join(sorted(set(e['ops'])))[:30]:30} "
                  f"{' '.join(slow.get(e['layer'], []))}")


if __name__ == "__main__":
    main()
