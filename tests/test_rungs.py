"""Multi-fidelity search (search.rungs): promotion maths, exactly-once promotions, continuation from the
previous rung, latency before training, resume in the middle of a rung, and the report's rung diagnostics."""
import os
import subprocess
import sys
import uuid

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from portable_deblur.config import load_config
from portable_deblur.rank import hypervolume, nondominated_sort, promote, promotion_count
from portable_deblur.records import ResultRow
from portable_deblur.search import trial as trial_module
from portable_deblur.search.jobs import Outcome
from portable_deblur.search.study import SearchStudy

FOUR = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu,prelu]"]


def _row(cid, psnr, ms, gpu=None, **extra):
    portability = {"gpu": {"accelerator_mac_fraction": gpu, "fallback": {}}} if gpu is not None else {}
    return ResultRow(id=cid, arch="unet", values={}, status="ok", psnr_tflite=psnr, latency={"32x32_t2": {"median_ms": ms}},
                     portability=portability, **extra)


def _cfg(*extra):
    from conftest import TINY

    return load_config(["space=upsampling_scratch", *_no_steps(TINY), *extra])


def _no_steps(args):
    """The tiny overrides without train.steps: with rungs the top rung is the training length."""
    return [a for a in args if not a.startswith("train.steps=")]


@pytest.fixture
def rung_args(tiny_args):
    return _no_steps(tiny_args)


# ---- promotion maths on hand-made rows ---------------------------------------------------------------

def test_nondominated_sorting_and_crowding_pick_the_front_then_its_extremes():
    from portable_deblur.search.run import promotions

    rows = [_row("a", 30.0, 5.0), _row("b", 29.0, 3.0), _row("c", 31.0, 9.0), _row("d", 28.0, 4.0),
            _row("e", 29.5, 6.0), _row("f", 30.5, 7.0)]
    points = [(r.psnr_tflite, r.best_ms("32x32_t2")) for r in rows]
    assert nondominated_sort(points, (True, False)) == [[0, 1, 2, 5], [3, 4]]
    # eta 2: 3 of 6, all from the first front: both extremes (b fastest, c best) before the crowded middle
    assert promotions(_cfg("search.eta=2", "search.rungs=[1,2]"), rows) == ["b", "c", "a"]
    # eta 3: 2 of 6: only the extremes
    assert promotions(_cfg("search.eta=3", "search.rungs=[1,2]"), rows) == ["b", "c"]
    assert [promotion_count(n, 3) for n in (0, 1, 2, 3, 7)] == [0, 1, 1, 1, 2]


def test_ties_are_broken_by_name_so_every_worker_promotes_the_same():
    from portable_deblur.search.run import promotions

    rows = [_row("z", 30.0, 5.0), _row("y", 30.0, 5.0), _row("x", 30.0, 5.0), _row("w", 25.0, 9.0)]
    assert promotions(_cfg("search.eta=2", "search.rungs=[1,2]"), rows) == ["x", "y"]
    assert promotions(_cfg("search.eta=2", "search.rungs=[1,2]"), rows[::-1]) == ["x", "y"]


def test_three_objectives_keep_a_portable_but_slower_candidate():
    from portable_deblur.search.run import promotions

    cfg = _cfg("search.eta=2", "search.rungs=[1,2]", "portability.objective=gpu")
    rows = [_row("fast", 30.0, 2.0, gpu=0.5), _row("good", 31.0, 8.0, gpu=0.5), _row("portable", 29.0, 9.0, gpu=1.0),
            _row("meh1", 29.5, 6.0, gpu=0.5), _row("meh2", 29.0, 7.0, gpu=0.5), _row("meh3", 28.0, 8.5, gpu=0.5)]
    # Without the third objective "portable" is dominated; with it, it is an extreme of the first front.
    assert promotions(cfg, rows) == ["fast", "good", "portable"]  # each an extreme of one objective
    assert promotions(_cfg("search.eta=2", "search.rungs=[1,2]"), rows) == ["fast", "good", "meh1"]


