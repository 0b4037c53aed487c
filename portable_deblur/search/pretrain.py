"""What is known about a candidate before any training step, because it does not depend on the weights:
the ops a required target would reject (table prediction from the Keras graph, or the GPU accelerator's
measured verdict on the untrained export) and the untrained export's latency (``search.max_latency_ms``)."""
import dataclasses
from typing import Dict, Sequence

from portable_deblur.config import Config
from portable_deblur.models.candidate import Candidate
from portable_deblur.rank import Objectives
from portable_deblur.records import ResultRow
from portable_deblur.latency import LatencyKey
from portable_deblur.search.study import SearchStudy


def check_candidates(cfg: Config, candidates: Sequence[Candidate]) -> Dict[str, Dict[str, str]]:
    """Build every candidate once (cheap) so a bad argument fails before any training starts.

    Returns, per candidate id, ``{required target: why its Keras graph would fall back there}``, judged
    before any training time is spent on it.
    """
    from portable_deblur.models.build import check_arguments

    for c in candidates:
        check_arguments(c.arch, c.kwargs)
    return {c.id: violations_of(cfg, c) for c in candidates}


def violations_of(cfg: Config, candidate: Candidate) -> Dict[str, str]:
    """``{required target: the ops its delegate would reject}`` for ``candidate``, before any training: the
    table prediction from its Keras graph, except a required ``gpu`` on a host with a Vulkan adapter, which is
    measured: the untrained network is converted and compiled by LiteRT's GPU accelerator (``deploy.gpu``;
    placement does not depend on the weights)."""
    from portable_deblur.deploy.portability import check_all, predict_ops
    from portable_deblur.models.build import build_model

    model = build_model(candidate)  # also how a bad builder value (e.g. an unknown upsampler) fails up front
    if "mixed" in cfg.optimize.ptq and cfg.optimize.mixed_islands:  # a user's float islands must exist
        from portable_deblur.optimize.mixed import check_islands

        check_islands(cfg.optimize.mixed_islands, [layer.name for layer in model.layers[1:]])
    if not cfg.portability.require:
        return {}
    reports = check_all(predict_ops(model), cfg.portability.require)
    out = {t: ", ".join(r.fallback.values()) for t, r in reports.items() if not r.portable}
    measured = _measured_gpu(model, cfg) if "gpu" in cfg.portability.require else None
    if measured is not None:
        out.pop("gpu", None)
        if not measured.fully_delegated:
            out["gpu"] = "measured: " + ", ".join(f"{op} ({why})" for op, why in measured.rejected.items())
    return out


def _measured_gpu(model, cfg: Config):
    import tempfile
    from pathlib import Path

    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.gpu import measure_placement, vulkan_icd

    if vulkan_icd() is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "untrained.tflite"
        path.write_bytes(to_tflite(model, cfg.measure.shapes[0]))
        return measure_placement(path)


def untrained_latency(cfg: Config, study: SearchStudy, candidate: Candidate) -> ResultRow:
    """A skipped row holding the latency of ``candidate``'s untrained fp32 export at the objective's
    resolution and threads (timed against the run's reference like every artifact): latency does not depend
    on the weights, so a network over ``search.max_latency_ms`` is known before any training step."""
    import tempfile
    from pathlib import Path

    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.measure import measure
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.search.artifact import padded

    key = LatencyKey.parse(Objectives.of(cfg).latency)
    reference = study.layout.reference(key.shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "untrained.tflite"
        path.write_bytes(to_tflite(build_model(candidate), padded(key.shape, size_multiple(candidate))))
        lat = measure(path, cfg.measure, key.threads, reference if reference.is_file() else None)
    row = ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="skipped",
                    latency={str(key): dataclasses.asdict(lat)})
    return study.store.stabilize([row], cfg.rank.confidence)[0]
