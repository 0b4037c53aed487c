"""Making an optimized model from a trained one: a channel-pruned or m:n-sparse float model (fine-tuned and
saved in its own folder), or the QAT model an int8 file is converted from."""
import dataclasses

from portable_deblur.config import Config
from portable_deblur.data.sources import Dataset
from portable_deblur.deploy.export import representative_inputs
from portable_deblur.layout import RunLayout
from portable_deblur.records import Variant
from portable_deblur.train.judge import Trained, judged
from portable_deblur.train.fit import fit


def _fine_tune(model, cfg: Config, dataset: Dataset, desc: str) -> None:
    if cfg.optimize.prune_steps:
        fit(model, dataset.train, dataclasses.replace(cfg.train, steps=cfg.optimize.prune_steps,
                                                      learning_rate=cfg.optimize.prune_learning_rate), desc=desc)


def make_float(t: Trained, v: Variant, cfg: Config, dataset: Dataset, layout: RunLayout) -> Trained:
    """``v.base`` applied to ``t``'s model: channel pruning to that fraction of its MACs (``prune.py``) or
    TF-MOT m:n sparsity kept while fine-tuning (``sparsity.py``); saved and judged like the trained model."""
    kind, value = v.base
    if kind == "prune":
        from portable_deblur.optimize.prune import prune

        model = prune(t.model, float(value), cfg.measure.shapes[0], cfg.optimize.prune_multiple).model
        _fine_tune(model, cfg, dataset, f"{t.candidate.id} {v.id}")
    else:
        from portable_deblur.optimize import sparsity

        wrapped, wrappers = sparsity.wrap(t.model, value)
        _fine_tune(wrapped, cfg, dataset, f"{t.candidate.id} {v.id}")
        model = sparsity.strip(t.model, wrapped, wrappers)
    folder = layout.folder(t.candidate.id, v.id)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(layout.model(folder))
    return judged(t.candidate, model, cfg, dataset, folder, v)


def qat_model(t: Trained, cfg: Config, dataset: Dataset, keep_float=()):
    """8-bit QAT of ``t``'s model: fake-quant twin (``keep_float``: layers left float, a mixed plan's islands),
    ranges from calibration crops, ``optimize.qat_steps`` of fine-tuning at ``optimize.qat_learning_rate``;
    its int8 file is judged like every artifact (fidelity against this fake-quant model)."""
    from portable_deblur.optimize.qat import init_ranges, quantize_aware

    qat = quantize_aware(t.model, keep_float)
    crop = (cfg.train.crop, cfg.train.crop)
    init_ranges(qat, t.model, [x[0] for x in representative_inputs(
        dataset.train, crop, cfg.optimize.representative_count, cfg.data.seed)()])
    fit(qat, dataset.train, dataclasses.replace(cfg.train, steps=cfg.optimize.qat_steps,
                                                learning_rate=cfg.optimize.qat_learning_rate),
        desc=f"{t.candidate.id} QAT")
    return qat
