"""``python -m portable_deblur.search space=NAME [key=value ...]``: the whole pipeline for one search space.

config -> candidates (+ pre-training portability check) -> Optuna study (``study.py``) -> per trial: train ->
evaluate -> export -> portability -> measure -> interleaved re-timing -> Pareto front -> report.
Several processes given the same ``search.storage`` and run name share one study.
"""
import dataclasses
import sys
import time
from typing import Dict, List, Optional, Sequence

from tqdm.auto import tqdm

from portable_deblur.models.candidate import Candidate, check_grid, expand
from portable_deblur.config import Config, load_config
from portable_deblur.registry import ConfigError
from portable_deblur.rank import Objectives
from portable_deblur.records import ResultRow
from portable_deblur.search.attrs import FINAL, OPTIMIZE, TRAIN
from portable_deblur.search.pretrain import check_candidates, untrained_latency, violations_of
from portable_deblur.search.settle import settle
from portable_deblur.search.summary import TrialLog, summary
from portable_deblur.search.jobs import Outcome
from portable_deblur.search.study import SearchStudy


def prepare(args: Sequence[str]):
    """Everything that can fail on user input, done before any work and before anything is written:
    config, candidates, the dataset's file list; then the study.

    Grid spaces build every candidate up front; sampled spaces (too large to build all) check every
    candidate's arguments up front and build each one when its trial starts.
    """
    from portable_deblur.models.build import check_arguments

    from portable_deblur.data.sources import load_dataset

    cfg = load_config(args)
    check_grid(cfg.grid)
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    if cfg.search.sampler == "grid":
        violations = check_candidates(cfg, candidates)
    else:
        for c in candidates:
            check_arguments(c.arch, c.kwargs)
        violations = {}
    check_start(cfg, candidates)
    dataset = load_dataset(cfg.data)  # lists and checks every file (or renders the embedded set) ...
    study = SearchStudy.open(cfg)  # ... before anything is written
    if cfg.measure.backend == "local":  # the fixed network every artifact is timed against (deploy.reference)
        from portable_deblur.deploy.reference import reference_ms, write_references

        write_references(study.layout, cfg)
        study.set_reference_ms(lambda: reference_ms(study.layout, cfg))
    return cfg, violations, dataset, study


def check_start(cfg: Config, candidates: Sequence[Candidate]) -> None:
    """A start that cannot fit fails before any work (``candidates``: the whole grid): a grid a supernet cannot hold
    (``search.weight_sharing=supernet``: a key it cannot share, a width or block count some layer cannot
    take -- the supernet is built once to find out), or a weight table ``train.init`` names whose layers do
    not match a candidate's (the error names the first mismatch)."""
    from portable_deblur.models.build import build_model
    from portable_deblur.models.supernet import build_supernet, inherit, read_table, spec_of
    from portable_deblur.train.start import configured_start

    if cfg.search.weight_sharing == "supernet":
        spec = spec_of(candidates)
        build_supernet(spec)
        check_channel_multiples(cfg, [next(c for c in candidates if c.kwargs["width"] == w) for w in spec.widths])
    start = configured_start(cfg.train.init, candidates[0].id) if candidates else None
    if start is not None and start.table:
        table = read_table(start.path)
        for c in candidates if cfg.search.sampler == "grid" else candidates[:1]:  # sampled: too many to build
            inherit(build_model(c), table, c.kwargs, f"train.init={cfg.train.init!r} ({start.path})")


def check_channel_multiples(cfg: Config, candidates: Sequence[Candidate]) -> None:
    """Every layer of each of ``candidates`` (one per elastic width) keeps the channel multiple each target in
    ``portability.targets`` wants (``channel_multiple`` in its op table: the GPU's 4-channel slices); a width
    that breaks it is a ConfigError naming the width, a layer, its channels and widths that keep it."""
    from portable_deblur.deploy.portability import get_target
    from portable_deblur.models.build import build_model
    from portable_deblur.models.channels import layer_channels

    wants = [(t.name, t.channel_multiple) for t in map(get_target, cfg.portability.targets) if t.channel_multiple > 1]
    for c in candidates if wants else ():
        counts = layer_channels(build_model(c))
        for target, multiple in wants:
            odd = [(name, n) for name, n in counts.items() if n % multiple]
            if odd:
                width = c.kwargs["width"]
                low, high = width // multiple * multiple, -(-width // multiple) * multiple
                raise ConfigError(
                    f"grid.width={width} gives layer {odd[0][0]!r} {odd[0][1]} channels ({len(odd)} layers in all), "
                    f"not a multiple of {multiple}, which the {target} table wants (its channel_multiple; "
                    f"portability.targets); use widths that keep it, e.g. "
                    f"{sorted({w for w in (low, high) if w > 0})}, or leave {target} out of portability.targets")


