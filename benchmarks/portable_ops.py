"""Benchmark: the portable replacements for ops int8 XNNPACK has no kernel for, against the originals.

    python benchmarks/portable_ops.py prelu   [key=value ...]   # activation=prelu vs prelu_portable (vs relu)
    python benchmarks/portable_ops.py pooling [key=value ...]   # NAFNet TLC tlc_pool=average_pool vs depthwise
    python benchmarks/portable_ops.py prelu --tiny               # smoke scale: every step runs

``prelu`` trains the default space's depth_to_space U-Net once per activation (``prelu``, ``prelu_portable``,
``relu`` for reference). ``pooling`` trains ``space=nafnet``'s first network once (TLC's window is 1.5x the
training crop, so training pools globally) and exports it twice with the same weights: TLC's local mean as
AVERAGE_POOL_2D and as the depthwise box filter (``models/layers.py``, LocalAveragePool), identical in float.

Every network is converted to fp32 and int8 (PTQ, calibrated on training crops) at the first measured size;
all files are timed interleaved on XNNPACK (medians and spread over rounds). Prints each file's validation
PSNR, which ops XNNPACK left on TFLite's reference kernels, the int8 / fp32 latency ratio, and how much faster
the portable int8 file runs than the original's. ``train.steps`` and the rest are overridable.
"""
import sys
import tempfile
import time
from pathlib import Path

# study -> (space, the option varied, its values: original first, portable second, then references)
STUDIES = {"prelu": ("upsampling", "activation", ("prelu", "prelu_portable", "relu"), {"upsampler": "depth_to_space"}),
           "pooling": ("nafnet", "tlc_pool", ("average_pool", "depthwise"), {"width": 8, "enc_blocks": [1, 1, 1, 1]})}


def _networks(study: str, cfg, ds, values):
    """{value: trained model}: one training per value for ``prelu``; one shared training for ``pooling``."""
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import candidate_at
    from portable_deblur.train.fit import fit, seed_everything

    _, option, _, fixed = STUDIES[study]
    models, trained = {}, None
    for value in values:
        candidate = candidate_at(cfg.arch, cfg.model, {**fixed, option: value})
        seed_everything(cfg.train.seed, cfg.train.jit_compile)
        model = build_model(candidate)
        if study == "pooling" and trained is not None:  # same function in float: reuse the trained weights
            model.set_weights(trained.get_weights())
        else:
            start = time.perf_counter()
            fit(model, ds.train, cfg.train, desc=value)
            print(f"{value}: trained {cfg.train.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
            trained = model
        models[value] = (model, candidate)
    return models


def main(argv=None) -> int:
    from portable_deblur.config import load_config
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.measure import measure_interleaved
    from portable_deblur.deploy.portability import xnnpack_delegation
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.files import atomic_write
    from portable_deblur.models.build import size_multiple
    from portable_deblur.latency import LatencyKey
    from portable_deblur.registry import lookup
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, quality

    from portable_deblur.config.smoke import SMOKE, tiny_flag

    tiny, args = tiny_flag(sys.argv[1:] if argv is None else argv)
    study = lookup({s: s for s in STUDIES}, "study", args[0] if args else "prelu")
    space, option, values, _ = STUDIES[study]
    values = values[:2] if tiny else values  # smoke scale: the two the ratio compares
    cfg = load_config([f"space={space}", *(SMOKE + ["optimize.representative_count=2"] if tiny else []), *args[1:]])
    ds = load_dataset(cfg.data)
    shape, threads = cfg.measure.shapes[0], cfg.measure.threads[0]
    folder, files, psnr = Path(tempfile.mkdtemp(prefix=f"portable_{study}_")), [], {}
    print(f"{study}: {option} in {list(values)} (space={space}); validation blurry PSNR "
          f"{blurry_quality(ds.val).psnr:.2f} dB; timing at {LatencyKey(*shape, threads)}", flush=True)
    for value, (model, candidate) in _networks(study, cfg, ds, values).items():
        canvas = canvas_shape(ds.val, size_multiple(candidate))
        for mode in ("fp32", "int8"):
            rep = representative_inputs(ds.train, shape, cfg.optimize.representative_count, cfg.data.seed)
            path = atomic_write(folder / f"{value}_{mode}.tflite", to_tflite(model, shape, mode, rep))
            evaluated = to_tflite(model, canvas, mode, representative_inputs(
                ds.train, canvas, cfg.optimize.representative_count, cfg.data.seed))
            psnr[path.stem] = quality(predictor(evaluated, threads), ds.val, canvas).psnr
            xnn = xnnpack_delegation(path)
            print(f"  {value} {mode}: PSNR {psnr[path.stem]:.3f} dB at {canvas[0]}x{canvas[1]}; XNNPACK took "
                  f"{xnn['delegated_nodes']}/{xnn['nodes']} nodes, left {xnn['undelegated_ops'] or 'none'}", flush=True)
            files.append(path)
    stats = {p.stem: s for p, s in zip(files, measure_interleaved(files, cfg.measure, threads, rounds=1 if tiny else 5))}
    print(f"\n{option:16} {'fp32 ms':>8} {'int8 ms':>8} {'int8/fp32':>9} {'fp32 dB':>8} {'int8 dB':>8}  spread")
    for value in values:
        f, i = stats[f"{value}_fp32"], stats[f"{value}_int8"]
        print(f"{value:16} {f['interleaved_median_ms']:8.2f} {i['interleaved_median_ms']:8.2f} "
              f"{i['interleaved_median_ms'] / f['interleaved_median_ms']:9.2f} {psnr[f'{value}_fp32']:8.3f} "
              f"{psnr[f'{value}_int8']:8.3f}  {f['interleaved_spread']:.2f} / {i['interleaved_spread']:.2f}")
    old, new = values[0], values[1]
    ratio = stats[f"{old}_int8"]["interleaved_median_ms"] / stats[f"{new}_int8"]["interleaved_median_ms"]
    print(f"\nint8 {new} is {ratio:.2f}x faster than int8 {old}; PSNR difference ({new} - {old}): "
          f"fp32 {psnr[f'{new}_fp32'] - psnr[f'{old}_fp32']:+.3f} dB, int8 {psnr[f'{new}_int8'] - psnr[f'{old}_int8']:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
