"""The run's last latency measurement, the one the front ranks by: every file competing for the front timed
again in one process, each paired with the reference network, round-robin (``deploy.paired.interleaved``);
then front neighbours whose intervals still overlap timed A/B/A/B against each other until they are ordered or
``measure.max_seconds`` pass (``deploy.paired.duel``). Each trial's own measurement ran in its own window;
here every file sees the same one, so their ratios compare."""
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from portable_deblur.config import Config
from portable_deblur.confidence import Interval
from portable_deblur.rank import Objectives, competing, faster, front_rows, latency_ratio, promote
from portable_deblur.estimates import Duel
from portable_deblur.records import ResultRow
from portable_deblur.latency import LatencyKey
from portable_deblur.search import attrs


def file_at(row: ResultRow, key: str) -> Optional[str]:
    """The row's ``.tflite`` (relative to the run) measured at ``key``'s resolution."""
    k = LatencyKey.parse(key)
    return next((path for name, path in row.artifacts.items()
                 if name not in ("eval", "primary") and name.endswith(f"_{k.height}x{k.width}")), None)


def settle(cfg: Config, study) -> None:
    """Re-time the competing rows' files paired and interleaved (once per run: a finished run resumed keeps its
    figures), set the run's unit, then duel the front's overlapping neighbours."""
    from portable_deblur.deploy.paired import in_subprocess

    spec, layout = Objectives.of(cfg), study.layout
    key = LatencyKey.parse(spec.latency)
    reference = layout.reference(key.shape)
    _, rows = competing(study.rows(retimed=False), spec)
    rows = [r for r in rows if file_at(r, spec.latency) and (layout / file_at(r, spec.latency)).is_file()]
    rows = [rows[i] for i in promote([spec.values(r) for r in rows], spec.maximize, MAX_SETTLED,
                                     names=[r.id for r in rows])]
    if cfg.measure.backend != "local" or cfg.measure.interleaved_rounds < 1 or len(rows) < 2 or not reference.is_file():
        return
    done = study.study.user_attrs.get(attrs.INTERLEAVED, {})
    if all(done.get(r.id, {}).get("key") == spec.latency and "retimed" in done[r.id] for r in rows):
        return
    start = time.perf_counter()
    out = in_subprocess(["interleaved", *(layout / file_at(r, spec.latency) for r in rows), "--reference", reference,
                         "--threads", key.threads, "--rounds", cfg.measure.interleaved_rounds,
                         "--pairs-per-round", PAIRS_PER_ROUND,
                         "--max-seconds", cfg.measure.max_seconds, "--level", spec.level])["result"]
    # The reference's milliseconds as the ratios were taken (run in alternation, after another file): alone
    # it ran 5-7 % faster (its weights stay cached), which read every file 8-9 % fast. The median over the
    # files: a slow window during part of the re-timing moves it little.
    unit = float(np.median([r["reference_ms"] for r in out]))
    study.store.record_settled(spec.latency, {r.id: t for r, t in zip(rows, out)}, unit, spec.level,
                               time.perf_counter() - start)
    duel_front(cfg, study)


PAIRS_PER_ROUND = 10  # of each file with the reference, per round of the final re-timing
MAX_SETTLED = 24  # files re-timed in one process (all loaded at once): the best by non-dominated sorting
MAX_DUELS = 12  # each up to measure.max_seconds of timed runs: bounds the re-timing of a large front


def duel_pairs(rows: List[ResultRow], spec: Objectives) -> List[tuple]:
    """Pairs among the front and the two fastest competing rows (the recommendation compares the fastest with
    the next) whose latency intervals overlap, nearest in latency first, at most ``MAX_DUELS``."""
    _, compete = competing(rows, spec)
    _, front = front_rows(rows, spec)
    fastest = sorted(compete, key=lambda r: r.best_ms(spec.latency))[:2]
    chosen = sorted({r.id: r for r in [*front, *fastest]}.values(), key=lambda r: r.best_ms(spec.latency))
    pairs = [(a, b) for i, a in enumerate(chosen) for b in chosen[i + 1:] if latency_ratio(a, b, spec).covers(1.0)]
    pairs.sort(key=lambda p: p[1].best_ms(spec.latency) / p[0].best_ms(spec.latency))
    return pairs[:MAX_DUELS]


def duel_front(cfg: Config, study) -> None:
    """Time each overlapping pair of ``duel_pairs`` A/B/A/B in one fresh process; keep both sides' verdicts."""
    from portable_deblur.deploy.paired import in_subprocess

    spec, layout = Objectives.of(cfg), study.layout
    threads = LatencyKey.parse(spec.latency).threads
    duels: Dict[str, List[Duel]] = {}
    start = time.perf_counter()
    for a, b in duel_pairs(study.rows(), spec):
        paths: List[Path] = [layout / file_at(a, spec.latency), layout / file_at(b, spec.latency)]
        out = in_subprocess(["duel", *paths, "--threads", threads, "--max-seconds", cfg.measure.max_seconds,
                             "--level", spec.level])
        r, seconds = out["result"], out["seconds"]
        verdict = {1: "faster", -1: "slower", 0: "tied"}[faster(Interval(r["ratio"], r["low"], r["high"]),
                                                                 spec.latency_margin)]
        mirror = {"faster": "slower", "slower": "faster", "tied": "tied"}[verdict]
        duels.setdefault(a.id, []).append(Duel(b.id, r["ratio"], r["low"], r["high"], r["pairs"], verdict, seconds))
        duels.setdefault(b.id, []).append(Duel(a.id, 1 / r["ratio"], 1 / r["high"], 1 / r["low"], r["pairs"],
                                               mirror, seconds))
    study.store.record_duels(duels, time.perf_counter() - start)
