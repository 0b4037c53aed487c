"""Benchmark: trustworthy measurement and the portability table for the six ``space=upsampling`` U-Nets.

Prints, in one run on this machine:
1. repeatability: the same artifact measured in N fresh subprocesses, CV of the medians (target <= 5 %);
2. per-target fallback table of the six Table-3 candidates beside the MediaTek paper's footnotes, plus
   the XNNPACK delegation measured from the live interpreter;
3. latency vs resolution (paper Figure 4 sizes) with peak memory and the pixel-scaling exponent;
4. fp32 throughput of a width-32 U-Net at 1280x720 in GMAC/s, as a fraction of this machine's matmul peak
   measured in the same run.

Ops and latency do not depend on trained weights, so the models are built untrained (the same builders and
converter as the search).

    python benchmarks/measurement.py [--repeats 5] [--runs 30]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from portable_deblur.config import RESOLUTION_SETS, load_config
from portable_deblur.deploy.export import to_tflite
from portable_deblur.files import atomic_write
from portable_deblur.deploy.flatbuffer import op_inventory
from portable_deblur.models.macs import count_macs
from portable_deblur.deploy.measure import measure_local, scaling_exponent
from portable_deblur.deploy.portability import check_all, xnnpack_delegation
from portable_deblur.search.artifact import padded
from portable_deblur.models.unet import build_unet

# MediaTek paper, Table 3 footnotes (NNAPI on three phones): what fell back to the CPU.
PAPER = {
    ("transpose", "Mate30 Pro / Kirin 990"): "TRANSPOSE_CONV",
    ("transpose", "Pixel 4 / SD 855"): "TRANSPOSE_CONV, CONCATENATION, CONV_2D after CONCATENATION",
    ("depth_to_space", "Pixel 4 / SD 855"): "DEPTH_TO_SPACE",
    ("bilinear", "Pixel 4 / SD 855"): "CONCATENATION, CONV_2D after CONCATENATION",
}
TARGETS = ["gpu", "nnapi_api27", "nnapi_api28", "nnapi_api29", "nnapi_api30", "hexagon", "xnnpack"]


def matmul_peak_gmacs(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 square matmul throughput (numpy/OpenBLAS on all cores), in GMAC/s."""
    a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: one width-4 network, 32-64 px")
    args = parser.parse_args(argv)
    tiny = ["model.width=4", "grid.upsampler=[depth_to_space]", "grid.activation=[relu]"] if args.tiny else []
    if args.tiny:
        args.repeats, args.runs = 2, 3
    cfg = load_config(["space=upsampling", *tiny])
    model_args = {k: v for k, v in cfg.model.items()}
    work = Path(tempfile.mkdtemp(prefix="pd_measure_"))
    models = {(u, a): build_unet(**model_args, upsampler=u, activation=a)
              for u in cfg.grid["upsampler"] for a in cfg.grid["activation"]}
    base, sizes, wide_at = ((32, 32), [[32, 32], [64, 64]], (64, 64)) if args.tiny else \
        ((256, 256), RESOLUTION_SETS["paper"], (720, 1280))
    wide_width = 8 if args.tiny else 32

    print("== 1. repeatability: one artifact, fresh subprocess per measurement ==")
    path = atomic_write(work / "repeat.tflite", to_tflite(next(iter(models.values())), base))
    medians = [measure_local(path, threads=2, warmup=5, runs=args.runs).median_ms for _ in range(args.repeats)]
    cv = float(np.std(medians) / np.mean(medians))
    print(f"medians (ms): {[round(m, 2) for m in medians]}  CV of medians: {cv * 100:.2f} % (target <= 5 %)")

    print(f"\n== 2. fallback per target ({base[0]}x{base[1]} fp32; '-' = fully accepted) ==")
    for (u, a), model in models.items():
        flat = atomic_write(work / f"{u}_{a}.tflite", to_tflite(model, base))
        reports = check_all(op_inventory(flat), TARGETS)
        xnn = xnnpack_delegation(flat)
        print(f"unet {u:15} {a:6}")
        for t, r in reports.items():
            print(f"    {t:12} {', '.join(r.fallback.values()) or '-':60} accel MACs {r.accelerator_mac_fraction:.3f}")
        print(f"    {'xnnpack(measured)':12} delegated {xnn['delegated_nodes']}/{xnn['nodes']} nodes, "
              f"left on CPU kernels: {xnn['undelegated_ops'] or '-'}")
        for (pu, phone), text in PAPER.items():
            if pu == u:
                print(f"    paper, {phone}: {text} fell back")

    print("\n== 3. latency vs resolution (threads=2; padded to a multiple of 8 where needed) ==")
    for (u, a), model in models.items():
        pixels, ms = [], []
        row = []
        for shape in sizes:
            export = padded(tuple(shape), 8)
            p = atomic_write(work / f"res_{u}_{a}_{export[0]}x{export[1]}.tflite", to_tflite(model, export))
            lat = measure_local(p, threads=2, warmup=2, runs=5)
            pixels.append(shape[0] * shape[1])
            ms.append(lat.median_ms)
            row.append(f"{shape[1]}x{shape[0]}: {lat.median_ms:6.1f} ms, {lat.peak_rss_mb:4.0f} MB peak "
                       f"({lat.model_rss_mb:4.0f} model)")
        print(f"{u:15} {a:6} " + " | ".join(row) + f" | exponent {scaling_exponent(pixels, ms):.2f}")

    print(f"\n== 4. fp32 throughput, width-{wide_width} U-Net at {wide_at[1]}x{wide_at[0]}, vs matmul peak ==")
    peak = matmul_peak_gmacs()
    wide = build_unet(**{**model_args, "width": wide_width}, upsampler="depth_to_space", activation="relu")
    macs = count_macs(wide, wide_at)
    p = atomic_write(work / "wide_720p.tflite", to_tflite(wide, wide_at))
    lat = measure_local(p, threads=2, warmup=2, runs=10)
    achieved = macs / (lat.median_ms / 1000) / 1e9
    peak_after = matmul_peak_gmacs()
    print(f"U-Net width {wide_width} @{wide_at[1]}x{wide_at[0]}: {macs / 1e9:.1f} GMAC, median {lat.median_ms:.0f} ms (CV {lat.cv * 100:.1f} %) "
          f"-> {achieved:.1f} GMAC/s")
    print(f"matmul peak (numpy float32 2048^3, before/after): {peak:.1f} / {peak_after:.1f} GMAC/s "
          f"-> TFLite fp32 at {achieved / max(peak, peak_after) * 100:.0f} % of peak")


if __name__ == "__main__":
    main()
