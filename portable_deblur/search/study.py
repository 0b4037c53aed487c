"""The run's Optuna study as a scheduler: which candidate each worker trains next (ask / tell, heartbeats,
recovery, phases). Its rows are kept by ``search.rows``; its objectives and directions come from ``rank``.

One study per run, in ``<run dir>/study.db`` (SQLite) by default or at ``search.storage`` (e.g. PostgreSQL,
shared by workers on several machines). Each finished trial keeps its result rows (the float artifact and
every optimized variant) as the user attribute ``rows``; the run directory holds the files they point to.

Exactly-once, without locks of our own:

- ``sampler=grid``: Optuna's GridSampler gives trial number *k* grid point *k* for the first *n* trials, and
  the storage hands out trial numbers atomically, so workers never pick the same point. A trial created
  past *n* (two workers asked at once for the last point) is pruned as ``surplus`` before any work.
- Interrupted trials: Ctrl-C marks the running trial ``interrupted``; a killed worker stops its heartbeat
  (a user attribute refreshed every ``search.heartbeat_s``). Whichever worker wins the storage's atomic
  RUNNING -> FAIL transition re-enqueues that trial's parameters, so it is re-run once. For grids this waits
  until all *n* points have their trial, so a retry never takes a trial number GridSampler maps to a point.
- A trial that raises (NaN loss, a refused op, out of memory) is FAIL with its reason and is not retried.
- Enqueued work (``enqueue``): ``search.rungs`` promotions (a *train* trial with user attribute ``rung`` k
  continues a candidate from rung k-1) and ``optimize.apply_to=pareto`` (one *optimize* trial per candidate
  on the float front makes its optimized variants). Every worker computes the same set from the same
  finished trials and may enqueue it again; of the trials for one (candidate, phase, rung) only the
  lowest-numbered that is not failed runs (trial numbers never change, so every worker agrees), the others
  are pruned as duplicates: each promotion happens exactly once.
- ``search.rungs``: a trial below the top rung is told PRUNED (its rows and values kept as user
  attributes), since a later rung may supersede it; once the last rung is done, every candidate whose last
  rung is below the top gets one *final* trial, told COMPLETE on the spot with that rung's values. So the
  study's COMPLETE trials are one per candidate at its highest rung: ``study.best_trials`` is the Pareto front
  of their estimates. The report's front knows noise (``rank.noisy_front``: it keeps what is tied within the
  intervals and drops what is beaten beyond them); the study keeps it as the user attribute ``front``.
"""
import dataclasses
import os
from contextlib import contextmanager
import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import optuna
import yaml
from optuna.trial import TrialState

from portable_deblur import environment
from portable_deblur.config import Config, load_saved, to_yaml
from portable_deblur.files import atomic_write
from portable_deblur.layout import RunLayout
from portable_deblur.models.candidate import Candidate, candidate_at
from portable_deblur.rank import Objectives
from portable_deblur.records import ResultRow
from portable_deblur.registry import ConfigError
from portable_deblur.search import attrs
from portable_deblur.search.attrs import FINAL, TRAIN
from portable_deblur.search.grid import Grid
from portable_deblur.search.heartbeat import Heartbeat, alive
from portable_deblur.search.jobs import Job, Outcome, holds, job_of
from portable_deblur.search.rows import RowStore
from portable_deblur.search.storage import open_storage, open_study


