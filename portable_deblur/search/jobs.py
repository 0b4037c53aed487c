"""One unit of a search's work: a ``Job`` (an asked trial: which candidate, phase and rung to evaluate) and its
``Outcome`` (rows, objective values, constraints); which (candidate, phase, rung) a trial is, and whether it
holds its work (``search.study`` schedules them)."""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import optuna
from optuna.trial import TrialState

from portable_deblur.models.candidate import Candidate
from portable_deblur.records import ResultRow
from portable_deblur.search import attrs
from portable_deblur.search.attrs import TRAIN
from portable_deblur.search.heartbeat import Heartbeat


class Outcome(NamedTuple):
    """What evaluating one candidate produced: rows, and the objective values and constraints if it
    completed (``state`` COMPLETE, FAIL or PRUNED)."""

    state: TrialState
    rows: List[ResultRow]
    values: Optional[Sequence[float]] = None
    constraints: Optional[Dict[str, float]] = None  # None: none (a NamedTuple default is shared, so no {})


def job_of(t: optuna.trial.FrozenTrial) -> Tuple[Optional[str], str, int]:
    """(candidate id, phase, rung) of a trial."""
    return t.user_attrs.get(attrs.CANDIDATE), t.user_attrs.get(attrs.PHASE, TRAIN), t.user_attrs.get(attrs.RUNG, 0)


def holds(t: optuna.trial.FrozenTrial) -> bool:
    """Whether trial ``t`` has, or will have, done its work (a failed or duplicate trial has not)."""
    alive = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
    return t.state in alive or (t.state == TrialState.PRUNED and (attrs.ROWS in t.user_attrs
                                                                   or t.user_attrs.get(attrs.STATUS) == "final"))


class Job:
    """One asked trial: evaluate ``candidate`` in ``phase`` (to ``rung``) when ``pending``, then ``tell`` the
    outcome."""

    def __init__(self, study, trial: optuna.Trial, beat: Heartbeat, candidate: Optional[Candidate],
                 phase: str, pending: bool, rung: int = 0):
        self.study, self.trial, self.beat = study, trial, beat
        self.candidate, self.phase, self.pending, self.rung = candidate, phase, pending, rung

    def tell(self, outcome: Outcome) -> None:
        self.beat.stop()
        self.study._tell(self.trial, outcome)
        self.pending = False