def test_infeasible_rows_are_promoted_last_and_failed_rows_never():
    rows_points = [(31.0, 9.0), (30.0, 5.0), (29.0, 3.0)]
    assert promote(rows_points, (True, False), 3, feasible=[False, True, True]) == [1, 2, 0]
    from portable_deblur.search.run import promotions

    rows = [_row("a", 30.0, 5.0), ResultRow(id="b", arch="unet", values={}, status="failed"), _row("c", 29.0, 6.0)]
    assert promotions(_cfg("search.eta=2", "search.rungs=[1,2]"), rows) == ["a"]


def test_hypervolume_and_kendall_tau():
    assert hypervolume([(3.0, 1.0), (2.0, 0.5)], (0.0, 2.0), (True, False)) == pytest.approx(4.0)
    assert hypervolume([(1.0, 1.0, 1.0)], (0.0, 2.0, 0.0), (True, False, True)) == pytest.approx(1.0)
    assert hypervolume([(-1.0, 1.0)], (0.0, 2.0), (True, False)) == 0.0  # worse than the reference
    from portable_deblur.report.rungs import kendall_tau

    assert kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0 and kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert np.isnan(kendall_tau([1.0], [2.0])) and np.isnan(kendall_tau([1.0, 1.0], [2.0, 3.0]))


def test_rungs_must_increase_and_eta_be_at_least_two():
    from portable_deblur.registry import ConfigError

    with pytest.raises(ConfigError, match=r"search.rungs must be increasing .* got \[300, 100\]"):
        _cfg("search.rungs=[300,100]")
    with pytest.raises(ConfigError, match="search.eta must be >= 2"):
        _cfg("search.eta=1")
    with pytest.raises(ConfigError, match=r"train.steps=50 but search.rungs=\[2, 5\] ends at 5.*search.rungs=\[\]"):
        _cfg("search.rungs=[2,5]", "train.steps=50")
    assert _cfg("search.rungs=[2,5]").train.steps == 5  # the schedule spans the top rung


# ---- the study: exactly-once promotions, final trials ------------------------------------------------

def _fake(calls, psnr):
    def evaluate(candidate, phase="train", rung=0):
        calls.append((candidate.id, phase, rung))
        row = ResultRow(id=candidate.id, arch=candidate.arch, values=candidate.values, status="ok", rung=rung,
                        psnr_tflite=psnr[candidate.id] + rung, latency={"32x32_t2": {"median_ms": 1.0}})
        return Outcome(TrialState.PRUNED if rung < 2 else TrialState.COMPLETE, [row], (row.psnr_tflite, 1.0),
                       {"required_targets_missed": 0.0})
    return evaluate


def _run(study, evaluate):
    with study.next_trial() as job:
        if job.pending:
            job.tell(evaluate(job.candidate, job.phase, job.rung))


def test_two_workers_promote_each_candidate_once_and_the_studys_front_is_one_trial_per_candidate(rung_args):
    args = ["space=upsampling", *rung_args, *FOUR, "search.rungs=[2,4,8]", "search.eta=2"]
    worker_a, worker_b = SearchStudy.open(load_config(args)), SearchStudy.open(load_config(args))
    calls, ids = [], sorted(_ids(worker_a))
    psnr = {cid: 30.0 + i for i, cid in enumerate(ids)}
    while worker_a.needs_trial():
        _run(worker_a, _fake(calls, psnr))
    promoted = ids[:2]
    assert worker_a.enqueue(promoted, "train", 1) == promoted
    assert worker_b.enqueue(promoted, "train", 1) == []  # it sees them already
    params = next(t.params for t in worker_b.study.get_trials() if t.user_attrs.get("candidate") == promoted[0])
    worker_b.study.enqueue_trial(params, user_attrs={"phase": "train", "rung": 1, "candidate": promoted[0]})  # racing
    while worker_b.needs_trial():  # the first rung-1 trial ends PRUNED (rung 1 is below the top) before the racer
        _run(worker_b, _fake(calls, psnr))
    assert sorted(c for c in calls if c[2] == 1) == [(i, "train", 1) for i in promoted]  # each promoted once
    assert [t.user_attrs["status"] for t in worker_b.study.get_trials() if t.user_attrs.get("rung") == 1
            and t.user_attrs.get("status") == "duplicate"] == ["duplicate"]
    assert worker_a.enqueue(ids, "final") == ids  # every candidate's last rung is below the top here
    assert worker_b.enqueue(ids, "final") == []
    while worker_a.needs_trial():
        _run(worker_a, _fake(calls, psnr))
    assert len(calls) == 4 + 2  # final trials do no work
    finals = [t for t in worker_a.study.get_trials() if t.user_attrs.get("status") == "final"]
    assert sorted(t.user_attrs["candidate"] for t in finals) == ids  # one final trial per candidate ...
    assert {t.state for t in finals} == {TrialState.PRUNED}  # ... kept off the front: trained below the top rung
    assert not worker_a.study.get_trials(states=(TrialState.COMPLETE,))  # (this fake stops at rung 1 of 3)


