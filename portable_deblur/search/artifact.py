"""One artifact of a trained model: convert it (``deploy.export``), judge the file on the validation set,
export and time it at every measured resolution (``deploy.measure``), read its ops and what each delegate
would reject (``deploy.portability``) -- and the ``ResultRow`` that records it all."""
import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from portable_deblur.config import Config
from portable_deblur.data.sources import Dataset
from portable_deblur.deploy.export import NEEDS_DATA, representative_inputs, to_tflite
from portable_deblur.deploy.flatbuffer import inventory_table, op_counts, op_inventory
from portable_deblur.deploy.gpu import measure_placement
from portable_deblur.deploy.measure import measure
from portable_deblur.deploy.portability import check_all, mac_fraction, xnnpack_delegation
from portable_deblur.deploy.runtime import predictor
from portable_deblur.files import atomic_write
from portable_deblur.layout import RunLayout
from portable_deblur.optimize.mixed import float_islands
from portable_deblur.optimize.options import MIXED
from portable_deblur.records import Artifact, ResultRow, Variant
from portable_deblur.latency import latency_key
from portable_deblur.rank import ranked_key
from portable_deblur.train.evaluate import quality_and_fidelity
from portable_deblur.train.fit import log_scalars
from portable_deblur.train.judge import Trained, pipeline_figures


INT8_MODES = ("int8", "int8_float_fallback", MIXED)  # files whose layers the per-layer error table covers
FP16_CHECKED = ("fp32", "fp16")  # float files: LiteRT's GPU accelerator runs them in fp16
FP16_FRAMES = 2  # calibration frames per measured size for the fp16 range check


