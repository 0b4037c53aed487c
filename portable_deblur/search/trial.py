"""One candidate through the pipeline, as a short loop over stage functions: train -> judge -> for every
``Variant`` of ``optimize.plan``: make its float model (``optimize.variants``) or convert it, then judge the
file, measure it and check its portability (``search.artifact``) -- one ``ResultRow`` per artifact."""
import dataclasses
import json
import shutil
import time
from typing import List, Optional, Sequence

from portable_deblur.config import Config
from portable_deblur.data.sources import Dataset
from portable_deblur.layout import RunLayout
from portable_deblur.models.build import build_model
from portable_deblur.models.candidate import Candidate
from portable_deblur.optimize.plan import TRAINED, plan
from portable_deblur.records import ResultRow, Variant
from portable_deblur.optimize.options import MIXED
from portable_deblur.search.artifact import artifact_row, mixed_plan, screened_row
from portable_deblur.files import atomic_write
from portable_deblur.train.fit import as_float32, fit, precision_policy, seed_everything, strategy_for
from portable_deblur.train.judge import Trained, judged, keras_psnr
from portable_deblur.train.start import apply_start, start_of


def run_candidate(candidate: Candidate, cfg: Config, dataset: Dataset, layout: RunLayout,
                  violations: Sequence[str] = (), rung: int = 0) -> List[ResultRow]:
    """Train one candidate, then make, judge and measure its fp32 artifact and (unless
    ``optimize.apply_to=pareto``) every optimized variant; one row each (a failing variant marks only its
    own row failed).

    With ``search.rungs``, trains to ``rungs[rung]`` steps: rung 0 from its start, a later rung continuing
    from the weights, optimizer state and step the previous rung left in the candidate's checkpoint. A rung
    of 0 steps judges the start as it is (a path of the run's supernet: the search on shared weights), and
    the next rung fine-tunes from the start. Only the top rung makes the optimized variants
    (``apply_to=all``): lower rungs only rank candidates, and with ``search.screen`` are judged only by what
    that ranking reads (``search.artifact.screened_row``)."""
    folder = layout.folder(candidate.id)
    checkpoint = layout.checkpoint(folder)
    rungs = cfg.search.rungs
    fresh = rung == 0 or rungs[rung - 1] == 0  # nothing trained before this rung: it begins at the start
    if rung == 0:
        shutil.rmtree(folder, ignore_errors=True)  # leftovers of an interrupted attempt are never reused
    elif not fresh and not checkpoint.is_dir():
        raise FileNotFoundError(f"{checkpoint} (rung {rung - 1}'s training state) is not on this machine: with "
                                f"search.rungs and several machines, give the workers a shared run.root")
    start = time.perf_counter()
    seed_everything(cfg.train.seed, cfg.train.jit_compile)  # before building: initial weights are seeded too
    strategy = strategy_for(cfg.train)
    with precision_policy(cfg.train.precision), strategy.scope():
        model = build_model(candidate)
    start_from = start_of(cfg, layout, candidate)
    started = layout.start_record(folder)  # the start's own quality, measured once (rung 0) for every rung's rows
    tuned = (rungs[rung] if rungs else cfg.train.steps) > 0  # 0: the start is judged as it is (it is the model)
    if fresh and start_from.path is not None:
        apply_start(model, candidate, start_from)
        if tuned:  # in float32, as the trained model is judged: the fine-tuning's gain is then the training's alone
            atomic_write(started, json.dumps({"psnr": keras_psnr(as_float32(model), candidate, dataset)}))
    inherited_psnr = json.loads(started.read_text())["psnr"] if started.is_file() else float("nan")
    steps = 0
    if tuned:
        steps = fit(model, dataset.train, cfg.train, log_dir=layout.tensorboard(folder), desc=candidate.id,
                    strategy=strategy, checkpoint=checkpoint,  # weights + optimizer state + step: can be continued
                    stop_at=rungs[rung] if rungs else None).steps
    model = as_float32(model)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(layout.model(folder))
    train_s = time.perf_counter() - start
    trained = judged(candidate, model, cfg, dataset, folder, TRAINED, steps)
    before = {"train": train_s, "judge": time.perf_counter() - start - train_s}  # the Keras model over the frames
    inherited_psnr = inherited_psnr if tuned else trained.keras_psnr
    top = not rungs or rung == len(rungs) - 1
    if cfg.search.screen and not top:  # judged only by what its promotion ranks
        rows = [screened_row(trained, TRAINED, cfg, layout, violations, before)]
    else:
        variants = plan(cfg.optimize) if cfg.optimize.apply_to == "all" and top else [TRAINED]
        rows = make_artifacts(trained, variants, cfg, dataset, layout, violations, before)
    return [dataclasses.replace(r, rung=rung, steps=steps, inherited_steps=start_from.steps,
                                inherited_from=start_from.source, psnr_inherited=inherited_psnr) for r in rows]


