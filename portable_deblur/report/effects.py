"""What each searched value (and each optimization) costs, among the artifacts trained equally, with paired
intervals: the report's "What each choice costs" table."""
import html
from statistics import mean
from typing import Dict, List, Sequence

import numpy as np

from portable_deblur.confidence import Interval, paired_difference
from portable_deblur.rank import Objectives
from portable_deblur.records import OPTIMIZATION_KEYS, ResultRow, equally_trained
from portable_deblur.report.table import html_table


def choice_effects(rows: Sequence[ResultRow], spec: Objectives) -> List[Dict]:
    """What each searched value (and each optimization) costs: per value, the mean PSNR and latency of the
    artifacts that have it, and the difference to the mean over all of them -- averaged over the others --
    with intervals: the PSNR difference paired over the validation frames (each frame's mean over the value's
    artifacts minus its mean over all), the latency difference from each artifact's interval (independent
    errors, summed in quadrature). ``delta_*_text`` says ``≈ 0`` where the interval covers zero.
    Only artifacts trained equally are compared (``records.equally_trained``: the most inherited + own
    steps), since a network trained longer would credit its steps to its values."""
    ok = equally_trained([r for r in rows if r.status == "ok" and spec.latency in r.latency])
    if not ok:
        return []
    keys = sorted({k for r in ok for k in r.values if k not in OPTIMIZATION_KEYS}) + ["optimization"]
    out = []
    for key in keys:
        value_of = (lambda r: r.optimization) if key == "optimization" else (lambda r, k=key: _text(r.values.get(k)))
        groups: Dict[str, List[ResultRow]] = {}
        for r in ok:
            groups.setdefault(value_of(r), []).append(r)
        if len(groups) < 2:
            continue
        for value, members in groups.items():
            db, ms = _delta_db(members, ok, spec), _delta_ms(members, ok, spec)
            out.append({"choice": key, "value": value, "artifacts": len(members),
                        "mean_psnr_db": mean(spec.values(r)[0] for r in members),
                        "mean_latency_ms": mean(spec.values(r)[1] for r in members),
                        "delta_db": db.estimate, "delta_db_text": _effect(db, "+.3f", " dB", spec.quality_margin_db),
                        "delta_ms": ms.estimate, "delta_ms_text": _effect(ms, "+.2f", " ms")})
    return out


def effects_per_optimization(rows: Sequence[ResultRow], spec: Objectives) -> List[Dict]:
    """``choice_effects`` among the artifacts of each optimization (fp32, int8, mixed, ...) on its own, each row
    with its ``optimization``: what a value costs and buys in one precision (a norm that is free in float can
    decide int8's latency). Empty where the run made a single optimization."""
    ok = [r for r in rows if r.status == "ok"]
    optimizations = sorted({r.optimization for r in ok})
    if len(optimizations) < 2:
        return []
    return [{"optimization": o, **e} for o in optimizations
            for e in choice_effects([r for r in ok if r.optimization == o], spec)]


def _delta_db(members: Sequence[ResultRow], every: Sequence[ResultRow], spec: Objectives) -> Interval:
    """Mean PSNR of ``members`` minus that of ``every``, paired over the frames (plain where rows kept none)."""
    names = {r.frames.names if r.frames is not None else None for r in every}
    if None not in names and len(names) == 1:
        frames = lambda rs: np.mean([r.ranked_frames(spec.psnr) for r in rs], axis=0)  # noqa: E731
        return paired_difference(frames(members), frames(every), spec.level)
    d = mean(spec.values(r)[0] for r in members) - mean(spec.values(r)[0] for r in every)
    return Interval(d, d, d, spec.level)


def _delta_ms(members: Sequence[ResultRow], every: Sequence[ResultRow], spec: Objectives) -> Interval:
    """Mean latency of ``members`` minus that of ``every``: the weights of each artifact's estimate, and the
    half-widths of their intervals combined in quadrature."""
    ids = {r.id for r in members}
    weights = [(1 / len(members) if r.id in ids else 0.0) - 1 / len(every) for r in every]
    estimates = [r.latency_interval(spec.latency) for r in every]
    d = sum(w * e.estimate for w, e in zip(weights, estimates))
    half = float(np.sqrt(sum((w * e.half_width) ** 2 for w, e in zip(weights, estimates))))
    return Interval(d, d - half, d + half, spec.level)


def _effect(d: Interval, fmt: str, unit: str, margin: float = 0.0) -> str:
    """``+0.120 dB [+0.08, +0.16]``; ``≈ 0 (-0.010 dB [-0.03, +0.01])`` where the interval covers 0; a note where
    it does not but reaches into the ``margin`` below which a difference does not count (``rank``)."""
    text = f"{d.estimate:{fmt}}{unit} [{d.low:{fmt}}, {d.high:{fmt}}]"
    if d.covers(0.0):
        return f"≈ 0 ({text})"
    return f"{text}, under the {margin:g}{unit} margin" if margin and min(abs(d.low), abs(d.high)) <= margin else text


def _text(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def effects_section(rows: Sequence[ResultRow], spec: Objectives) -> List[str]:
    """"What each choice costs": the table of ``choice_effects`` and which artifacts it compares; or why
    there is none when too few were trained equally."""
    effects = choice_effects(rows, spec)
    trained = [r for r in rows if r.status == "ok"]
    equal = equally_trained(trained)
    if not effects and len({r.training for r in trained}) > 1:
        return [f"<h2>What each choice costs</h2><p>Only {len(equal)} artifact(s) trained the most "
                f"({html.escape(equal[0].training_label)}), too few to compare values; rows trained less "
                "(lower rungs) are not compared with them, since they would credit one value with "
                "another's training.</p>"]
    if not effects:
        return []
    compared = sum(e["artifacts"] for e in effects if e["choice"] == effects[0]["choice"])
    left = len(trained) - len(equal)
    return ["<h2>What each choice costs</h2><p>Mean over the artifacts with that value, and its "
            "difference to the mean of all artifacts (so averaged over the other choices) with its "
            f"{100 * spec.level:g} % interval (PSNR paired over the frames); ≈ 0 where the interval "
            "covers zero, over the "
            f"{compared} artifacts trained equally ({html.escape(equal[0].training_label)})"
            + (f"; {left} trained less (lower rungs) are left out, so no value is credited "
               "with another's training" if left else "") + ".</p>",
            html_table(effects, ["choice", "value", "artifacts", "mean_psnr_db", "delta_db_text",
                                 "mean_latency_ms", "delta_ms_text"],
                       fmt={"mean_psnr_db": ".3f", "mean_latency_ms": ".2f"})] + _per_optimization(rows, spec)


def _per_optimization(rows: Sequence[ResultRow], spec: Objectives) -> List[str]:
    effects = effects_per_optimization(rows, spec)
    if not effects:
        return []
    return ["<h3>Per optimization</h3><p>The same among the artifacts of one optimization at a time: what a "
            "value costs and buys in that precision.</p>",
            html_table(effects, ["optimization", "choice", "value", "artifacts", "mean_psnr_db", "delta_db_text",
                                 "mean_latency_ms", "delta_ms_text"],
                       fmt={"mean_psnr_db": ".3f", "mean_latency_ms": ".2f"})]