def padded(shape: Tuple[int, int], multiple: int) -> Tuple[int, int]:
    """``shape`` rounded up to multiples of ``multiple`` (e.g. 900x1600 -> 904x1600 for 2**3)."""
    return tuple(-(-s // multiple) * multiple for s in shape)


class _Laps:
    """Adds the wall time since the last lap to ``seconds[stage]``."""

    def __init__(self, seconds: Dict[str, float]):
        self.seconds, self.clock = seconds, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self.clock
        self.clock = now


def converter(t: Trained, v: Variant, cfg: Config, dataset: Dataset, qat=None) -> Callable[[Tuple[int, int]], bytes]:
    """``shape -> .tflite bytes`` for variant ``v`` of ``t``: a QAT model's int8 conversion, or ``t.model``
    with ``v.mode`` (calibrated on training crops where the mode needs data)."""
    if qat is not None:
        from portable_deblur.optimize.qat import to_int8

        return lambda shape: to_int8(qat, shape)
    if v.mode == MIXED:
        from portable_deblur.optimize.mixed import Calibrated

        plan = mixed_plan(t, cfg, dataset)
        return lambda shape: plan.files.get(tuple(shape)) or Calibrated(t.model, shape, representative_inputs(
            dataset.train, shape, cfg.optimize.representative_count, cfg.data.seed)).quantize(plan.islands, plan.ops)
    if v.mode not in NEEDS_DATA:
        return lambda shape: to_tflite(t.model, shape, v.mode)
    return lambda shape: to_tflite(t.model, shape, v.mode, representative_inputs(
        dataset.train, shape, cfg.optimize.representative_count, cfg.data.seed))


def mixed_plan(t: Trained, cfg: Config, dataset: Dataset):
    """The float model's mixed-precision plan, chosen at the first measured resolution (``optimize.mixed``)."""
    from portable_deblur.optimize.mixed import plan_for

    return plan_for(t.model, cfg, dataset, padded(cfg.measure.shapes[0], t.multiple), t.folder)


def quantization_errors(t: Trained, cfg: Config, dataset: Dataset, primary, errors: Optional[List[Dict]] = None,
                        top: int = 12) -> List[Dict[str, Any]]:
    """For an int8 file: the layers quantization damages most (TF's QuantizationDebugger on the calibration
    crops, at the first measured resolution) joined with the layers whose ops XNNPACK left on TFLite's own
    kernels in this file (measured): the ``top`` of each, worst first. ``errors``: the debugger's table when a
    mixed plan's calibration measured it already."""
    from portable_deblur.optimize.mixed import Calibrated, undelegated_layers

    shape = padded(cfg.measure.shapes[0], t.multiple)
    if errors is None:
        errors = Calibrated(t.model, shape, representative_inputs(
            dataset.train, shape, cfg.optimize.representative_count, cfg.data.seed)).layer_errors()
    slow = undelegated_layers(primary)
    chosen = {e["layer"] for e in errors[:top]} | set(list(slow)[:top])
    return [{"layer": e["layer"], "rmse_over_scale": round(e["rmse_over_scale"], 4), "ops": " ".join(e["ops"]),
             "undelegated": " ".join(slow.get(e["layer"], []))} for e in errors if e["layer"] in chosen]


def export_and_measure(t: Trained, v: Variant, cfg: Config, layout: RunLayout, convert, laps: _Laps,
                       written: Sequence = (), timed: Optional[Sequence[Tuple[Tuple[int, int], int]]] = None
                       ) -> Tuple[List[Artifact], Dict[str, Dict[str, Any]]]:
    """The artifact at every measured resolution (padded to the network's multiple), each timed at every thread
    count: (artifacts, latency by ``HxW_tN``). Every file is made from ``t`` now but those in ``written`` (the
    evaluated one, just made): a file a lower rung left in the folder holds that rung's weights.
    ``timed``: only these (resolution, threads) pairs (a screened candidate's ranked latency)."""
    artifacts, latency = [], {}
    timed = timed if timed is not None else [(s, n) for s in cfg.measure.shapes for n in cfg.measure.threads]
    for shape in dict.fromkeys(shape for shape, _ in timed):
        export_shape = padded(shape, t.multiple)
        path = layout.artifact(t.folder, v.file_label, export_shape)
        if path not in written:
            atomic_write(path, convert(export_shape))
        artifacts.append(Artifact(layout.relative(path), tuple(shape), v.file_label))
        laps("export")
        reference = layout.reference(tuple(shape))
        for threads in (n for s, n in timed if s == shape):
            lat = dataclasses.asdict(measure(path, cfg.measure, threads, reference if reference.is_file() else None))
            if export_shape != shape:
                lat["padded_to"] = f"{export_shape[0]}x{export_shape[1]}"
            latency[latency_key(shape, threads)] = lat
        laps("measure")
    return artifacts, latency


def gpu_quality(path, v: Variant, cfg: Config, dataset: Dataset, canvas):
    """``measure.gpu_psnr``: the float file's validation quality through LiteRT's GPU accelerator in its default
    precision (fp16 where the adapter computes it: the drop a phone's GPU adds); None when not asked, not a
    float file, or no Vulkan adapter here."""
    from portable_deblur.deploy.gpu import GpuPredictor
    from portable_deblur.train.evaluate import quality

    if not (cfg.measure.gpu_psnr and v.mode in ("fp32", "fp16") and GpuPredictor.available()):
        return None
    with GpuPredictor(path) as predict:
        return quality(predict, dataset.val, canvas)


def _plan_record(t: Trained) -> Dict[str, Any]:
    import json

    saved = RunLayout.mixed_plan(t.folder)
    return json.loads(saved.read_text()) if saved.is_file() else {}


def fp16_range(model, t: Trained, cfg: Config, dataset: Dataset) -> Dict[str, Any]:
    """``deploy.fp16_range.fp16_report`` of the float model on calibration frames at every measured size
    (padded to the network's multiple, as exported)."""
    from portable_deblur.deploy.fp16_range import fp16_report

    frames = {}
    for shape in cfg.measure.shapes:
        size = padded(shape, t.multiple)
        rep = representative_inputs(dataset.train, size, FP16_FRAMES, cfg.data.seed)
        frames[f"{shape[0]}x{shape[1]}"] = [sample[0] for sample in rep()]
    return fp16_report(model, frames)


def measured_violations(violations: Sequence[str], gpu, require: Sequence[str]) -> List[str]:
    """The required targets this artifact misses: the pre-training table verdicts, with ``gpu`` replaced by
    the measured placement when there is one (the runtime, not the table, decides)."""
    if gpu is None or "gpu" not in require:
        return sorted(violations)
    return sorted([t for t in violations if t != "gpu"] + ([] if gpu.fully_delegated else ["gpu"]))


def _measured(gpu, ops) -> Dict[str, Any]:
    """The measured GPU placement as a row keeps it, with the MAC share the GPU kept: the MACs of the op types
    the runtime did not reject (None when it moved ops to the CPU without naming them)."""
    if gpu is None:
        return {}
    share = 1.0 if gpu.cpu_ops == 0 else (mac_fraction(ops, list(gpu.rejected)) if gpu.rejected else None)
    return {**dataclasses.asdict(gpu), "accelerator_mac_fraction": share}


def artifact_row(t: Trained, v: Variant, cfg: Config, dataset: Dataset, layout: RunLayout,
                 violations: Sequence[str], seconds: Dict[str, float], qat=None) -> ResultRow:
    """Convert ``t.model`` (or the QAT model ``qat``) as variant ``v``: PSNR of the file itself, fidelity
    against its Keras source, latency, ops and portability; the row's stage times are ``seconds`` (the time
    spent before, e.g. training) plus this function's own."""
    laps, convert = _Laps(dict(seconds)), converter(t, v, cfg, dataset, qat)
    source = t.model if qat is None else qat
    eval_path = atomic_write(layout.artifact(t.folder, v.file_label, t.canvas), convert(t.canvas))
    laps("export")
    reference = t.outputs if qat is None and t.outputs else lambda x: source(x, training=False).numpy()
    tflite_q, fid = quality_and_fidelity(reference, predictor(eval_path, cfg.measure.threads[0]), dataset.val,
                                         t.canvas)
    log_scalars(RunLayout.tensorboard(t.folder), t.steps, **{f"val/psnr_tflite_{v.file_label}": tflite_q.psnr},
                **{f"val/psnr_tflite_{v.file_label}_{name}": psnr for name, (psnr, _) in tflite_q.per_pipeline.items()})
    laps("evaluate")
    gpu_q = gpu_quality(eval_path, v, cfg, dataset, t.canvas)
    if gpu_q is not None:
        laps("evaluate_gpu")
    made, latency = export_and_measure(t, v, cfg, layout, convert, laps, written=(eval_path,))
    artifacts = _files(made)
    primary = layout / made[0].path
    ops = op_inventory(primary)
    reports = check_all(ops, cfg.portability.targets)
    xnn = xnnpack_delegation(primary)
    plan = _plan_record(t) if v.mode == MIXED else {}
    errors = quantization_errors(t, cfg, dataset, primary, plan.get("errors")) if v.mode in INT8_MODES and qat is None else []
    islands = float_islands(primary.read_bytes()) if v.mode == MIXED else {}
    fp16 = fp16_range(source, t, cfg, dataset) if v.mode in FP16_CHECKED else {}
    gpu = measure_placement(primary, len(ops)) if "gpu" in cfg.portability.targets else None
    violations = measured_violations(violations, gpu, cfg.portability.require)
    laps("portability")
    return ResultRow(
        **_row_fields(t, v, layout, made, latency, ops, reports),
        psnr_tflite=tflite_q.psnr, ssim_tflite=tflite_q.ssim, fidelity_psnr=fid.psnr, fidelity_l2=fid.l2,
        psnr_gpu=gpu_q.psnr if gpu_q else float("nan"), ssim_gpu=gpu_q.ssim if gpu_q else float("nan"), xnnpack=xnn,
        gpu_measured=_measured(gpu, ops), quantization_errors=errors, float_islands=islands, fp16_range=fp16,
        mixed_plan={key: value for key, value in plan.items() if key != "errors"},  # the row keeps the worst in quantization_errors
        violations=list(violations), artifacts={"eval": layout.relative(eval_path), **artifacts},
        seconds=laps.seconds,
        pipelines={name: {**figures, **pipeline_figures(tflite=tflite_q).get(name, {})}
                   for name, figures in t.pipelines.items()},
        frames=_with_frames(t.frames, tflite=tflite_q, gpu=gpu_q))


def _row_fields(t: Trained, v: Variant, layout: RunLayout, made: Sequence[Artifact], latency, ops, reports
                ) -> Dict[str, Any]:
    """The row fields a fully judged and a screened artifact share: what it is, the float model's figures
    (``t``), the primary file's size, ops and the op tables' verdicts, and its latency."""
    primary = layout / made[0].path
    return dict(id=v.row_id(t.candidate.id), arch=t.candidate.arch, values={**t.candidate.values, **v.values},
                status="ok", params=t.params, macs=t.macs, size_kb=primary.stat().st_size / 1024,
                psnr_blurry=t.blurry_psnr, ssim_blurry=t.blurry_ssim, psnr_keras=t.keras_psnr,
                ssim_keras=t.keras_ssim, latency=latency, ops=op_counts(primary), inventory=inventory_table(ops),
                portability={k: dataclasses.asdict(r) for k, r in reports.items()}, channels=t.channels)


def screened_row(t: Trained, v: Variant, cfg: Config, layout: RunLayout, violations: Sequence[str],
                 seconds: Dict[str, float]) -> ResultRow:
    """``t`` judged for a rung's promotion only (``search.screen``): its Keras quality (in ``t``), its own
    .tflite exported and timed at the ranked latency alone (``rank.ranked_key``) for ``search.screen_seconds``,
    and the op tables' verdicts on that file. Its file's own quality, the other sizes and thread counts, the
    fp16 range and the GPU accelerator's placement are left to the rung that judges in full."""
    key = ranked_key(cfg)
    timed = [(s, n) for s in cfg.measure.shapes for n in cfg.measure.threads if latency_key(s, n) == key]
    brief = dataclasses.replace(cfg, measure=dataclasses.replace(
        cfg.measure, max_seconds=min(cfg.measure.max_seconds, cfg.search.screen_seconds)))
    laps = _Laps(dict(seconds))
    made, latency = export_and_measure(t, v, brief, layout, converter(t, v, cfg, None), laps, timed=timed)
    primary = layout / made[0].path
    ops = op_inventory(primary)
    reports = check_all(ops, cfg.portability.targets)
    laps("portability")
    return ResultRow(**_row_fields(t, v, layout, made, latency, ops, reports),
                     violations=measured_violations(violations, None, cfg.portability.require), artifacts=_files(made),
                     seconds=laps.seconds, pipelines=t.pipelines, frames=t.frames, screened=True)


def _files(made: Sequence[Artifact]) -> Dict[str, str]:
    """A row's files: ``primary`` (the first measured size) and each by ``<precision>_<H>x<W>``."""
    return {"primary": made[0].path, **{f"{a.precision}_{a.shape[0]}x{a.shape[1]}": a.path for a in made}}


def _with_frames(frames, **by_source):
    """``frames`` plus the per-frame figures of every source that was judged (``gpu``: when asked for)."""
    for source, q in by_source.items():
        if q is not None:
            frames = frames.with_source(source, q.per_image, q.per_image_ssim)
    return frames