def evaluate(cfg: Config, study: SearchStudy, dataset, violations: Dict[str, Dict[str, str]],
             candidate: Candidate, phase: str = TRAIN, rung: int = 0) -> Outcome:
    """Train and judge one candidate (``phase=train``; to ``search.rungs[rung]`` steps with rungs), or make
    the optimized variants of one trained earlier (``phase=optimize``, ``optimize.apply_to=pareto``): its
    rows, and the objective values of the first good row if there is one.

    Before its first training step a candidate is skipped (row status ``skipped``, reasons kept) when a
    required target would reject its ops (``portability.on_violation=skip``) or its untrained export is
    slower than ``search.max_latency_ms``: neither depends on the weights."""
    from optuna.trial import TrialState

    from portable_deblur.search.trial import failed_row, optimize_saved, run_candidate, skipped_row

    reasons = violations[candidate.id] if candidate.id in violations else violations_of(cfg, candidate)
    budget, key = cfg.search.max_latency_ms, Objectives.of(cfg).latency
    if phase == TRAIN and rung == 0:
        skip = dict(reasons) if cfg.portability.on_violation == "skip" else {}
        timed = untrained_latency(cfg, study, candidate) if budget is not None else None
        if timed is not None and timed.best_ms(key) > budget:
            skip["latency"] = (f"{timed.best_ms(key):.1f} ms at {key} (untrained export) > "
                               f"search.max_latency_ms={budget:g}")
        if skip:
            return Outcome(TrialState.PRUNED, [skipped_row(candidate, skip, timed.latency if timed else None)])
    try:
        if phase == TRAIN:
            rows = run_candidate(candidate, cfg, dataset, study.layout, sorted(reasons), rung)
        else:
            rows = optimize_saved(candidate, cfg, dataset, study.layout, sorted(reasons))
    except Exception as exc:  # recorded FAIL with its reason; the search goes on
        return Outcome(TrialState.FAIL, [dataclasses.replace(failed_row(candidate, exc), rung=rung)])
    outcome = outcome_of(study.store.stabilize(rows, cfg.rank.confidence), Objectives.of(cfg))
    if phase == TRAIN and rung < len(cfg.search.rungs) - 1 and outcome.state == TrialState.COMPLETE:
        return outcome._replace(state=TrialState.PRUNED)  # a later rung may supersede it (study.py)
    return outcome


def outcome_of(rows: List[ResultRow], spec: Objectives) -> Outcome:
    """A trial's outcome from its rows: COMPLETE with the first good row's values on every objective the
    front uses (``spec``: the same ones, in the same order, as the study's directions) and its constraints;
    FAIL when no row is good."""
    from optuna.trial import TrialState

    good = [r for r in rows if r.status == "ok"]
    if not good:
        return Outcome(TrialState.FAIL, rows)
    return Outcome(TrialState.COMPLETE, rows, spec.values(good[0]), spec.constraints(good[0]))


def promotions(cfg: Config, rows: Sequence[ResultRow]) -> List[str]:
    """Ids of the candidates a rung promotes: of its trained (ok) float rows, the best 1/``search.eta`` by
    non-dominated sorting on the front's objectives, crowding distance breaking ties within a front
    (``rank.promote``)."""
    from portable_deblur.rank import promote, promotion_count

    spec = Objectives.of(cfg)
    ok = [r for r in rows if r.status == "ok" and r.optimization == "fp32" and spec.latency in r.latency]
    keep = promotion_count(len(ok), cfg.search.eta)
    feasible = [all(c <= 0 for c in spec.constraints(r).values()) for r in ok]
    chosen = promote([spec.values(r) for r in ok], spec.maximize, keep, feasible, [r.id for r in ok])
    return [ok[i].id for i in chosen]


def float_front(cfg: Config, study: SearchStudy) -> List[str]:
    """Candidate ids on the Pareto front of the trained float models (per-trial timings, which every
    worker sees alike, not the final interleaved re-timing)."""
    from portable_deblur.rank import front_rows

    floats = [r for r in study.rows(retimed=False) if r.optimization == "fp32"]
    return [r.id for r in front_rows(floats, Objectives.of(cfg))[1]]


def _drain(cfg: Config, study: SearchStudy, work, bar) -> None:
    """Run trials until none is left to ask for and no other worker's trial is running."""
    while True:
        study.recover()
        if study.needs_trial():
            with study.next_trial() as job:
                if job.pending:
                    job.tell(work(job.candidate, job.phase, job.rung))
            study.write_results()
            bar.n = study.evaluated()
            bar.refresh()
        elif study.others_running():  # other workers' trials; a dead one is recovered after its grace
            time.sleep(min(5.0, cfg.search.heartbeat_s))
        else:
            return


