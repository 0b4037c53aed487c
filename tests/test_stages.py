"""Stage functions tested directly (what end-to-end searches alone covered before): the artifact rows of a
trained model, the report from hand-made rows, and the study steering on the front's own objectives."""
import dataclasses

import pytest

from portable_deblur.config import load_config
from portable_deblur.layout import RunLayout
from portable_deblur.rank import Objectives, front_rows
from portable_deblur.records import ResultRow


def _row(rid, psnr, ms, gpu=1.0, **extra):
    return ResultRow(id=rid, arch="unet", values={"upsampler": rid}, status="ok", psnr_tflite=psnr, psnr_blurry=26.0,
                     latency={"32x32_t2": {"median_ms": ms, "p90_ms": ms, "cv": 0.0, "peak_rss_mb": 1.0}},
                     portability={"gpu": {"fallback": {}, "accelerator_mac_fraction": gpu, "rejected_nodes": 0,
                                          "nodes": 1, "target": "gpu"}}, **extra)


@pytest.mark.slow
def test_make_artifacts_gives_one_row_per_planned_variant_and_skips_a_failed_floats_combos(tiny_args, tiny_dataset):
    from portable_deblur.models.candidate import expand
    from portable_deblur.models.build import build_model
    from portable_deblur.optimize.plan import TRAINED, plan
    from portable_deblur.search.trial import make_artifacts
    from portable_deblur.train.judge import judged

    cfg = load_config(["space=upsampling", *tiny_args, "grid.upsampler=[depth_to_space]", "grid.activation=[relu]",
                       "optimize.prune=[0.3,0.95]", "optimize.prune_steps=0", "optimize.ptq=[int8]",
                       "optimize.representative_count=2", "measure.interleaved_rounds=0"])
    layout = RunLayout.of(cfg)
    candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
    trained = judged(candidate, build_model(candidate), cfg, tiny_dataset, layout.folder(candidate.id), TRAINED)
    rows = {r.id: r for r in make_artifacts(trained, plan(cfg.optimize), cfg, tiny_dataset, layout, ["gpu"],
                                                 {"train": 1.5, "judge": 0.5})}
    base = candidate.id
    assert list(rows) == [base, f"{base}__prune-0.3", f"{base}__prune-0.95", f"{base}__ptq-int8",
                          f"{base}__prune-0.3__ptq-int8"]  # prune-0.95 failed: no int8 made from it
    assert rows[f"{base}__prune-0.95"].status == "failed" and "PruneError" in rows[f"{base}__prune-0.95"].error
    ok = [r for r in rows.values() if r.status == "ok"]
    assert all("32x32_t2" in r.latency and (layout / r.artifacts["primary"]).is_file() for r in ok)
    assert rows[base].seconds["train"] == 1.5 and rows[base].seconds["judge"] == 0.5 and rows[base].violations == ["gpu"]
    assert rows[f"{base}__ptq-int8"].values == {**candidate.values, "ptq": "int8"}
    assert rows[f"{base}__prune-0.3__ptq-int8"].artifacts["primary"] == f"{base}/prune-0.3/int8_32x32.tflite"
    full, pruned = rows[base].channels, rows[f"{base}__prune-0.3"].channels
    assert set(full) == set(pruned) and sum(pruned.values()) < sum(full.values())  # the widths it really has


def test_write_report_from_hand_made_rows(tmp_path):
    from portable_deblur.report.write import write_report

    layout = RunLayout(tmp_path / "run")
    rows = [_row("fast", 26.5, 2.0), _row("good", 27.5, 5.0), _row("worse", 26.4, 6.0),
            ResultRow(id="broken", arch="unet", values={"upsampler": "broken"}, status="failed", error="boom")]
    decision = write_report(layout, rows, Objectives("32x32_t2"), title="hand-made")
    assert [r.id for r in decision.front] == ["fast", "good"]
    assert decision.lines[2].startswith("ship: a trade-off")  # rows without intervals compare exactly
    assert layout.pareto_csv.read_text().splitlines()[0].startswith("id,")
    assert {line.split(",")[0] for line in layout.pareto_csv.read_text().splitlines()[1:]} == {"fast", "good"}
    assert layout.pareto_png.is_file() and not layout.latency_csv.exists()  # one resolution: no slope to show
    page = layout.report.read_text()
    assert "hand-made" in page and "broken" in page and "<h2>Pareto front" in page
    assert "Latency against resolution" not in page


def test_nsga2_with_a_portability_objective_steers_on_the_fronts_three_objectives(tiny_args):
    from portable_deblur.search.run import outcome_of
    from portable_deblur.search.study import SearchStudy

    cfg = load_config(["space=upsampling", *tiny_args, "search.sampler=nsga2", "search.n_trials=2",
                       "portability.objective=gpu"])
    spec = Objectives.of(cfg)
    study = SearchStudy.open(cfg)
    assert [d.name.lower() for d in study.study.directions] == spec.directions == ["maximize", "minimize", "maximize"]
    # Two networks equal on latency: one sharper, one that keeps more MACs on the GPU. Both are on the
    # three-objective front; a two-objective study would call only the sharper one best.
    made = [(27.0, 0.5), (26.9, 1.0)]

    def evaluate(candidate, phase):
        psnr, gpu = made[len(study.rows()) % 2]
        return outcome_of([dataclasses.replace(_row(candidate.id, psnr, 10.0, gpu), values=candidate.values)], spec)

    while len(study.rows()) < 2:
        with study.next_trial() as job:  # the search loop's ask / evaluate / tell
            if job.pending:
                job.tell(evaluate(job.candidate, job.phase))
    rows = study.rows()
    _, front = front_rows(rows, spec)
    assert len(front) == 2
    best = study.study.best_trials
    assert {t.user_attrs["candidate"] for t in best} == {r.id for r in front}
    for t in best:
        row = next(r for r in rows if r.id == t.user_attrs["candidate"])
        assert t.values == list(spec.values(row))


def test_a_study_made_with_fewer_directions_than_the_front_is_a_clear_error(tiny_args):
    import optuna

    from portable_deblur.registry import ConfigError
    from portable_deblur.search.storage import comparable
    from portable_deblur.search.study import SearchStudy

    cfg = load_config(["space=upsampling", *tiny_args, "portability.objective=gpu"])
    layout = RunLayout.of(cfg)
    layout.root.mkdir(parents=True)
    old = optuna.create_study(study_name=layout.root.name, storage=layout.study_url,
                              directions=["maximize", "minimize"])  # as made before rank owned the directions
    old.set_user_attr("config", comparable(cfg))
    with pytest.raises(ConfigError, match=r"optimises 2 objectives but this config's front uses 3 .*run.overwrite=true"):
        SearchStudy.open(cfg)