def _ids(study):
    from portable_deblur.models.candidate import expand

    return [c.id for c in expand(study.cfg.arch, study.cfg.model, study.cfg.grid)]


# ---- end to end, tiny ---------------------------------------------------------------------------------

def test_an_over_budget_candidate_is_skipped_without_a_training_step(rung_args, monkeypatch):
    from portable_deblur.search.run import evaluate, prepare

    cfg, violations, dataset, study = prepare(["space=upsampling", *rung_args, "grid.upsampler=[transpose]",
                                               "grid.activation=[relu]", "search.max_latency_ms=0.000001",
                                               "train.steps=3"])
    monkeypatch.setattr(trial_module, "fit", lambda *a, **k: pytest.fail("trained an over-budget candidate"))
    candidate = study.candidate(optuna.trial.FixedTrial({"upsampler": "transpose", "activation": "relu"}))
    outcome = evaluate(cfg, study, dataset, violations, candidate)
    row, = outcome.rows
    assert outcome.state == TrialState.PRUNED and row.status == "skipped"
    assert "latency" in row.error and "search.max_latency_ms=1e-06" in row.error and "untrained export" in row.error
    assert row.latency["32x32_t2"]["reference_ratio"] > 0 and row.best_ms("32x32_t2") > 1e-6
    assert not (study.layout.root / candidate.id).exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_a_rung_continues_training_exactly_as_one_uninterrupted_run(tiny_args, tiny_dataset):
    """Rung 1 restores rung 0's weights, optimizer state and step: the weights equal training 4 steps at once."""
    from portable_deblur.backend import keras
    from portable_deblur.layout import RunLayout
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.layers import CUSTOM_OBJECTS

    one = ["grid.upsampler=[transpose]", "grid.activation=[prelu]", "measure.interleaved_rounds=0"]
    rungs = load_config(["space=upsampling", *_no_steps(tiny_args), *one, "search.rungs=[2,4]", "run.name=rungs"])
    full = load_config(["space=upsampling", *tiny_args, *one, "train.steps=4", "run.name=full"])
    candidate, = expand(full.arch, full.model, full.grid)
    weights = []
    for cfg, rung_list in ((rungs, (0, 1)), (full, (0,))):
        layout = RunLayout.of(cfg)
        for rung in rung_list:
            row, = trial_module.run_candidate(candidate, cfg, tiny_dataset, layout, (), rung)
        assert row.steps == 4 and row.rung == rung_list[-1]
        model = keras.models.load_model(layout.model(layout.folder(candidate.id)), custom_objects=CUSTOM_OBJECTS)
        weights.append(model.get_weights())
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(*weights))


