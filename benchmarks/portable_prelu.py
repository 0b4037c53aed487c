"""Benchmark: the portable PReLU (``activation=prelu_portable``) against TFLite's PRELU, fp32 and int8.

Trains the default space's depth_to_space U-Net once per activation (``prelu``, ``prelu_portable``, ``relu``
for reference; the space's recipe, ``train.steps`` overridable), converts each to fp32 and int8 (PTQ,
calibrated on training crops) at the first measured size, times all six files interleaved on XNNPACK
(medians and spread over rounds) and prints validation PSNR of every file, which ops XNNPACK left on
TFLite's reference kernels, and the int8 / fp32 latency ratio.

    python benchmarks/portable_prelu.py [key=value ...]     # e.g. train.steps=100 for a quick look
"""
import sys
import tempfile
import time
from pathlib import Path

ACTIVATIONS = ("prelu", "prelu_portable", "relu")


def main(argv=None) -> int:
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.measure import measure_interleaved
    from portable_deblur.deploy.portability import xnnpack_delegation
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.files import atomic_write
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import candidate_at
    from portable_deblur.records import LatencyKey
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality
    from portable_deblur.train.fit import fit, seed_everything

    cfg = load_config(["space=upsampling", *(sys.argv[1:] if argv is None else argv)])
    ds = load_dataset(cfg.data)
    shape, threads = cfg.measure.shapes[0], cfg.measure.threads[0]
    folder, files, psnr = Path(tempfile.mkdtemp(prefix="portable_prelu_")), [], {}
    print(f"validation blurry PSNR {blurry_quality(ds.val)[0]:.2f} dB; {cfg.train.steps} steps each; "
          f"timing at {LatencyKey(*shape, threads)}", flush=True)
    for act in ACTIVATIONS:
        candidate = candidate_at(cfg.arch, cfg.model, {"upsampler": "depth_to_space", "activation": act})
        seed_everything(cfg.train.seed, cfg.train.jit_compile)
        model = build_model(candidate)
        start = time.perf_counter()
        fit(model, ds.train, cfg.train, desc=act)
        canvas = canvas_shape(ds.val, size_multiple(candidate))
        print(f"{act}: trained in {time.perf_counter() - start:.0f} s", flush=True)
        for mode in ("fp32", "int8"):
            rep = representative_inputs(ds.train, shape, cfg.optimize.representative_count, cfg.data.seed)
            path = atomic_write(folder / f"{act}_{mode}.tflite", to_tflite(model, shape, mode, rep))
            evaluated = to_tflite(model, canvas, mode, representative_inputs(
                ds.train, canvas, cfg.optimize.representative_count, cfg.data.seed))
            psnr[path.stem] = quality(predictor(evaluated, threads), ds.val, canvas).psnr
            xnn = xnnpack_delegation(path)
            print(f"  {mode}: PSNR {psnr[path.stem]:.3f} dB; XNNPACK took {xnn['delegated_nodes']}/{xnn['nodes']} "
                  f"nodes, left {xnn['undelegated_ops'] or 'none'}", flush=True)
            files.append(path)
    stats = {p.stem: s for p, s in zip(files, measure_interleaved(files, cfg.measure, threads, rounds=5))}
    print(f"\n{'activation':16} {'fp32 ms':>8} {'int8 ms':>8} {'int8/fp32':>9} {'fp32 dB':>8} {'int8 dB':>8}  spread")
    for act in ACTIVATIONS:
        f, i = stats[f"{act}_fp32"], stats[f"{act}_int8"]
        print(f"{act:16} {f['interleaved_median_ms']:8.2f} {i['interleaved_median_ms']:8.2f} "
              f"{i['interleaved_median_ms'] / f['interleaved_median_ms']:9.2f} {psnr[f'{act}_fp32']:8.3f} "
              f"{psnr[f'{act}_int8']:8.3f}  {f['interleaved_spread']:.2f} / {i['interleaved_spread']:.2f}")
    old, new = stats["prelu_int8"]["interleaved_median_ms"], stats["prelu_portable_int8"]["interleaved_median_ms"]
    print(f"\nint8 prelu_portable is {old / new:.2f}x faster than int8 prelu; PSNR difference (portable - prelu): "
          f"fp32 {psnr['prelu_portable_fp32'] - psnr['prelu_fp32']:+.3f} dB, "
          f"int8 {psnr['prelu_portable_int8'] - psnr['prelu_int8']:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
