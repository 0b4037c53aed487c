"""One candidate through the pipeline: build -> train -> evaluate -> export -> portability -> measure."""
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Dict, Sequence, Tuple

from portable_deblur.candidate import Candidate
from portable_deblur.config import Config
from portable_deblur.data import Dataset
from portable_deblur.evaluate import blurry_quality, canvas_shape, fidelity, quality
from portable_deblur.export import artifact_name, to_tflite
from portable_deblur.files import atomic_write
from portable_deblur.flatbuffer import inventory_table, op_counts, op_inventory
from portable_deblur.macs import count_macs, count_params
from portable_deblur.measure import measure
from portable_deblur.model import build_model, size_multiple
from portable_deblur.portability import check_all, xnnpack_delegation
from portable_deblur.results import ResultRow, latency_key
from portable_deblur.runtime import predictor
from portable_deblur.train import fit, log_scalars, seed_everything


def padded(shape: Tuple[int, int], multiple: int) -> Tuple[int, int]:
    """``shape`` rounded up to multiples of ``multiple`` (e.g. 900x1600 -> 904x1600 for 2**3)."""
    return tuple(-(-s // multiple) * multiple for s in shape)


def run_candidate(candidate: Candidate, cfg: Config, dataset: Dataset, run_dir: Path,
                  violations: Sequence[str] = ()) -> ResultRow:
    """Train, evaluate (Keras and TFLite), export, judge portability and measure one candidate."""
    out = Path(run_dir) / candidate.id
    shutil.rmtree(out, ignore_errors=True)  # leftovers of an interrupted attempt are never reused
    seconds, clock = {}, time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    seed_everything(cfg.train.seed, cfg.train.jit_compile)  # before building: initial weights are seeded too
    model = build_model(candidate)
    trained = fit(model, dataset.train, cfg.train, log_dir=out / "tensorboard", desc=candidate.id)
    model.save(out / "model.keras")
    lap("train")

    multiple = size_multiple(candidate)
    canvas = canvas_shape(dataset.val, multiple)
    keras_predict = lambda x: model(x, training=False).numpy()  # noqa: E731
    keras_q = quality(keras_predict, dataset.val, canvas)
    lap("evaluate")
    eval_path = atomic_write(out / artifact_name("fp32", canvas), to_tflite(model, canvas))
    lap("export")
    tflite_predict = predictor(eval_path, cfg.measure.threads[0])
    tflite_q = quality(tflite_predict, dataset.val, canvas)
    fid = fidelity(keras_predict, tflite_predict, dataset.val, canvas)
    blurry_psnr, blurry_ssim = blurry_quality(dataset.val)
    log_scalars(out / "tensorboard", trained.steps, **{"val/psnr_keras": keras_q.psnr, "val/psnr_tflite": tflite_q.psnr})
    lap("evaluate")

    artifacts, latency, primary = {"eval": str(eval_path.relative_to(run_dir))}, {}, None
    for shape in cfg.measure.shapes:
        export_shape = padded(shape, multiple)
        path = out / artifact_name("fp32", export_shape)
        if export_shape != canvas and not path.is_file():  # at the canvas size the evaluated file is it
            atomic_write(path, to_tflite(model, export_shape))
        primary = primary or path
        artifacts[f"fp32_{shape[0]}x{shape[1]}"] = str(path.relative_to(run_dir))
        lap("export")
        for threads in cfg.measure.threads:
            lat = dataclasses.asdict(measure(path, cfg.measure, threads))
            if export_shape != shape:
                lat["padded_to"] = f"{export_shape[0]}x{export_shape[1]}"
            latency[latency_key(shape, threads)] = lat
        lap("measure")

    ops = op_inventory(primary)
    reports = check_all(ops, cfg.portability.targets)
    xnn = xnnpack_delegation(primary)
    lap("portability")
    return ResultRow(
        id=candidate.id, arch=candidate.arch, values=candidate.values, status="ok",
        params=count_params(model), macs=count_macs(model, cfg.measure.shapes[0]),
        psnr_blurry=blurry_psnr, ssim_blurry=blurry_ssim, psnr_keras=keras_q.psnr, ssim_keras=keras_q.ssim,
        psnr_tflite=tflite_q.psnr, ssim_tflite=tflite_q.ssim, fidelity_psnr=fid.psnr, fidelity_l2=fid.l2,
        latency=latency, ops=op_counts(primary), inventory=inventory_table(ops),
        portability={k: dataclasses.asdict(v) for k, v in reports.items()}, xnnpack=xnn,
        violations=list(violations), artifacts=artifacts, seconds=seconds)


def failed_row(candidate: Candidate, error: BaseException) -> ResultRow:
    """The row recorded for a candidate whose pipeline raised: the search goes on without it."""
    return ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="failed",
                     error=f"{type(error).__name__}: {error}")


def skipped_row(candidate: Candidate, reasons: Dict[str, str]) -> ResultRow:
    """The row for a candidate not trained because a required target would reject some of its ops."""
    return ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="skipped",
                     error="; ".join(f"{t}: {why}" for t, why in sorted(reasons.items())),
                     violations=sorted(reasons))
