"""The row store: result rows kept in the run's study (trial user attribute ``rows``), read back typed, latest
per id, with the run's final paired re-timing and duels applied; ``results.csv`` and ``frames.csv`` are
written from them."""
import dataclasses
from typing import Any, Dict, List, Sequence

import optuna

from portable_deblur.estimates import Duel, PairedLatency
from portable_deblur.records import ResultRow, write_csv
from portable_deblur.latency import with_paired_latency
from portable_deblur.search import attrs


class RowStore:
    """Rows in one Optuna ``study``."""

    def __init__(self, study: optuna.Study):
        self.study = study

    def rows(self, retimed: bool = True) -> List[ResultRow]:
        """Latest row per id over every finished trial (in trial order), with the final paired re-timing and
        duels applied unless ``retimed=False``."""
        latest: Dict[str, ResultRow] = {}
        for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state.is_finished():
                for data in t.user_attrs.get(attrs.ROWS, []):
                    latest[data["id"]] = ResultRow.from_dict(data)
        if not retimed:
            return list(latest.values())
        stats = self.study.user_attrs.get(attrs.INTERLEAVED, {})
        duels = self.study.user_attrs.get(attrs.DUELS, {})
        unit = self.study.user_attrs.get(attrs.UNIT_MS, {})
        return [_duelled(_retimed(_in_unit(row, unit), stats.get(row.id)), duels.get(row.id, []))
                for row in latest.values()]

    def history(self) -> List[ResultRow]:
        """Every row of every finished trial in trial order, each rung's included (``rows`` keeps the latest)."""
        return [ResultRow.from_dict(data) for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number)
                if t.state.is_finished() for data in t.user_attrs.get(attrs.ROWS, [])]

    def reference_ms(self) -> Dict[str, float]:
        """The run's anchor: the reference network's milliseconds per latency key at the run's start."""
        return self.study.user_attrs.get(attrs.REFERENCE_MS, {})

    def stabilize(self, rows: List[ResultRow], level: float = 0.95) -> List[ResultRow]:
        """``rows`` with their paired latency in the run's unit (``latency.with_paired_latency`` with this
        study's anchor): the figure the study's objective values use until the final re-timing."""
        return with_paired_latency(rows, self.reference_ms(), level)

    def record_settled(self, key: str, retimed: Dict[str, Dict[str, Any]], unit_ms: float, level: float,
                       seconds: float) -> None:
        """Keep the final paired re-timing (row id -> ``deploy.paired.Retimed`` fields at latency ``key``) and
        the unit it is read in; earlier duels are dropped (they compared the earlier figures)."""
        merged = {**self.study.user_attrs.get(attrs.INTERLEAVED, {}),
                  **{rid: {"key": key, "retimed": r, "unit_ms": unit_ms, "level": level} for rid, r in retimed.items()}}
        self.study.set_user_attr(attrs.INTERLEAVED, merged)
        self.study.set_user_attr(attrs.UNIT_MS, {**self.study.user_attrs.get(attrs.UNIT_MS, {}), key: unit_ms})
        self.study.set_user_attr(attrs.INTERLEAVED_SECONDS, seconds)
        self.study.set_user_attr(attrs.DUELS, {})

    def record_duels(self, duels: Dict[str, Sequence[Duel]], seconds: float) -> None:
        """Keep the A/B duels of front neighbours (row id -> its duels, each against one other row)."""
        self.study.set_user_attr(attrs.DUELS, {rid: [dataclasses.asdict(d) for d in ds] for rid, ds in duels.items()})
        self.study.set_user_attr(attrs.DUEL_SECONDS, seconds)

    def write_csv(self, path, frames_path=None) -> None:
        rows = self.rows()
        write_csv(path, [r.flat() for r in rows])
        if frames_path is not None:
            write_csv(frames_path, [f for r in rows if r.frames is not None for f in r.frames.rows(r.id)])


def _retimed(row: ResultRow, extra) -> ResultRow:
    """``row`` with the final re-timing at its key: the paired ratio it ranks by (runs made before pairing
    kept a plain interleaved median beside the trial's, ``stats``)."""
    if not extra or extra["key"] not in row.latency:
        return row
    key = extra["key"]
    if "stats" in extra:
        return dataclasses.replace(row, latency={**row.latency, key: {**row.latency[key], **extra["stats"]}})
    r = extra["retimed"]
    timed = {**row.latency[key], "settled": True, "interleaved_median_ms": r["median_ms"],
             "interleaved_reference_ms": r["reference_ms"], "interleaved_pairs": r["pairs"]}
    paired = PairedLatency(r["ratio"], r["ratio_low"], r["ratio_high"], extra["unit_ms"], r["pairs"], extra["level"])
    return dataclasses.replace(row, latency={**row.latency, key: timed}, paired={**row.paired, key: paired})


def _in_unit(row: ResultRow, unit: Dict[str, float]) -> ResultRow:
    """``row``'s trial-time paired figures read in the run's final unit (rows the final re-timing left out:
    lower rungs, infeasible ones), so every row of the report is in one unit."""
    paired = {k: dataclasses.replace(p, unit_ms=unit[k]) if k in unit else p for k, p in row.paired.items()}
    return dataclasses.replace(row, paired=paired) if paired != row.paired else row


def _duelled(row: ResultRow, duels) -> ResultRow:
    return dataclasses.replace(row, duels=tuple(Duel(**d) for d in duels)) if duels else row
