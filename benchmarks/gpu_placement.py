"""Benchmark: the GPU accelerator's measured placement next to the ``gpu`` table's prediction, for every
trained candidate of a run and its int8 twin (PTQ, calibrated on the run's training crops).

Needs a Vulkan adapter (``deploy/gpu.py``: chromium's SwiftShader or lavapipe). Prints one line per file:
ops, the table's verdict, the runtime's verdict (GPU/CPU op split and the rejected ops) and whether they
agree, plus what XNNPACK leaves undelegated on this CPU. With ``--psnr``, also every float row's evaluated
file through the GPU accelerator on the validation frames (what ``measure.gpu_psnr=true`` records), beside
its CPU ``.tflite`` PSNR.

    python benchmarks/gpu_placement.py experiments/runs/upsampling [--psnr]
    python benchmarks/gpu_placement.py --tiny [run] [--psnr]   # smoke scale (a smoke run when none is given)
"""
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    from portable_deblur.backend import keras
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.flatbuffer import op_inventory
    from portable_deblur.deploy.gpu import measure_placement, vulkan_icd
    from portable_deblur.deploy.portability import check, targets, xnnpack_delegation
    from portable_deblur.files import atomic_write
    from portable_deblur.models.layers import CUSTOM_OBJECTS
    from portable_deblur.search.study import SearchStudy

    from portable_deblur.config.smoke import smoke_run

    args = list(sys.argv[1:] if argv is None else argv)
    given = [a for a in args if not a.startswith("--")]
    if not given and "--tiny" not in args:
        print("usage: python benchmarks/gpu_placement.py RUN_DIR [--psnr] (or --tiny)", file=sys.stderr)
        return 2
    if vulkan_icd() is None:
        print("no Vulkan adapter on this host: install chromium (SwiftShader) or Mesa lavapipe >= 25")
        return 1
    study = SearchStudy.load(Path(given[0]) if given else smoke_run())
    cfg, shape = study.cfg, study.cfg.measure.shapes[0]
    train = load_dataset(cfg.data).train
    out = Path(tempfile.mkdtemp(prefix="gpu_placement_"))
    print(f"adapter {vulkan_icd()}; files at {shape[0]}x{shape[1]}")
    npus = sorted(t.name for t in targets().values() if t.accelerator == "npu")
    print(f"{'artifact':62} {'table (gpu.yaml)':22} {'measured (GPU accelerator)':36} agree  "
          f"{'  '.join(f'{n:18}' for n in npus)}  xnnpack left")
    for row in (r for r in study.rows() if r.status == "ok" and r.optimization == "fp32"):
        model = keras.models.load_model(study.layout.model(study.layout.folder(row.id)),
                                        custom_objects=CUSTOM_OBJECTS, compile=False)
        for mode in ("fp32", "int8"):
            rep = representative_inputs(train, shape, cfg.optimize.representative_count, cfg.data.seed)
            path = atomic_write(out / f"{row.id}_{mode}.tflite", to_tflite(model, shape, mode, rep))
            inventory = op_inventory(path)
            table = check(inventory, "gpu")
            npu = [check(inventory, n) for n in npus]
            measured = measure_placement(path)
            said = "ok" if table.portable else "rejects " + " ".join(table.fallback)
            got = (f"ok ({measured.gpu_ops} ops on GPU)" if measured.fully_delegated else
                   f"{measured.cpu_ops} on CPU: {' '.join(measured.rejected)}")
            agree = table.portable == measured.fully_delegated
            left = xnnpack_delegation(path)["undelegated_ops"] or "-"
            npu_said = "  ".join(f"{'ok' if r.portable else 'rejects ' + ' '.join(r.fallback):18}" for r in npu)
            print(f"{row.id + ' ' + mode:62} {said:22} {got:36} {'yes' if agree else 'NO':5}  {npu_said}  {left}",
                  flush=True)
    if "--psnr" in args:
        gpu_psnr(study)
    return 0


def gpu_psnr(study) -> None:
    import time

    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.gpu import GpuPredictor
    from portable_deblur.train.evaluate import quality

    val = load_dataset(study.cfg.data).val
    print(f"\n{'float artifact':52} {'CPU .tflite dB':>14} {'GPU accel. dB':>14} {'GPU - CPU':>10}  seconds")
    for row in (r for r in study.rows() if r.status == "ok" and r.optimization in ("fp32", "fp16")):
        path = study.layout / row.artifacts["eval"]
        _, shape = study.layout.artifact_parts(path)
        start = time.perf_counter()
        with GpuPredictor(path) as predict:
            q = quality(predict, val, shape)
        print(f"{row.id:52} {row.psnr_tflite:14.4f} {q.psnr:14.4f} {q.psnr - row.psnr_tflite:+10.4f}  "
              f"{time.perf_counter() - start:.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
