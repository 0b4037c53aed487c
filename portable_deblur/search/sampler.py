"""The Optuna sampler a run's config asks for (``search.sampler``)."""
import copy

import optuna
from optuna.trial import TrialState

from portable_deblur.search import attrs
from portable_deblur.search.grid import Grid


class _Grid(optuna.samplers.GridSampler):
    """GridSampler whose ``after_trial`` does not call ``study.stop()`` (which only works inside
    ``study.optimize``): the search loop asks and tells, and decides itself when the grid is done."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


class _RungsSeen:
    """The study as a sampler sees it: a trial a lower rung judged (``search.rungs``) shows as COMPLETE with
    the objective values it was told. The study keeps such a trial PRUNED (a later rung may supersede it, and
    the study's front is the top rung's), which Optuna's samplers would not learn from: NSGA-II breeds only
    from COMPLETE trials, TPE scores a PRUNED trial without intermediate values as nothing. Everything else
    is the study itself."""

    def __init__(self, study: optuna.Study):
        self._study = study

    def __getattr__(self, name):
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False):
        trials = [judged_as_complete(t) for t in self._study._get_trials(deepcopy=deepcopy, use_cache=use_cache)]
        return trials if states is None else [t for t in trials if t.state in states]

    def get_trials(self, deepcopy: bool = True, states=None):
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self):
        return self.get_trials()


def judged_as_complete(t: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """``t``, or for a PRUNED trial that was judged (its objective values kept), a copy that is COMPLETE with
    them (a skipped, duplicate or final trial has none and stays as it is)."""
    if t.state != TrialState.PRUNED or attrs.VALUES not in t.user_attrs:
        return t
    seen = copy.copy(t)
    seen.state, seen.values = TrialState.COMPLETE, t.user_attrs[attrs.VALUES]
    return seen


class _SeesLowerRungs(optuna.samplers.BaseSampler):
    """A sampled space's sampler (NSGA-II, TPE) that learns from a lower rung's candidates too, so with
    ``search.rungs`` the first rung is steered by the candidates judged before it (on a supernet's shared
    weights: NSGA-II's generations over many screened candidates) instead of drawn at random."""

    def __init__(self, inner: optuna.samplers.BaseSampler):
        self.inner = inner

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(_RungsSeen(study), trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner.sample_relative(_RungsSeen(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner.sample_independent(_RungsSeen(study), trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.inner.before_trial(_RungsSeen(study), trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.inner.after_trial(_RungsSeen(study), trial, state, values)


def make_sampler(cfg) -> optuna.samplers.BaseSampler:
    """GridSampler for grid spaces; NSGA-II or TPE for sampled ones (both honour ``trial.set_constraint``),
    learning from every rung's judged candidates."""
    s = cfg.search
    if s.sampler == "grid":
        return _Grid(Grid(cfg.grid).choices, seed=s.seed)
    if s.sampler == "nsga2":
        return _SeesLowerRungs(optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=s.seed))
    return _SeesLowerRungs(optuna.samplers.TPESampler(seed=s.seed))