def test_a_lower_rung_is_screened_and_the_top_rung_judges_and_ships_its_own_weights(rung_args, tiny_dataset):
    """Below the top rung a candidate is judged only by what its promotion ranks (its Keras quality, its .tflite
    timed at the ranked size); the top rung judges in full, and every file it ships holds the top rung's
    weights, not those of the lower rung that left files in the same folder."""
    from portable_deblur.backend import keras
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.layout import RunLayout
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.layers import CUSTOM_OBJECTS
    from portable_deblur.rank import Objectives

    one = ["grid.upsampler=[transpose]", "grid.activation=[prelu]", "measure.resolutions=[[32,32],[48,48]]"]
    cfg = load_config(["space=upsampling", *rung_args, *one, "search.rungs=[2,4]"])
    candidate, = expand(cfg.arch, cfg.model, cfg.grid)
    layout = RunLayout.of(cfg)
    folder = layout.folder(candidate.id)
    low, = trial_module.run_candidate(candidate, cfg, tiny_dataset, layout, (), 0)
    assert low.screened and list(low.latency) == ["48x48_t2"] == [Objectives.of(cfg).latency]
    assert np.isnan(low.psnr_tflite) and np.isfinite(low.psnr_keras) and not low.fp16_range
    assert set(low.seconds) == {"train", "judge", "export", "measure", "portability"}
    assert low.ranked_psnr() == low.psnr_keras == Objectives.of(cfg).values(low)[0]
    assert sorted(p.name for p in folder.glob("*.tflite")) == ["fp32_48x48.tflite"]  # no file judged over the frames
    stale = predictor(folder / "fp32_48x48.tflite")
    top, = trial_module.run_candidate(candidate, cfg, tiny_dataset, layout, (), 1)
    assert not top.screened and np.isfinite(top.psnr_tflite) and set(top.latency) == {"32x32_t2", "48x48_t2"}
    model = keras.models.load_model(layout.model(folder), custom_objects=CUSTOM_OBJECTS, compile=False)
    x = np.random.default_rng(0).random((1, 48, 48, 3), np.float32)
    shipped = predictor(layout / top.artifacts["fp32_48x48"])(x)
    assert np.allclose(shipped, model(x, training=False).numpy(), atol=1e-5)
    assert not np.allclose(shipped, stale(x), atol=1e-5)  # rung 0's file held other weights

    full = load_config(["space=upsampling", *rung_args, *one, "search.rungs=[2,4]", "search.screen=false",
                        "run.name=full"])
    judged, = trial_module.run_candidate(candidate, full, tiny_dataset, RunLayout.of(full), (), 0)
    assert not judged.screened and np.isfinite(judged.psnr_tflite) and set(judged.latency) == {"32x32_t2", "48x48_t2"}


@pytest.mark.parametrize("name", ["nsga2", "tpe"])
def test_a_sampled_space_learns_from_a_lower_rungs_judged_candidates(name):
    """A lower rung's trials are PRUNED with their values kept; the run's NSGA-II and TPE see those as COMPLETE
    (a PRUNED trial without values, as a duplicate's, stays unseen), so a rung's later draws are steered by its
    earlier ones -- where plain NSGA-II sees no population -- and the study itself is unchanged."""
    from optuna.samplers import NSGAIISampler

    from portable_deblur.search import attrs
    from portable_deblur.search.sampler import make_sampler

    cfg = _cfg(*FOUR, "search.rungs=[2,4]", f"search.sampler={name}", "search.n_trials=6",
               "search.population_size=2")
    for sampler, product in ((make_sampler(cfg), True), (NSGAIISampler(population_size=2, seed=0), False)):
        inner = getattr(sampler, "inner", sampler)  # the product's wraps Optuna's
        seen, draw = [], inner.sample_independent

        def spy(study, trial, param, distribution):
            seen.append({t.number: t.values for t in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))})
            return draw(study, trial, param, distribution)

        inner.sample_independent = spy
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for values in ([20.0, 5.0], [21.0, 9.0], [22.0, 3.0], [19.0, 7.0], None):
            t = study.ask()
            t.suggest_categorical("upsampler", ["transpose", "bilinear"])
            if values is not None:
                t.set_user_attr(attrs.VALUES, values)
            study.tell(t, state=TrialState.PRUNED)
        nxt = study.ask()
        nxt.suggest_categorical("upsampler", ["transpose", "bilinear"])
        generation = study._storage.get_trial_system_attrs(nxt._trial_id).get("NSGAIISampler:generation")
        assert all(t.state == TrialState.PRUNED for t in study.get_trials()[:5])
        if not product:  # plain NSGA-II: no COMPLETE trial, every draw a first generation's, at random
            assert seen[-1] == {} and generation == 0
        else:
            assert seen[-1] == {0: [20.0, 5.0], 1: [21.0, 9.0], 2: [22.0, 3.0], 3: [19.0, 7.0]}
            assert generation == (2 if name == "nsga2" else None)


