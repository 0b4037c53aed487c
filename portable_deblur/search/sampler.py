"""The Optuna sampler a run's config asks for (``search.sampler``)."""
import optuna

from portable_deblur.search.grid import Grid


class _Grid(optuna.samplers.GridSampler):
    """GridSampler whose ``after_trial`` does not call ``study.stop()`` (which only works inside
    ``study.optimize``): the search loop asks and tells, and decides itself when the grid is done."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(cfg) -> optuna.samplers.BaseSampler:
    """GridSampler for grid spaces; NSGA-II or TPE for sampled ones (both honour ``trial.set_constraint``)."""
    s = cfg.search
    if s.sampler == "grid":
        return _Grid(Grid(cfg.grid).choices, seed=s.seed)
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed)
