"""Benchmark: what a sampler finds on a screened rung. Replays a finished whole-grid run's first-rung
judgements (every candidate's measured objective values, e.g. the whole `space=architecture` grid screened on
one supernet's shared weights) through a sampled search of ``--trials`` distinct candidates, told exactly as
the search tells a lower rung (PRUNED, the values kept as the trial's attribute, a repeated proposal answered as
a duplicate), and counts what each sampler drew of the grid's first-rung Pareto front and its hypervolume
(from the blurry input's PSNR and 1.1x the slowest latency). ``random`` is what NSGA-II and TPE did before
they saw a lower rung's trials (none of them COMPLETE: every draw a first generation's). No training or
timing: the values are the run's measured ones, so the comparison is of the samplers alone. Prints the
median and range over ``--seeds`` seeds.

    python benchmarks/steering.py <run>     # a finished grid run (search.sampler=grid), with or without rungs
    python benchmarks/steering.py <run> --trials 48 --population 16 --seeds 20
    python benchmarks/steering.py <run> --tiny    # smoke scale: 1 trial, 2 seeds
"""
import argparse

import numpy as np


def replay(rows, run, sampler, trials: int):
    """The rows a sampled search of ``trials`` distinct candidates over ``run``'s grid draws with ``sampler``,
    each told as a lower rung's trial is; a candidate the run has no row for (failed) is told FAIL."""
    import optuna
    from optuna.trial import TrialState

    from portable_deblur.rank import Objectives
    from portable_deblur.search import attrs

    spec = Objectives.of(run.cfg)
    by_id = {r.id: r for r in rows}
    study = optuna.create_study(directions=spec.directions, sampler=sampler)
    drawn, asked = {}, 0
    while len(drawn) < min(trials, run.size) and asked < 20 * trials:  # the search's cap on repeated proposals
        asked += 1
        t = study.ask()
        cid = run.candidate(t).id  # the run's own mapping from a trial's suggestions to a candidate
        if cid in drawn:
            study.tell(t, state=TrialState.PRUNED)  # a duplicate: no values of its own
            continue
        drawn[cid] = by_id.get(cid)
        if drawn[cid] is None:
            study.tell(t, state=TrialState.FAIL)
            continue
        t.set_user_attr(attrs.VALUES, list(spec.values(drawn[cid])))
        for name, value in spec.constraints(drawn[cid]).items():
            t.set_constraint(name, value)
        study.tell(t, state=TrialState.PRUNED)
    return [r for r in drawn.values() if r is not None]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished run that judged every candidate of its grid (search.sampler=grid)")
    parser.add_argument("--trials", type=int, default=48, help="distinct candidates each sampled search draws")
    parser.add_argument("--population", type=int, default=16, help="NSGA-II's search.population_size")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tiny", action="store_true", help="smoke scale: 1 trial, population 2, 2 seeds")
    args = parser.parse_args(argv)
    if args.tiny:
        args.trials, args.population, args.seeds = 1, 2, 2
    import dataclasses

    import optuna

    from portable_deblur.rank import Objectives, hv_reference, hypervolume, nondominated_sort
    from portable_deblur.search.sampler import make_sampler
    from portable_deblur.search.study import SearchStudy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = SearchStudy.load(args.run)
    spec = Objectives.of(run.cfg)
    rows = [r for r in run.rows_at(0) if r.status == "ok" and r.optimization == "fp32" and spec.latency in r.latency]
    if run.cfg.search.sampler != "grid" or len({r.id for r in rows}) < run.size:
        print(f"note: {args.run} judged {len(rows)} of its grid's {run.size} candidates at its first rung; "
              f"the replay draws from those, a missing one counts as failed")
    points = [spec.values(r) for r in rows]
    front = {rows[i].id for i in nondominated_sort(points, spec.maximize)[0]}
    reference = hv_reference(rows, spec)
    whole = hypervolume(points, reference, spec.maximize)
    print(f"{args.run}: {len(rows)} candidates judged at the first rung, {len(front)} on its Pareto front "
          f"(PSNR as ranked, {' x '.join(spec.names[1:])}); each search draws {args.trials}, {args.seeds} seeds")
    print(f"{'sampler':32} {'front found [min, max]':>24} {'hypervolume share [min, max]':>30}")
    def searched(sampler: str, seed: int):  # the run's config with a sampled search: what make_sampler reads
        search = dataclasses.replace(run.cfg.search, sampler=sampler, n_trials=args.trials,
                                     population_size=args.population, seed=seed)
        return make_sampler(dataclasses.replace(run.cfg, search=search))

    for label, sampler_of in ((f"nsga2 (population {args.population})", lambda seed: searched("nsga2", seed)),
                              ("tpe", lambda seed: searched("tpe", seed)),
                              ("random (each draw a first generation's)",
                               lambda seed: optuna.samplers.RandomSampler(seed=seed))):
        found, share = [], []
        for seed in range(args.seeds):
            drawn = replay(rows, run, sampler_of(seed), args.trials)
            found.append(len(front & {r.id for r in drawn}))
            share.append(hypervolume([spec.values(r) for r in drawn], reference, spec.maximize) / whole if whole else 0.0)
        print(f"{label:32} {np.median(found):>9.1f} of {len(front):<3} [{min(found)}, {max(found)}]"
              f" {np.median(share):>16.3f} [{min(share):.3f}, {max(share):.3f}]")


if __name__ == "__main__":
    main()