def test_screen_seconds_must_be_positive():
    from portable_deblur.registry import ConfigError

    with pytest.raises(ConfigError, match=r"search.screen_seconds must be > 0 .* got 0"):
        _cfg("search.screen_seconds=0")


@pytest.mark.slow
def test_resume_in_the_middle_of_a_rung_reruns_nothing_finished(rung_args, monkeypatch):
    from portable_deblur.search.run import prepare, run_search

    args = ["space=upsampling", *rung_args, *FOUR, "search.rungs=[2,4]", "search.eta=2", "measure.interleaved_rounds=0"]
    real, calls = trial_module.run_candidate, []

    def interrupted_at_rung_1(candidate, cfg, dataset, layout, violations=(), rung=0):
        if rung == 1 and any(r == 1 for _, r in calls):
            raise KeyboardInterrupt  # the second promoted candidate: Ctrl-C mid-rung
        calls.append((candidate.id, rung))
        return real(candidate, cfg, dataset, layout, violations, rung)

    monkeypatch.setattr(trial_module, "run_candidate", interrupted_at_rung_1)
    cfg, violations, dataset, study = prepare(args)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, violations, study, dataset)
    assert [r for _, r in calls] == [0, 0, 0, 0, 1]
    first = list(calls)

    def recorded(candidate, cfg, dataset, layout, violations=(), rung=0):
        calls.append((candidate.id, rung))
        return real(candidate, cfg, dataset, layout, violations, rung)

    monkeypatch.setattr(trial_module, "run_candidate", recorded)
    cfg, violations, dataset, study = prepare(args)
    front = run_search(cfg, violations, study, dataset)
    again = calls[len(first):]
    assert len(again) == 1 and again[0][1] == 1 and again[0] not in first  # only the interrupted promotion
    history = study.store.history()
    assert sorted((r.rung, r.steps) for r in history) == [(0, 2)] * 4 + [(1, 4)] * 2
    assert {r.id for r in front} == set(study.study.user_attrs["front"])  # the report's front, kept in the study
    assert {t.user_attrs["candidate"] for t in study.study.best_trials} <= {r.id for r in history if r.rung == 1}
    complete = study.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 and len({t.user_attrs["candidate"] for t in complete}) == 2  # the top rung's
    report = study.layout.report.read_text()
    assert "Rungs: how far the cheap ranking can be trusted" in report and "kendall_tau_psnr" in report
    assert "median ratio to a fixed reference network timed in alternation" in report
    assert "2 rows are <em>screened</em>" in report  # rung 0's two not promoted (the promoted ones: judged in full)


def _cli(args):
    return [sys.executable, "-m", "portable_deblur.search", *args]


@pytest.mark.slow
def test_two_workers_on_postgresql_promote_each_candidate_once(rung_args, tmp_path, postgres):
    name = f"rungs-{uuid.uuid4().hex[:8]}"
    args = [*rung_args, f"run.name={name}", f"search.storage={postgres}", *FOUR, "search.rungs=[2,4]",
            "search.eta=2", "measure.interleaved_rounds=0"]  # one shared run root: rung 1 continues rung 0's files
    procs = [subprocess.Popen(_cli(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "CI": "true"}) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    url = postgres.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.load_study(study_name=name, storage=url)
    worked = [(t.user_attrs["candidate"], t.user_attrs.get("rung", 0)) for t in study.get_trials() if "rows" in t.user_attrs]
    assert len(worked) == len(set(worked)) == 4 + 2, worked  # every candidate at rung 0 once, two promoted once
    complete = study.get_trials(states=(TrialState.COMPLETE,))  # the top rung's; rung-dropped trials are PRUNED
    assert sorted(t.user_attrs["candidate"] for t in complete) == sorted(c for c, rung in worked if rung == 1)
    optuna.delete_study(study_name=name, storage=url)
