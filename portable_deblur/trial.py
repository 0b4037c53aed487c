"""One candidate through the pipeline: build -> train -> evaluate -> export -> measure, as a result row."""
import time
from pathlib import Path

from portable_deblur.candidate import Candidate
from portable_deblur.config import Config
from portable_deblur.data import Dataset
from portable_deblur.evaluate import blurry_quality, canvas_shape, fidelity, quality
from portable_deblur.export import artifact_name, to_tflite
from portable_deblur.files import atomic_write
from portable_deblur.flatbuffer import op_counts
from portable_deblur.macs import count_macs, count_params
from portable_deblur.measure import measure
from portable_deblur.model import build_model, size_multiple
from portable_deblur.results import ResultRow, latency_key
from portable_deblur.runtime import predictor
from portable_deblur.train import fit, log_scalars


def run_candidate(candidate: Candidate, cfg: Config, dataset: Dataset, run_dir: Path) -> ResultRow:
    """Train, evaluate (Keras and TFLite), export and measure one candidate; raises on failure."""
    out = Path(run_dir) / candidate.id
    seconds, clock = {}, time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    model = build_model(candidate)
    trained = fit(model, dataset.train, cfg.train, log_dir=out / "tensorboard", desc=candidate.id)
    model.save(out / "model.keras")
    lap("train")

    canvas = canvas_shape(dataset.val, size_multiple(candidate))
    keras_predict = lambda x: model(x, training=False).numpy()  # noqa: E731
    keras_q = quality(keras_predict, dataset.val, canvas)
    lap("evaluate")
    eval_path = atomic_write(out / artifact_name("fp32", canvas), to_tflite(model, canvas))
    lap("export")
    tflite_predict = predictor(eval_path, cfg.measure.threads)
    tflite_q = quality(tflite_predict, dataset.val, canvas)
    fid = fidelity(keras_predict, tflite_predict, dataset.val, canvas)
    blurry_psnr, blurry_ssim = blurry_quality(dataset.val)
    log_scalars(out / "tensorboard", trained.steps, **{"val/psnr_keras": keras_q.psnr, "val/psnr_tflite": tflite_q.psnr})
    lap("evaluate")

    artifacts, latency = {"eval": str(eval_path.relative_to(run_dir))}, {}
    for shape in map(tuple, cfg.measure.resolutions):
        path = out / artifact_name("fp32", shape)
        if not path.is_file():
            atomic_write(path, to_tflite(model, shape))
        lap("export")
        artifacts[f"fp32_{latency_key(shape)}"] = str(path.relative_to(run_dir))
        m = measure(path, cfg.measure.threads, cfg.measure.warmup, cfg.measure.runs)
        latency[latency_key(shape)] = m.__dict__
        lap("measure")

    first = tuple(cfg.measure.resolutions[0])
    return ResultRow(
        id=candidate.id, arch=candidate.arch, values=candidate.values, status="ok",
        params=count_params(model), macs=count_macs(model, first),
        psnr_blurry=blurry_psnr, ssim_blurry=blurry_ssim, psnr_keras=keras_q.psnr, ssim_keras=keras_q.ssim,
        psnr_tflite=tflite_q.psnr, ssim_tflite=tflite_q.ssim, fidelity_psnr=fid.psnr, fidelity_l2=fid.l2,
        latency=latency, ops=op_counts(out / artifact_name("fp32", first)), artifacts=artifacts,
        seconds=seconds)


def failed_row(candidate: Candidate, error: BaseException) -> ResultRow:
    """The row recorded for a candidate whose pipeline raised: the search goes on without it."""
    return ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="failed",
                     error=f"{type(error).__name__}: {error}")
