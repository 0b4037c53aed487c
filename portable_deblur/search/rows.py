"""The row store: result rows kept in the run's study (trial user attribute ``rows``), read back latest per
id, with the final interleaved re-timing applied; ``results.csv`` is written from them."""
import dataclasses
from typing import Any, Dict, List

import optuna

from portable_deblur.records import ResultRow, with_stable_ms, write_csv
from portable_deblur.search import attrs


class RowStore:
    """Rows in one Optuna ``study``."""

    def __init__(self, study: optuna.Study):
        self.study = study

    def rows(self, retimed: bool = True) -> List[ResultRow]:
        """Latest row per id over every finished trial (in trial order), with the final interleaved
        re-timing applied unless ``retimed=False``."""
        latest: Dict[str, ResultRow] = {}
        for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state.is_finished():
                for data in t.user_attrs.get(attrs.ROWS, []):
                    latest[data["id"]] = ResultRow(**data)
        stats = self.study.user_attrs.get(attrs.INTERLEAVED, {}) if retimed else {}
        out = []
        for row in latest.values():
            extra = stats.get(row.id)
            if extra and extra["key"] in row.latency:
                timed = {**row.latency[extra["key"]], **extra["stats"]}
                row = dataclasses.replace(row, latency={**row.latency, extra["key"]: timed})
            out.append(row)
        return out

    def history(self) -> List[ResultRow]:
        """Every row of every finished trial in trial order, each rung's included (``rows`` keeps the latest)."""
        return [ResultRow(**data) for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number)
                if t.state.is_finished() for data in t.user_attrs.get(attrs.ROWS, [])]

    def reference_ms(self) -> Dict[str, float]:
        """The run's anchor: the reference network's milliseconds per latency key at the run's start."""
        return self.study.user_attrs.get(attrs.REFERENCE_MS, {})

    def stabilize(self, rows: List[ResultRow]) -> List[ResultRow]:
        """``rows`` with ``stable_ms`` in the run's units (``records.with_stable_ms`` with this study's anchor):
        the figure the study's objective values and the report's front both use (``records.best_ms``)."""
        return with_stable_ms(rows, self.reference_ms())

    def record_interleaved(self, key: str, stats: Dict[str, Dict[str, Any]], seconds: float) -> None:
        """Keep the final interleaved re-timing (row id -> stats at latency ``key``)."""
        merged = {**self.study.user_attrs.get(attrs.INTERLEAVED, {}),
                  **{rid: {"key": key, "stats": s} for rid, s in stats.items()}}
        self.study.set_user_attr(attrs.INTERLEAVED, merged)
        self.study.set_user_attr(attrs.INTERLEAVED_SECONDS, seconds)

    def write_csv(self, path) -> None:
        write_csv(path, [r.flat() for r in self.rows()])
