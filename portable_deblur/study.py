"""The run's Optuna study: which candidate each worker trains next, and every trial's result rows.

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
- ``optimize.apply_to=pareto``: once every candidate is trained, each candidate on the float Pareto front
  gets one enqueued *optimize* trial (user attribute ``phase``) that makes its optimized variants. Workers
  may enqueue the same one twice; of the trials for one candidate only the lowest-numbered that is not
  failed runs (trial numbers never change, so every worker agrees), the others are pruned as duplicates.
"""
import dataclasses
import itertools
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import optuna
import yaml
from optuna.trial import TrialState

from portable_deblur import environment
from portable_deblur.candidate import Candidate, candidate_at
from portable_deblur.config import Config, to_yaml
from portable_deblur.files import atomic_write
from portable_deblur.registry import ConfigError
from portable_deblur.results import ResultRow, write_csv

DIRECTIONS = ("maximize", "minimize")  # PSNR, latency
TRAIN, OPTIMIZE = "train", "optimize"  # trial phases
GRACE_HEARTBEATS = 3


class Outcome(NamedTuple):
    """What evaluating one candidate produced: rows, and the objective values and constraints if it
    completed (``state`` COMPLETE, FAIL or PRUNED)."""

    state: TrialState
    rows: List[ResultRow]
    values: Optional[Sequence[float]] = None
    constraints: Dict[str, float] = {}


def _encode(value: Any) -> Any:
    """Optuna categorical choices must be scalars: lists (e.g. ``enc_blocks``) become JSON strings."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _comparable(cfg: Config) -> Dict[str, Any]:
    """The config minus the ``run`` and ``log`` blocks and the storage URL: what must match for a run to be
    resumed."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    data.pop("run")
    data.pop("log")
    data["search"].pop("storage")
    return json.loads(json.dumps(data))