def optimize_saved(candidate: Candidate, cfg: Config, dataset: Dataset, layout: RunLayout,
                   violations: Sequence[str] = ()) -> List[ResultRow]:
    """``optimize.apply_to=pareto``: the optimized variants of a candidate trained earlier in this run, from
    its saved model (the float row is already in the study)."""
    from portable_deblur.backend import keras
    from portable_deblur.models.layers import CUSTOM_OBJECTS

    folder = layout.folder(candidate.id)
    saved = layout.model(folder)
    if not saved.is_file():
        raise FileNotFoundError(f"{saved} is not on this machine: with optimize.apply_to=pareto and several "
                                f"machines, give the workers a shared run.root")
    model = keras.models.load_model(saved, custom_objects=CUSTOM_OBJECTS, compile=False)
    trained = judged(candidate, model, cfg, dataset, folder, TRAINED)
    return make_artifacts(trained, plan(cfg.optimize)[1:], cfg, dataset, layout, violations)


def make_artifacts(trained: Trained, variants: Sequence[Variant], cfg: Config, dataset: Dataset,
                   layout: RunLayout, violations: Sequence[str], before: Optional[dict] = None) -> List[ResultRow]:
    """One row per variant, in plan order. The trained model's own row raises (the trial fails); any other
    variant that raises gets a failed row, and the variants made from a float model that failed are left out."""
    from portable_deblur.optimize.variants import make_float, qat_model

    floats, rows = {None: trained}, []
    for v in variants:
        source = floats.get(v.base)
        if source is None and v.kind != "fp32":
            continue  # its float model failed: that row says why
        start = time.perf_counter()
        try:
            if v == TRAINED:
                rows.append(artifact_row(trained, v, cfg, dataset, layout, violations, before or {}))
            elif v.kind == "fp32":
                source = floats[v.base] = make_float(trained, v, cfg, dataset, layout)
                rows.append(artifact_row(source, v, cfg, dataset, layout, violations,
                                         {"optimize": time.perf_counter() - start}))
            elif v.kind == "qat":
                keep = mixed_plan(source, cfg, dataset).islands if v.mode == MIXED else ()
                qat = qat_model(source, cfg, dataset, keep)
                rows.append(artifact_row(source, v, cfg, dataset, layout, violations,
                                         {"qat": time.perf_counter() - start}, qat=qat))
            else:
                rows.append(artifact_row(source, v, cfg, dataset, layout, violations, {}))
        except Exception as exc:  # e.g. the converter refuses an op in this mode
            if v == TRAINED:
                raise
            rows.append(failed_row(trained.candidate, exc, v))
    return rows


def failed_row(candidate: Candidate, error: BaseException, variant: Variant = TRAINED) -> ResultRow:
    """The row recorded for a candidate (or one of its variants) whose pipeline raised: the search goes on."""
    message = " ".join(str(error).split())  # converter errors span many lines
    return ResultRow(id=variant.row_id(candidate.id), arch=candidate.arch, values={**candidate.values, **variant.values},
                     status="failed", error=f"{type(error).__name__}: {message}"[:2000])


def skipped_row(candidate: Candidate, reasons: dict, latency: Optional[dict] = None) -> ResultRow:
    """The row for a candidate not trained: a required target would reject some of its ops, or (reason
    ``latency``) its untrained export is over ``search.max_latency_ms`` (``latency``: what it measured)."""
    return ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="skipped",
                     error="; ".join(f"{t}: {why}" for t, why in sorted(reasons.items())),
                     violations=sorted(t for t in reasons if t != "latency"), latency=latency or {})