def run_search(cfg: Config, violations: Dict[str, Dict[str, str]], study: SearchStudy, dataset) -> List[ResultRow]:
    """Run trials until the study is done (waiting for other workers' running trials, re-running
    interrupted ones), then re-time the front interleaved and write the report; returns the front."""
    from portable_deblur.report.write import write_report

    total = study.size if cfg.search.sampler == "grid" else cfg.search.n_trials
    if cfg.search.weight_sharing == "supernet" and study.evaluated() < total:
        from portable_deblur.search.weight_sharing import supernet_start

        supernet_start(cfg, study.layout, dataset, expand(cfg.arch, cfg.model, cfg.grid))  # once per run
    with tqdm(total=total, initial=study.evaluated(), desc="trials", disable=None) as bar:
        log = TrialLog(cfg, total, study.evaluated(), enabled=bar.disable)
        work = lambda c, phase, rung: log(evaluate(cfg, study, dataset, violations, c, phase, rung))  # noqa: E731
        _drain(cfg, study, work, bar)
        for rung in range(1, len(cfg.search.rungs)):  # successive halving: every worker promotes the same set
            promoted = promotions(cfg, study.rows_at(rung - 1))
            study.enqueue(promoted, TRAIN, rung)
            bar.total = log.total = bar.total + len(promoted)
            _drain(cfg, study, work, bar)
        if cfg.search.rungs:  # the dropped candidates' values, so the study's front is the report's
            top = len(cfg.search.rungs) - 1
            study.enqueue([r.id for r in study.rows(retimed=False) if r.status == "ok" and r.optimization == "fp32"
                           and r.rung < top], FINAL)
            _drain(cfg, study, work, bar)
        if cfg.optimize.apply_to == "pareto" and cfg.optimize.variants:
            front = float_front(cfg, study)
            study.enqueue(front, OPTIMIZE)
            bar.total = log.total = bar.total + len(front)
            _drain(cfg, study, work, bar)
    settle(cfg, study)
    study.write_results()
    layout = study.layout
    decision = write_report(layout, study.rows(), Objectives.of(cfg), dataset.val, title=plain_title(cfg, layout),
                            history=study.store.history(), rungs=cfg.search.rungs, full_front_ids=compared_front(cfg),
                            resamples=cfg.rank.resamples)
    study.record_decision(decision)
    return list(decision.front)


def plain_title(cfg: Config, layout) -> str:
    """The report's title: the run's folder, and the space when the folder is named otherwise."""
    return layout.root.name if layout.root.name == cfg.space else f"{layout.root.name} (space={cfg.space})"


def compared_front(cfg: Config) -> Optional[List[str]]:
    """``search.compare_run``: the candidate ids on that run's front (a full run of the same space)."""
    from portable_deblur.rank import front_rows

    if not cfg.search.compare_run:
        return None
    full = SearchStudy.load(cfg.search.compare_run)
    return [r.id for r in front_rows(full.rows(), Objectives.of(full.cfg))[1]]


def main(argv: Optional[Sequence[str]] = None) -> int:
    import optuna

    from portable_deblur import console

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tqdm shows progress; rows go to results.csv
    args = list(sys.argv[1:] if argv is None else argv)
    if "-v" in args or "--verbose" in args:
        args = [a for a in args if a not in ("-v", "--verbose")] + ["log.level=debug"]
    level = next((a.split("=", 1)[1] for a in args if a.startswith("log.level=")), None)
    if level in console.LEVELS:  # before TensorFlow is imported (a bad value is reported by load_config)
        console.set_level(level)
    try:
        cfg, violations, dataset, study = prepare(args)
        run_search(cfg, violations, study, dataset)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # the run's supernet diverged (a trial's own is recorded FAIL instead)
        print(f"error: {exc}; the supernet's last checkpoint is kept in {study.layout.supernet}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are kept; run the same command again to resume "
              "(the interrupted trial is re-run)", file=sys.stderr)
        return 130
    from portable_deblur.decision import decide

    spec = Objectives.of(cfg)
    print(summary(study.rows(), decide(study.rows(), spec, cfg.rank.resamples), spec))
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(study.trial_counts().items()))
    print(f"\ntrials: {counts}")
    layout = study.layout
    print(f"report: {layout.report}  (open it in a browser: the front, what each choice costs, crops)")
    print(f"hand the front to app teams: python -m portable_deblur.handoff run={layout.root} pareto=true")
    print(f"also: {layout.results_csv}, {layout.pareto_csv}, {layout.pareto_png}")
    return 0

