"""One candidate through the pipeline: build -> train -> evaluate -> export -> portability -> measure."""
import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from portable_deblur.candidate import Candidate, variant_id
from portable_deblur.config import Config
from portable_deblur.data import Dataset
from portable_deblur.evaluate import blurry_quality, canvas_shape, quality, quality_and_fidelity
from portable_deblur.export import NEEDS_DATA, artifact_name, representative_inputs, to_tflite
from portable_deblur.files import atomic_write
from portable_deblur.flatbuffer import inventory_table, op_counts, op_inventory
from portable_deblur.macs import count_macs, count_params
from portable_deblur.measure import measure
from portable_deblur.model import build_model, size_multiple
from portable_deblur.portability import check_all, xnnpack_delegation
from portable_deblur.results import ResultRow, latency_key
from portable_deblur.runtime import predictor
from portable_deblur.train import (as_float32, fit, init_file, log_scalars, precision_policy, seed_everything,
                                   strategy_for, warm_start)


def padded(shape: Tuple[int, int], multiple: int) -> Tuple[int, int]:
    """``shape`` rounded up to multiples of ``multiple`` (e.g. 900x1600 -> 904x1600 for 2**3)."""
    return tuple(-(-s // multiple) * multiple for s in shape)


@dataclass(frozen=True)
class Trained:
    """A trained float model (the candidate's, or a pruned/sparse variant of it) and what every artifact
    row made from it shares."""

    candidate: Candidate
    model: object
    canvas: Tuple[int, int]
    multiple: int
    keras_psnr: float
    keras_ssim: float
    blurry_psnr: float
    blurry_ssim: float
    params: int
    macs: int
    steps: int
    out: Path
    variant: Dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. {"prune": 0.3}

    def values(self, **optimization: str) -> Dict[str, Any]:
        return {**self.candidate.values, **self.variant, **optimization}


def run_candidate(candidate: Candidate, cfg: Config, dataset: Dataset, run_dir: Path,
                  violations: Sequence[str] = ()) -> List[ResultRow]:
    """Train one candidate, then evaluate, export, judge and measure its fp32 artifact and (unless
    ``optimize.apply_to=pareto``) every optimized variant; one row each (a failing variant marks only its
    own row failed)."""
    out = Path(run_dir) / candidate.id
    shutil.rmtree(out, ignore_errors=True)  # leftovers of an interrupted attempt are never reused
    start = time.perf_counter()
    seed_everything(cfg.train.seed, cfg.train.jit_compile)  # before building: initial weights are seeded too
    strategy = strategy_for(cfg.train)
    with precision_policy(cfg.train.precision), strategy.scope():
        model = build_model(candidate)
    if cfg.train.init:
        warm_start(model, init_file(cfg.train.init, candidate.id))
    fit(model, dataset.train, cfg.train, log_dir=out / "tensorboard", desc=candidate.id, strategy=strategy,
        checkpoint=out / "checkpoint")  # weights + optimizer state + step: training can be continued
    model = as_float32(model)
    model.save(out / "model.keras")
    train_s = time.perf_counter() - start
    t = judged(candidate, model, cfg, dataset, out, cfg.train.steps)
    rows = [artifact_row(t, "fp32", cfg, dataset, run_dir, violations, {"train": train_s})]
    if cfg.optimize.apply_to == "all":
        rows += optimized_rows(t, cfg, dataset, run_dir, violations)
    return rows


def judged(candidate: Candidate, model, cfg: Config, dataset: Dataset, out: Path, steps: int,
           variant: Optional[Dict[str, Any]] = None) -> Trained:
    """A trained float model with its Keras quality, size and MACs (the row fields its artifacts share)."""
    multiple = size_multiple(candidate)
    canvas = canvas_shape(dataset.val, multiple)
    keras_q = quality(lambda x: model(x, training=False).numpy(), dataset.val, canvas)
    suffix = "" if not variant else "_" + variant_id(variant).replace("-", "_")
    log_scalars(out / "tensorboard", steps, **{f"val/psnr_keras{suffix}": keras_q.psnr})
    return Trained(candidate, model, canvas, multiple, keras_q.psnr, keras_q.ssim, *blurry_quality(dataset.val),
                   count_params(model), count_macs(model, cfg.measure.shapes[0]), steps, out, dict(variant or {}))


def optimize_saved(candidate: Candidate, cfg: Config, dataset: Dataset, run_dir: Path,
                   violations: Sequence[str] = ()) -> List[ResultRow]:
    """``optimize.apply_to=pareto``: the optimized variants of a candidate trained earlier in this run, from
    its saved ``model.keras`` (the float row is already in the study)."""
    from portable_deblur.backend import keras
    from portable_deblur.layers import CUSTOM_OBJECTS

    out = Path(run_dir) / candidate.id
    saved = out / "model.keras"
    if not saved.is_file():
        raise FileNotFoundError(f"{saved} is not on this machine: with optimize.apply_to=pareto and several "
                                f"machines, give the workers a shared run.root")
    model = keras.models.load_model(saved, custom_objects=CUSTOM_OBJECTS, compile=False)
    t = judged(candidate, model, cfg, dataset, out, cfg.train.steps)
    return optimized_rows(t, cfg, dataset, run_dir, violations)


def optimized_rows(t: Trained, cfg: Config, dataset: Dataset, run_dir: Path,
                   violations: Sequence[str]) -> List[ResultRow]:
    """Every optimized variant of the trained model ``t``: its pruned and sparse float models (each a row),
    then the PTQ and QAT variants of ``t`` and of the float variants ``optimize.combine`` names (all)."""
    rows, floats = [], [t]
    for variant, make in [*[({"prune": p}, pruned) for p in cfg.optimize.prune],
                          *[({"sparsity": s}, sparse) for s in cfg.optimize.sparsity]]:
        start = time.perf_counter()
        try:
            v = make(t, variant, cfg, dataset)
            rows.append(artifact_row(v, "fp32", cfg, dataset, run_dir, violations,
                                     {"optimize": time.perf_counter() - start}))
            floats.append(v)
        except Exception as exc:
            rows.append(failed_row(t.candidate, exc, variant=variant))
    combine = cfg.optimize.combine
    for f in [t] + [f for f in floats[1:] if combine is None or variant_id(f.variant) in combine]:
        for mode in cfg.optimize.ptq:
            try:
                rows.append(artifact_row(f, mode, cfg, dataset, run_dir, violations, {}))
            except Exception as exc:  # e.g. the converter refuses an op in this mode
                rows.append(failed_row(f.candidate, exc, mode, variant=f.variant))
        if cfg.optimize.qat_steps > 0:
            try:
                rows.append(qat_row(f, cfg, dataset, run_dir, violations))
            except Exception as exc:
                rows.append(failed_row(f.candidate, exc, "int8", kind="qat", variant=f.variant))
    return rows


def _fine_tune(model, cfg: Config, dataset: Dataset, desc: str) -> None:
    if cfg.optimize.prune_steps:
        fit(model, dataset.train, dataclasses.replace(cfg.train, steps=cfg.optimize.prune_steps,
                                                      learning_rate=cfg.optimize.prune_learning_rate), desc=desc)


def pruned(t: Trained, variant: Dict[str, Any], cfg: Config, dataset: Dataset) -> Trained:
    """Channel-prune ``t``'s model to ``variant["prune"]`` of its MACs (``prune.py``) and fine-tune it."""
    from portable_deblur.prune import prune

    result = prune(t.model, float(variant["prune"]), cfg.measure.shapes[0], cfg.optimize.prune_multiple)
    name = variant_id(variant)
    _fine_tune(result.model, cfg, dataset, f"{t.candidate.id} {name}")
    out = t.out / name
    out.mkdir(parents=True, exist_ok=True)
    result.model.save(out / "model.keras")
    return judged(t.candidate, result.model, cfg, dataset, out, t.steps, variant)


def sparse(t: Trained, variant: Dict[str, Any], cfg: Config, dataset: Dataset) -> Trained:
    """TF-MOT m:n sparsity on ``t``'s model (``sparsity.py``), kept while fine-tuning."""
    from portable_deblur import sparsity

    wrapped, wrappers = sparsity.wrap(t.model, variant["sparsity"])
    name = variant_id(variant)
    _fine_tune(wrapped, cfg, dataset, f"{t.candidate.id} {name}")
    model = sparsity.strip(t.model, wrapped, wrappers)
    out = t.out / name
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    return judged(t.candidate, model, cfg, dataset, out, t.steps, variant)


def qat_row(t: Trained, cfg: Config, dataset: Dataset, run_dir: Path, violations: Sequence[str]) -> ResultRow:
    """8-bit QAT of the trained model: fake-quant twin, ranges from calibration crops, ``optimize.qat_steps``
    of fine-tuning at ``optimize.qat_learning_rate``, then a full-int8 file judged like every artifact
    (its fidelity is against the fake-quant Keras model it came from)."""
    from portable_deblur.qat import init_ranges, quantize_aware, to_int8

    start = time.perf_counter()
    qat = quantize_aware(t.model)
    crop = (cfg.train.crop, cfg.train.crop)
    init_ranges(qat, t.model, [x[0] for x in representative_inputs(
        dataset.train, crop, cfg.optimize.representative_count, cfg.data.seed)()])
    fit(qat, dataset.train, dataclasses.replace(cfg.train, steps=cfg.optimize.qat_steps,
                                                learning_rate=cfg.optimize.qat_learning_rate),
        desc=f"{t.candidate.id} QAT")
    return artifact_row(t, "int8", cfg, dataset, run_dir, violations, {"qat": time.perf_counter() - start},
                        kind="qat", model=qat, convert_with=lambda shape: to_int8(qat, shape))


def row_id(candidate: Candidate, mode: str, kind: str = "ptq", variant: Optional[Dict[str, Any]] = None) -> str:
    """``<candidate id>`` for the fp32 artifact, ``<candidate id>__ptq-<mode>`` for a post-training
    quantized one, ``<candidate id>__qat-int8`` for the quantization-aware trained one; a pruned or sparse
    model's rows insert its variant (``<candidate id>__prune-0.3__ptq-int8``)."""
    base = candidate.id + (f"__{variant_id(variant)}" if variant else "")
    return base if mode == "fp32" else f"{base}__{kind}-{mode}"


def artifact_row(t: Trained, mode: str, cfg: Config, dataset: Dataset, run_dir: Path,
                 violations: Sequence[str], seconds: dict, kind: str = "ptq", model=None,
                 convert_with=None) -> ResultRow:
    """Convert ``t.model`` (or ``model`` with ``convert_with``) with quantization ``mode``; PSNR of the file
    itself, fidelity against its Keras source, portability, latency."""
    source = t.model if model is None else model
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    def convert(shape):
        if convert_with is not None:
            return convert_with(shape)
        if mode not in NEEDS_DATA:
            return to_tflite(t.model, shape, mode)
        rep = representative_inputs(dataset.train, shape, cfg.optimize.representative_count, cfg.data.seed)
        return to_tflite(t.model, shape, mode, rep)

    label = mode if kind == "ptq" else f"{kind}_{mode}"
    eval_path = atomic_write(t.out / artifact_name(label, t.canvas), convert(t.canvas))
    lap("export")
    keras_predict = lambda x: source(x, training=False).numpy()  # noqa: E731
    tflite_predict = predictor(eval_path, cfg.measure.threads[0])
    tflite_q, fid = quality_and_fidelity(keras_predict, tflite_predict, dataset.val, t.canvas)
    log_scalars(t.out / "tensorboard", t.steps, **{f"val/psnr_tflite_{label}": tflite_q.psnr})
    lap("evaluate")

    artifacts, latency = {"eval": str(eval_path.relative_to(run_dir))}, {}
    for shape in cfg.measure.shapes:
        export_shape = padded(shape, t.multiple)
        path = t.out / artifact_name(label, export_shape)
        if export_shape != t.canvas and not path.is_file():  # at the canvas size the evaluated file is it
            atomic_write(path, convert(export_shape))
        artifacts.setdefault("primary", str(path.relative_to(run_dir)))
        artifacts[f"{label}_{shape[0]}x{shape[1]}"] = str(path.relative_to(run_dir))
        lap("export")
        for threads in cfg.measure.threads:
            lat = dataclasses.asdict(measure(path, cfg.measure, threads))
            if export_shape != shape:
                lat["padded_to"] = f"{export_shape[0]}x{export_shape[1]}"
            latency[latency_key(shape, threads)] = lat
        lap("measure")

    primary = Path(run_dir) / artifacts["primary"]
    ops = op_inventory(primary)
    reports = check_all(ops, cfg.portability.targets)
    xnn = xnnpack_delegation(primary)
    lap("portability")
    values = t.values(**({} if mode == "fp32" else {kind: mode}))
    return ResultRow(
        id=row_id(t.candidate, mode, kind, t.variant), arch=t.candidate.arch, values=values, status="ok",
        params=t.params, macs=t.macs, size_kb=primary.stat().st_size / 1024,
        psnr_blurry=t.blurry_psnr, ssim_blurry=t.blurry_ssim, psnr_keras=t.keras_psnr, ssim_keras=t.keras_ssim,
        psnr_tflite=tflite_q.psnr, ssim_tflite=tflite_q.ssim, fidelity_psnr=fid.psnr, fidelity_l2=fid.l2,
        latency=latency, ops=op_counts(primary), inventory=inventory_table(ops),
        portability={k: dataclasses.asdict(v) for k, v in reports.items()}, xnnpack=xnn,
        violations=list(violations), artifacts=artifacts, seconds=seconds)


def failed_row(candidate: Candidate, error: BaseException, mode: str = "fp32", kind: str = "ptq",
               variant: Optional[Dict[str, Any]] = None) -> ResultRow:
    """The row recorded for a candidate (or one of its variants) whose pipeline raised: the search goes on."""
    values = {**candidate.values, **(variant or {}), **({} if mode == "fp32" else {kind: mode})}
    message = " ".join(str(error).split())  # converter errors span many lines
    return ResultRow(id=row_id(candidate, mode, kind, variant), arch=candidate.arch, values=values, status="failed",
                     error=f"{type(error).__name__}: {message}"[:2000])


def skipped_row(candidate: Candidate, reasons: Dict[str, str]) -> ResultRow:
    """The row for a candidate not trained because a required target would reject some of its ops."""
    return ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="skipped",
                     error="; ".join(f"{t}: {why}" for t, why in sorted(reasons.items())),
                     violations=sorted(reasons))