def _storage(url: str) -> optuna.storages.RDBStorage:
    if url.startswith("postgresql://"):  # the driver we install (psycopg 3), whatever SQLAlchemy's default
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):  # workers starting together may race to create the schema
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:
            if attempt == 4:
                shown = url.split("@")[-1] if "@" in url else url  # never print a password
                raise ConfigError(f"cannot open the study storage ...@{shown}: "
                                  f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
            time.sleep(0.5 + attempt)


def _worth_keeping(study: optuna.Study, heartbeat_s: float) -> bool:
    """A study is a run to protect once a trial completed, or while a worker's trial is alive."""
    now = time.time()
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            return True
        beat = t.user_attrs.get("heartbeat", 0.0)
        if t.state == TrialState.RUNNING and not t.user_attrs.get("interrupted") \
                and now - beat <= GRACE_HEARTBEATS * heartbeat_s:
            return True
    return False


class SearchStudy:
    """One run: its directory, its Optuna study, the searched space."""

    def __init__(self, cfg: Config, storage: optuna.storages.RDBStorage, study: optuna.Study):
        self.cfg = cfg
        self.dir = Path(cfg.run_dir)
        self.storage = storage
        self.study = study
        self.choices = {k: [_encode(v) for v in cfg.grid[k]] for k in sorted(cfg.grid)}
        self.decode = {k: dict(zip(self.choices[k], cfg.grid[k])) for k in self.choices}
        self.size = 1
        for values in self.choices.values():
            self.size *= len(values)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def open(cls, cfg: Config) -> "SearchStudy":
        """Create the run's study, or reopen it to resume if it was made with the same config."""
        run_dir = Path(cfg.run_dir)
        name = run_dir.name
        url = cfg.search.storage or f"sqlite:///{run_dir.resolve() / 'study.db'}"
        if cfg.run.overwrite:
            if cfg.search.storage:
                try:
                    optuna.delete_study(study_name=name, storage=_storage(url))
                except KeyError:
                    pass
            shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        storage = _storage(url)
        study = optuna.create_study(study_name=name, storage=storage, directions=list(DIRECTIONS),
                                    sampler=make_sampler(cfg), load_if_exists=True)
        wanted = _comparable(cfg)
        saved = study.user_attrs.get("config")
        if saved is not None and saved != wanted:
            if _worth_keeping(study, cfg.search.heartbeat_s):
                raise ConfigError(f"study {name!r} ({url}) holds a run with a different config; resume with the "
                                  f"same settings, pick another run.name=..., or pass run.overwrite=true")
            # No trial finished (a start that failed, or one stopped in its first trial): nothing to protect.
            optuna.delete_study(study_name=name, storage=storage)
            study = optuna.create_study(study_name=name, storage=storage, directions=list(DIRECTIONS),
                                        sampler=make_sampler(cfg))
            saved = None
        if saved is None:
            study.set_user_attr("config", wanted)
        opened, machine = cls(cfg, storage, study), environment.describe()
        study.set_user_attr(f"environment.{opened.worker}", machine)
        atomic_write(run_dir / "config.yaml", to_yaml(cfg) + yaml.safe_dump({"environment": machine}, sort_keys=False))
        return opened

    @classmethod
    def load(cls, run_dir) -> "SearchStudy":
        """Reopen a finished or running run read-only (reports, handoff): its config.yaml names the study."""
        from omegaconf import OmegaConf

        run_dir = Path(run_dir)
        saved = run_dir / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"run directory {str(run_dir)!r} has no config.yaml; pass the directory a search "
                              f"wrote (experiments/runs/<run name>)")
        data = OmegaConf.load(saved)
        data.pop("environment", None)  # a record of the machine, not a setting
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), data))
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, root=str(run_dir.parent), name=run_dir.name))
        url = cfg.search.storage or f"sqlite:///{run_dir.resolve() / 'study.db'}"
        storage = _storage(url)
        return cls(cfg, storage, optuna.load_study(study_name=run_dir.name, storage=storage))

    # ---- choosing candidates ----------------------------------------------------------------------

    def candidate(self, trial: optuna.Trial) -> Candidate:
        point = {k: self.decode[k][trial.suggest_categorical(k, self.choices[k])] for k in self.choices}
        return candidate_at(self.cfg.arch, self.cfg.model, point)

    def _trials(self, states=None):
        return self.study.get_trials(deepcopy=False, states=states)

    def _stale(self, t: optuna.trial.FrozenTrial, now: float) -> bool:
        if t.user_attrs.get("interrupted"):
            return True
        beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start else now)
        return now - beat > GRACE_HEARTBEATS * self.cfg.search.heartbeat_s

    def recover(self) -> List[int]:
        """Fail interrupted or silent trials and enqueue each once for a re-run; returns their numbers."""
        trials = self._trials()
        if self.cfg.search.sampler == "grid" and len(trials) < self.size:
            return []  # a retry now would take a trial number GridSampler maps to an unassigned point
        now, recovered = time.time(), []
        for t in trials:
            if t.state != TrialState.RUNNING or not self._stale(t, now):
                continue
            try:
                won = self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                won = False  # another worker got there first and enqueued the retry
            params = self._params_of(t)
            if won and params is not None:
                phase = {k: t.user_attrs[k] for k in ("phase", "candidate") if k in t.user_attrs}
                self.study.enqueue_trial(params, user_attrs={"retry_of": t.number, **phase})
                recovered.append(t.number)
        return recovered

    def _params_of(self, t: optuna.trial.FrozenTrial) -> Optional[Dict[str, Any]]:
        """The point a trial was evaluating, even if it was killed before suggesting all of it."""
        for params in (t.params, t.system_attrs.get("fixed_params", {})):
            if len(params) == len(self.choices):
                return dict(params)
        if "grid_id" in t.system_attrs:  # GridSampler's order: product over sorted keys, last key fastest
            point = list(itertools.product(*self.choices.values()))[t.system_attrs["grid_id"]]
            return dict(zip(self.choices, point))
        return None  # a sampled trial killed before sampling: nothing to re-run

    def evaluated(self) -> int:
        """Trials that produced rows (trained, failed or skipped candidates)."""
        return sum(1 for t in self._trials() if "rows" in t.user_attrs)

    def needs_trial(self) -> bool:
        """Whether this worker should ask for another trial now."""
        trials = self._trials()
        if any(t.state == TrialState.WAITING for t in trials):
            return True
        if self.cfg.search.sampler == "grid":
            return len(trials) < self.size
        distinct = {t.user_attrs.get("candidate") for t in trials if "rows" in t.user_attrs}
        cap = 20 * self.cfg.search.n_trials  # a small space keeps resampling known points
        started = sum(1 for t in trials if "rows" in t.user_attrs or t.state == TrialState.RUNNING)
        return started < self.cfg.search.n_trials and len(distinct) < self.size and len(trials) < cap

    def others_running(self) -> bool:
        return any(t.state == TrialState.RUNNING for t in self._trials())

    # ---- one trial ----------------------------------------------------------------------------------

    def run_trial(self, evaluate: Callable[[Candidate, str], Outcome]) -> Optional[Candidate]:
        """Ask for a trial, evaluate its candidate in its phase (``train`` or ``optimize``), tell the
        outcome; returns the candidate (None if the trial was surplus)."""
        trial = self.study.ask()
        phase = self.storage.get_trial_user_attrs(trial._trial_id).get("phase", TRAIN)
        beat = _Heartbeat(self.storage, trial._trial_id, self.cfg.search.heartbeat_s,
                          {"worker": self.worker, "run_dir": str(self.dir.resolve()), "interrupted": False})
        try:
            fixed = "fixed_params" in self.storage.get_trial_system_attrs(trial._trial_id)
            if self.cfg.search.sampler == "grid" and trial.number >= self.size and not fixed:
                beat.stop()
                trial.set_user_attr("status", "surplus")  # every grid point already has its trial
                self.study.tell(trial, state=TrialState.PRUNED)
                return None
            candidate = self.candidate(trial)
            trial.set_user_attr("candidate", candidate.id)
            if phase == OPTIMIZE and self._optimized_by_other(candidate.id, trial.number):
                beat.stop()
                trial.set_user_attr("status", "duplicate")
                self.study.tell(trial, state=TrialState.PRUNED)
                return candidate
            earlier = self._completed(candidate.id, before=trial.number) if phase == TRAIN else None
            if earlier is not None:  # a sampler proposed a candidate already trained: reuse, don't retrain
                beat.stop()
                trial.set_user_attr("status", "duplicate")
                trial.set_user_attr("duplicate_of", earlier.number)
                self.study.tell(trial, earlier.values)
                return candidate
            outcome = evaluate(candidate, phase)
            beat.stop()
            rows = [dataclasses.replace(r, trial=trial.number, worker=self.worker) for r in outcome.rows]
            trial.set_user_attr("rows", [dataclasses.asdict(r) for r in rows])
            trial.set_user_attr("status", rows[0].status if rows else "empty")
            for name, value in outcome.constraints.items():
                trial.set_constraint(name, value)
            if outcome.state == TrialState.FAIL:
                trial.set_user_attr("error", rows[0].error if rows else "")
            self.study.tell(trial, outcome.values if outcome.state == TrialState.COMPLETE else None,
                            state=outcome.state)
            return candidate
        except BaseException:
            beat.stop()
            if self.storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                self.storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            raise

    def _completed(self, candidate_id: str, before: int) -> Optional[optuna.trial.FrozenTrial]:
        for t in self._trials((TrialState.COMPLETE,)):
            if t.number < before and t.user_attrs.get("candidate") == candidate_id \
                    and t.user_attrs.get("phase", TRAIN) == TRAIN:
                return t
        return None

    def _optimized_by_other(self, candidate_id: str, number: int) -> bool:
        """Whether a lower-numbered optimize trial of ``candidate_id`` is waiting, running or complete."""
        alive = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
        return any(t.number < number and t.user_attrs.get("phase") == OPTIMIZE
                   and t.user_attrs.get("candidate") == candidate_id for t in self._trials(alive))

    def enqueue_optimizations(self, candidate_ids: Sequence[str]) -> List[str]:
        """One optimize trial for each of ``candidate_ids`` (trained in this study) that has none yet (a
        failed one is not retried: its rows say why; a killed one was re-enqueued by ``recover``); returns
        the ids enqueued."""
        trials = self._trials()
        done = {t.user_attrs.get("candidate") for t in trials if t.user_attrs.get("phase") == OPTIMIZE}
        out = []
        for cid in candidate_ids:
            if cid in done:
                continue
            trained = next(t for t in trials if t.user_attrs.get("candidate") == cid
                           and t.user_attrs.get("phase", TRAIN) == TRAIN and t.state == TrialState.COMPLETE)
            self.study.enqueue_trial(self._params_of(trained), user_attrs={"phase": OPTIMIZE, "candidate": cid})
            out.append(cid)
        return out

    # ---- results ------------------------------------------------------------------------------------

    def rows(self, retimed: bool = True) -> List[ResultRow]:
        """Latest row per id over every finished trial (in trial order), with the final interleaved
        re-timing (study attribute ``interleaved``) applied unless ``retimed=False``."""
        latest: Dict[str, ResultRow] = {}
        for t in sorted(self._trials(), key=lambda t: t.number):
            if t.state.is_finished():
                for data in t.user_attrs.get("rows", []):
                    latest[data["id"]] = ResultRow(**data)
        stats = self.study.user_attrs.get("interleaved", {}) if retimed else {}
        out = []
        for row in latest.values():
            extra = stats.get(row.id)
            if extra and extra["key"] in row.latency:
                row = dataclasses.replace(row, latency={**row.latency,
                                                        extra["key"]: {**row.latency[extra["key"]], **extra["stats"]}})
            out.append(row)
        return out

    def record_interleaved(self, key: str, stats: Dict[str, Dict[str, Any]], seconds: float) -> None:
        merged = {**self.study.user_attrs.get("interleaved", {}),
                  **{rid: {"key": key, "stats": s} for rid, s in stats.items()}}
        self.study.set_user_attr("interleaved", merged)
        self.study.set_user_attr("interleaved_seconds", seconds)

    def write_results(self) -> None:
        write_csv(self.dir / "results.csv", [r.flat() for r in self.rows()])

    def trial_counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for t in self._trials():
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts


class _Heartbeat:
    """Refreshes a trial's ``heartbeat`` user attribute from a thread while the trial runs."""

    def __init__(self, storage, trial_id: int, interval: float, attrs: Dict[str, Any]):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        for key, value in {**attrs, "heartbeat": time.time()}.items():
            storage.set_trial_user_attr(trial_id, key, value)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
            except Exception:  # finished meanwhile, or a transient storage error: the next beat retries
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _Grid(optuna.samplers.GridSampler):
    """GridSampler whose ``after_trial`` does not call ``study.stop()`` (which only works inside
    ``study.optimize``): the search loop asks and tells, and decides itself when the grid is done."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(cfg: Config) -> optuna.samplers.BaseSampler:
    """GridSampler for grid spaces; NSGA-II or TPE for sampled ones (both honour ``trial.set_constraint``)."""
    s = cfg.search
    if s.sampler == "grid":
        return _Grid({k: [_encode(v) for v in cfg.grid[k]] for k in sorted(cfg.grid)},
                                           seed=s.seed)
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed)
