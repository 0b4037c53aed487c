"""The Optuna search engine: exactly-once grid trials, resume after SIGINT/SIGKILL, several workers on
PostgreSQL, sampled spaces, the config switches."""
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from portable_deblur.config import load_config
from portable_deblur.registry import ConfigError
from portable_deblur.records import ResultRow
from portable_deblur.search.jobs import Outcome
from portable_deblur.search.study import SearchStudy

TWO = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]"]
FOUR = ["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu,prelu]"]


def _fake_outcome(calls):
    def evaluate(candidate, phase="train"):
        calls.append(candidate.id if phase == "train" else f"{phase}:{candidate.id}")
        values = candidate.values if phase == "train" else {**candidate.values, "ptq": "fp16"}
        row = ResultRow(id=candidate.id + ("" if phase == "train" else "__ptq-fp16"), arch=candidate.arch,
                        values=values, status="ok")
        return Outcome(TrialState.COMPLETE, [row], (30.0, 1.0), {"required_targets_missed": 0.0})
    return evaluate


def _run(study, evaluate):
    """What the search loop does with one trial: ask, evaluate it unless it was settled, tell."""
    with study.next_trial() as job:
        if job.pending:
            job.tell(evaluate(job.candidate, job.phase))
        return job.candidate


def _study(tiny_args, *extra):
    return SearchStudy.open(load_config(["space=upsampling", *tiny_args, *TWO, *extra]))


def test_grid_trials_map_one_to_one_and_a_surplus_trial_does_no_work(tiny_args):
    calls = []
    study = _study(tiny_args)
    while study.needs_trial():
        _run(study, _fake_outcome(calls))
    assert sorted(calls) == ["unet__activation-relu__upsampler-bilinear", "unet__activation-relu__upsampler-transpose"]
    # A second worker that asked at the same moment for the last point gets a trial past the grid: pruned unseen.
    assert _run(study, _fake_outcome(calls)) is None and len(calls) == 2
    assert study.trial_counts() == {"COMPLETE": 2, "PRUNED": 1}
    assert [t.user_attrs["status"] for t in study.study.get_trials(states=(TrialState.PRUNED,))] == ["surplus"]


def test_an_interrupted_trial_is_retried_once_whoever_notices(tiny_args):
    calls = []
    worker_a, worker_b = _study(tiny_args), _study(tiny_args)  # two processes sharing the study
    _run(worker_a, _fake_outcome(calls))
    with pytest.raises(KeyboardInterrupt):
        _run(worker_a, lambda c, phase: (_ for _ in ()).throw(KeyboardInterrupt()))
    interrupted = worker_a.study.get_trials(states=(TrialState.RUNNING,))
    assert len(interrupted) == 1 and interrupted[0].user_attrs["interrupted"] is True
    assert worker_b.recover() == [interrupted[0].number]
    assert worker_a.recover() == []  # lost the atomic RUNNING -> FAIL race: no second retry
    while worker_a.needs_trial():
        _run(worker_a, _fake_outcome(calls))
    assert sorted(calls) == ["unet__activation-relu__upsampler-bilinear", "unet__activation-relu__upsampler-transpose"]
    assert worker_a.trial_counts() == {"COMPLETE": 2, "FAIL": 1}
    retry = worker_a.study.get_trials(states=(TrialState.COMPLETE,))[-1]
    assert retry.user_attrs["retry_of"] == interrupted[0].number


def test_silent_trial_is_taken_as_killed_after_its_grace_period(tiny_args):
    study = _study(tiny_args, "search.heartbeat_s=0.2")
    _run(study, _fake_outcome([]))
    killed = study.study.ask()  # a worker that started a trial, beat once, then was SIGKILLed
    cid = study.candidate(killed).id
    killed.set_user_attr("heartbeat", time.time())
    assert study.recover() == []  # within its grace period it counts as alive
    time.sleep(0.7)  # > 3 heartbeats without a beat
    assert study.recover() == [killed.number]
    calls = []
    while study.needs_trial():
        _run(study, _fake_outcome(calls))
    assert calls == [cid]  # re-run once, by whoever noticed


def test_pareto_optimizations_run_once_per_front_candidate_whoever_enqueues(tiny_args):
    calls = []
    worker_a, worker_b = _study(tiny_args), _study(tiny_args)
    while worker_a.needs_trial():
        _run(worker_a, _fake_outcome(calls))
    ids = sorted(calls)
    # Both workers finish training at once and both enqueue the front's optimize trials.
    assert worker_a.enqueue(ids, "optimize") == ids
    assert worker_b.enqueue(ids, "optimize") == []  # it sees them already
    worker_b.study.enqueue_trial(worker_b.study.get_trials()[0].params,
                                 user_attrs={"phase": "optimize", "candidate": ids[0]})  # a racing enqueue
    while worker_b.needs_trial():
        _run(worker_b, _fake_outcome(calls))
    assert sorted(calls) == sorted(ids + [f"optimize:{i}" for i in ids])  # each optimized exactly once
    assert [t.user_attrs["status"] for t in worker_b.study.get_trials(states=(TrialState.PRUNED,))] == ["duplicate"]
    assert sorted(r.id for r in worker_b.rows()) == sorted(ids + [f"{i}__ptq-fp16" for i in ids])


def test_changed_config_is_refused_for_the_same_study(tiny_args):
    first = _study(tiny_args)
    first.study.tell(first.study.ask(), [30.0, 1.0])  # a finished trial: the run is worth protecting
    with pytest.raises(ConfigError, match="different config.*run.overwrite=true"):
        _study(tiny_args, "train.steps=4")
    assert _study(tiny_args, "train.steps=4", "run.overwrite=true").trial_counts() == {}


@pytest.mark.parametrize("override, expected", [
    ("search.sampler=random", r"search.sampler must be one of \['grid', 'nsga2', 'tpe'\]; got 'random'"),
    ("search.sampler=nsga2", r"search.sampler=nsga2 needs search.n_trials >= 1"),
    ("search.latency=720x1280_t2", r"search.latency must be one of the measured keys \['32x32_t2'\]; got '720x1280_t2'"),
    ("search.psnr=ssim", r"search.psnr must be one of \['keras', 'tflite'\]; got 'ssim'"),
    ("search.storage=redis://x", r"search.storage must be a sqlite:///, postgresql:// or mysql:// URL; got 'redis://x'"),
    ("train.distribute=tpu", r"train.distribute must be one of \['mirrored', 'none'\]; got 'tpu'"),
])
def test_bad_search_settings_name_the_value_and_the_choices(tiny_args, override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(["space=upsampling", *tiny_args, override])


def _cli(tiny_args, *extra):
    return [sys.executable, "-m", "portable_deblur.search", "space=upsampling", *tiny_args, *extra]


def _load(run_dir, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir / 'study.db'}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_search_resumes_without_redoing_or_duplicating(tiny_args, tmp_path, sig):
    args = [*tiny_args, *TWO, "train.steps=60", "search.heartbeat_s=0.5", "run.name=resume"]
    env = {**os.environ, "CI": "true"}
    # Ctrl-C's default: a process started with SIGINT ignored keeps ignoring it, and a test earlier in the same
    # pytest worker can leave it ignored there (the search then ran to the end and exited 0).
    proc = subprocess.Popen(_cli(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run_dir = tmp_path / "runs" / "resume"
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for one finished trial and the next one under way
        if (run_dir / "config.yaml").is_file():  # written once the study exists
            trials = _load(run_dir, "resume").get_trials()
            if any(t.state == TrialState.COMPLETE for t in trials) and any(
                    t.state == TrialState.RUNNING and "candidate" in t.user_attrs for t in trials):
                break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"no trial finished in time: {proc.communicate()[1][-2000:]}")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again to resume" in err, err[-2000:]
    else:
        assert proc.returncode == -signal.SIGKILL
    before = {t.number: t.datetime_complete for t in _load(run_dir, "resume").get_trials(states=(TrialState.COMPLETE,))}
    assert len(before) == 1

    again = subprocess.run(_cli(args), capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = _load(run_dir, "resume").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["candidate"] for t in complete) == [
        "unet__activation-relu__upsampler-bilinear", "unet__activation-relu__upsampler-transpose"]  # each once
    assert {t.number: t.datetime_complete for t in complete if t.number in before} == before  # not redone
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "rows" not in failed[0].user_attrs  # the interrupted attempt, re-run once
    assert [t.user_attrs.get("retry_of") for t in complete if "retry_of" in t.user_attrs] == [failed[0].number]


@pytest.mark.slow
def test_two_workers_on_postgresql_run_every_grid_point_exactly_once(tiny_args, tmp_path, postgres):
    name = f"workers-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CI": "true"}
    procs = []
    for worker in ("a", "b"):  # two "machines": separate run roots, one study
        args = [a for a in tiny_args if not a.startswith("run.root=")] + [
            f"run.root={tmp_path / worker}", f"run.name={name}", f"search.storage={postgres}", *FOUR]
        procs.append(subprocess.Popen(_cli(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name=name, storage=postgres.replace("postgresql://", "postgresql+psycopg://"))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    ids = [t.user_attrs["candidate"] for t in complete]
    assert len(ids) == 4 and len(set(ids)) == 4, ids
    assert {t.state for t in study.get_trials()} <= {TrialState.COMPLETE, TrialState.PRUNED}  # pruned = surplus
    for out, _ in outputs:  # each worker reports the whole study, whoever ran which trial
        assert all(i in out for i in ids)
    assert {t.user_attrs["worker"] for t in complete} and all(t.user_attrs["run_dir"] for t in complete)
    optuna.delete_study(study_name=name, storage=postgres.replace("postgresql://", "postgresql+psycopg://"))


@pytest.mark.slow
def test_nsga2_trains_n_distinct_candidates_and_the_front_is_the_studys(tiny_args):
    from portable_deblur.rank import Objectives, competing, pareto_front
    from portable_deblur.search.run import prepare, run_search

    args = ["space=upsampling", *tiny_args, "grid.upsampler=[transpose,depth_to_space,bilinear]",
            "grid.activation=[relu,prelu]", "search.sampler=nsga2", "search.n_trials=3",
            "search.population_size=2", "measure.interleaved_rounds=0"]
    cfg, violations, dataset, study = prepare(args)
    front = run_search(cfg, violations, study, dataset)
    evaluated = {t.user_attrs["candidate"] for t in study.study.get_trials() if "rows" in t.user_attrs}
    assert len(evaluated) == 3 and len(study.rows()) == 3
    assert {r.id for r in front} == set(study.study.user_attrs["front"])  # the report's front, kept in the study
    _, compete = competing(study.rows(), spec := Objectives.of(cfg))  # Optuna's own: the front of the estimates
    strict = {compete[i].id for i in pareto_front([spec.values(r) for r in compete], spec.maximize)}
    assert {t.user_attrs["candidate"] for t in study.study.best_trials} == strict


def test_unreachable_storage_is_a_clear_error_without_the_password(tiny_args):
    with pytest.raises(ConfigError, match=r"cannot open the study storage \.\.\.@127\.0\.0\.1:1/nodb") as err:
        _study(tiny_args, "search.storage=postgresql://user:secret@127.0.0.1:1/nodb")
    assert "secret" not in str(err.value)