class SearchStudy:
    """One run: its layout, its Optuna study (the scheduler), its row store, the searched grid."""

    def __init__(self, cfg: Config, storage: optuna.storages.RDBStorage, study: optuna.Study):
        self.cfg = cfg
        self.layout = RunLayout.of(cfg)
        self.storage = storage
        self.study = study
        self.store = RowStore(study)
        self.grid = Grid(cfg.grid)
        self.size = self.grid.size
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def open(cls, cfg: Config) -> "SearchStudy":
        """Create the run's study, or reopen it to resume if it was made with the same config."""
        layout = RunLayout.of(cfg)
        storage, study = open_study(cfg, layout)
        opened, machine = cls(cfg, storage, study), environment.describe()
        study.set_user_attr(attrs.ENVIRONMENT + opened.worker, machine)
        atomic_write(layout.config, to_yaml(cfg) + yaml.safe_dump({"environment": machine}, sort_keys=False))
        return opened

    @classmethod
    def load(cls, run_dir) -> "SearchStudy":
        """Reopen a finished or running run read-only (reports, handoff): its config.yaml names the study."""
        layout = RunLayout(Path(run_dir))
        if not layout.config.is_file():
            raise ConfigError(f"run directory {str(run_dir)!r} has no config.yaml; pass the directory a search "
                              f"wrote (experiments/runs/<run name>)")
        cfg = load_saved(layout.config)
        storage = open_storage(cfg.search.storage or layout.study_url)
        return cls(cfg, storage, optuna.load_study(study_name=layout.root.name, storage=storage))

    # ---- choosing candidates ----------------------------------------------------------------------

    def candidate(self, trial: optuna.Trial) -> Candidate:
        params = {k: trial.suggest_categorical(k, self.grid.choices[k]) for k in self.grid.choices}
        return candidate_at(self.cfg.arch, self.cfg.model, self.grid.point(params))

    def _trials(self, states=None):
        return self.study.get_trials(deepcopy=False, states=states)

    def recover(self) -> List[int]:
        """Fail interrupted or silent trials and enqueue each once for a re-run; returns their numbers."""
        trials = self._trials()
        if self.cfg.search.sampler == "grid" and len(trials) < self.size:
            return []  # a retry now would take a trial number GridSampler maps to an unassigned point
        now, recovered = time.time(), []
        for t in trials:
            if t.state != TrialState.RUNNING or alive(t, now, self.cfg.search.heartbeat_s):
                continue
            try:
                won = self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                won = False  # another worker got there first and enqueued the retry
            params = self._params_of(t)
            if won and params is not None:
                phase = {k: t.user_attrs[k] for k in (attrs.PHASE, attrs.CANDIDATE, attrs.RUNG) if k in t.user_attrs}
                self.study.enqueue_trial(params, user_attrs={attrs.RETRY_OF: t.number, **phase})
                recovered.append(t.number)
        return recovered

    def _params_of(self, t: optuna.trial.FrozenTrial) -> Optional[Dict[str, Any]]:
        """The point a trial was evaluating, even if it was killed before suggesting all of it."""
        for params in (t.params, t.system_attrs.get("fixed_params", {})):
            if self.grid.complete(params) is not None:
                return dict(params)
        if "grid_id" in t.system_attrs:
            return self.grid.params_at(t.system_attrs["grid_id"])
        return None  # a sampled trial killed before sampling: nothing to re-run

    def evaluated(self) -> int:
        """Trials that produced rows (trained, failed or skipped candidates)."""
        return sum(1 for t in self._trials() if attrs.ROWS in t.user_attrs)

    def needs_trial(self) -> bool:
        """Whether this worker should ask for another trial now."""
        trials = self._trials()
        if any(t.state == TrialState.WAITING for t in trials):
            return True
        if self.cfg.search.sampler == "grid":
            return len(trials) < self.size
        distinct = {t.user_attrs.get(attrs.CANDIDATE) for t in trials if attrs.ROWS in t.user_attrs}
        cap = 20 * self.cfg.search.n_trials  # a small space keeps resampling known points
        started = sum(1 for t in trials if attrs.ROWS in t.user_attrs or t.state == TrialState.RUNNING)
        return started < self.cfg.search.n_trials and len(distinct) < self.size and len(trials) < cap

    def others_running(self) -> bool:
        return any(t.state == TrialState.RUNNING for t in self._trials())

    # ---- one trial ----------------------------------------------------------------------------------

    @contextmanager
    def next_trial(self) -> Iterator["Job"]:
        """Ask for a trial: yields its ``Job`` (the candidate and phase to evaluate, unless the trial was
        settled on the spot: surplus or a duplicate) while its heartbeat runs. The caller evaluates and calls
        ``job.tell(outcome)``; an exception or Ctrl-C inside marks the trial interrupted, to be re-run."""
        trial = self.study.ask()
        given = self.storage.get_trial_user_attrs(trial._trial_id)
        phase, rung = given.get(attrs.PHASE, TRAIN), given.get(attrs.RUNG, 0)
        beat = Heartbeat(self.storage, trial._trial_id, self.cfg.search.heartbeat_s,
                         {attrs.WORKER: self.worker, attrs.RUN_DIR: str(self.layout.root.resolve()),
                          attrs.INTERRUPTED: False})
        try:
            candidate, told = self._begin(trial, phase, rung)
            yield Job(self, trial, beat, candidate, phase, pending=not told, rung=rung)
        except BaseException:
            if self.storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                self.storage.set_trial_user_attr(trial._trial_id, attrs.INTERRUPTED, True)
            raise
        finally:
            beat.stop()

    def _begin(self, trial: optuna.Trial, phase: str, rung: int = 0) -> Tuple[Optional[Candidate], bool]:
        """(the trial's candidate, whether the trial is already told): surplus grid trials (no candidate) and
        duplicates end here."""
        fixed = "fixed_params" in self.storage.get_trial_system_attrs(trial._trial_id)
        if self.cfg.search.sampler == "grid" and trial.number >= self.size and not fixed:
            trial.set_user_attr(attrs.STATUS, "surplus")  # every grid point already has its trial
            self.study.tell(trial, state=TrialState.PRUNED)
            return None, True
        candidate = self.candidate(trial)
        trial.set_user_attr(attrs.CANDIDATE, candidate.id)
        if (phase != TRAIN or rung > 0) and self._taken_by_other(candidate.id, phase, rung, trial.number):
            trial.set_user_attr(attrs.STATUS, "duplicate")
            self.study.tell(trial, state=TrialState.PRUNED)
            return candidate, True
        if phase == FINAL:  # no work: the values of the rung that dropped it, kept off the front
            row = next(r for r in self.rows(retimed=False) if r.id == candidate.id)
            spec = Objectives.of(self.cfg)
            trial.set_user_attr(attrs.STATUS, "final")
            trial.set_user_attr("dropped_at_values", list(spec.values(row)))
            # PRUNED, not COMPLETE: a candidate trained less than the top rung is not compared with those
            # trained to it, so the study's best trials are the report's front (records.equally_trained).
            self._tell(trial, Outcome(TrialState.PRUNED, []))
            return candidate, True
        earlier = self._completed(candidate.id, before=trial.number) if phase == TRAIN and rung == 0 else None
        if earlier is not None:  # a sampler proposed a candidate already trained: reuse, don't retrain
            trial.set_user_attr(attrs.STATUS, "duplicate")
            trial.set_user_attr(attrs.DUPLICATE_OF, earlier.number)
            self.study.tell(trial, earlier.values, state=earlier.state)
        return candidate, earlier is not None

    def _tell(self, trial: optuna.Trial, outcome: Outcome) -> None:
        rows = [dataclasses.replace(r, trial=trial.number, worker=self.worker) for r in outcome.rows]
        if rows:  # (a final trial has none: its status says so)
            trial.set_user_attr(attrs.ROWS, [dataclasses.asdict(r) for r in rows])
            trial.set_user_attr(attrs.STATUS, rows[0].status)
        if outcome.values is not None:
            trial.set_user_attr(attrs.VALUES, list(outcome.values))
        for name, value in (outcome.constraints or {}).items():
            trial.set_constraint(name, value)
        if outcome.state == TrialState.FAIL:
            trial.set_user_attr(attrs.ERROR, rows[0].error if rows else "")
        self.study.tell(trial, outcome.values if outcome.state == TrialState.COMPLETE else None, state=outcome.state)

    def _completed(self, candidate_id: str, before: int) -> Optional[optuna.trial.FrozenTrial]:
        for t in self._trials((TrialState.COMPLETE, TrialState.PRUNED)):
            if t.number < before and job_of(t) == (candidate_id, TRAIN, 0) and attrs.ROWS in t.user_attrs:
                return t  # PRUNED: skipped, or trained to a rung below the top
        return None

    def _taken_by_other(self, candidate_id: str, phase: str, rung: int, number: int) -> bool:
        """Whether a lower-numbered trial of the same (candidate, phase, rung) is waiting, running, complete, or
        pruned after doing the work (a rung below the top keeps its rows)."""
        return any(t.number < number and job_of(t) == (candidate_id, phase, rung) and holds(t) for t in self._trials())

    def enqueue(self, candidate_ids: Sequence[str], phase: str, rung: int = 0) -> List[str]:
        """One ``phase`` trial (to ``rung``) for each of ``candidate_ids`` (trained in this study) that has
        none yet (a failed one is not retried: its rows say why; a killed one was re-enqueued by
        ``recover``); returns the ids enqueued."""
        trials = self._trials()
        done = {job_of(t)[0] for t in trials if job_of(t)[1:] == (phase, rung)}
        out = []
        for cid in candidate_ids:
            if cid in done:
                continue
            trained = next(t for t in trials if job_of(t)[:2] == (cid, TRAIN) and attrs.ROWS in t.user_attrs)
            extra = {attrs.RUNG: rung} if rung else {}
            self.study.enqueue_trial(self._params_of(trained),
                                     user_attrs={attrs.PHASE: phase, attrs.CANDIDATE: cid, **extra})
            out.append(cid)
        return out

    def set_reference_ms(self, measure) -> Dict[str, float]:
        """The run's latency anchor (``deploy.reference``): measured by the first worker (``measure()``),
        read back by every later one, so all trials scale their reference ratios alike."""
        if not self.store.reference_ms():
            self.study.set_user_attr(attrs.REFERENCE_MS, measure())
        return self.store.reference_ms()

    # ---- results ------------------------------------------------------------------------------------

    def rows(self, retimed: bool = True) -> List[ResultRow]:
        """The row store's rows (``RowStore.rows``)."""
        return self.store.rows(retimed)

    def rows_at(self, rung: int) -> List[ResultRow]:
        """Every row trained to ``rung`` (``search.rungs``), whatever later rungs replaced it with."""
        return [r for r in self.store.history() if r.rung == rung]

    def record_decision(self, decision) -> None:
        """Keep the run's tie groups and recommendation (``decision.Decision``) in the study."""
        self.study.set_user_attr(attrs.FRONT, [r.id for r in decision.front])
        self.study.set_user_attr(attrs.TIE_GROUPS, [list(g) for g in decision.ties])
        self.study.set_user_attr(attrs.RECOMMENDATION, list(decision.lines))

    def write_results(self) -> None:
        self.store.write_csv(self.layout.results_csv, self.layout.frames_csv)

    def trial_counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for t in self._trials():
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts
