"""Every pinned paper-scale experiment in experiments/ runs end to end at tiny scale through overrides."""
import json
from pathlib import Path

import pytest
import yaml

from portable_deblur.search.run import prepare, run_search

EXPERIMENTS = sorted(Path(__file__).resolve().parents[1].glob("experiments/*.yaml"))


def test_there_are_pinned_experiments_and_each_starts_with_its_command():
    names = {p.stem for p in EXPERIMENTS}
    assert {"mediatek_table3", "mediatek_table4", "thesis_table6_1"} <= names
    for path in EXPERIMENTS:
        assert path.read_text().startswith(f"# python -m portable_deblur.search space=experiments/{path.name} ")


def _tiny_overrides(path: Path, tiny_args):
    """The experiment's own config with the scale turned down: tiny data, steps and sizes, last (smallest) grid
    value of each searched key (width 4)."""
    spec = yaml.safe_load(path.read_text())
    grid = [f"grid.{k}=[{4 if k == 'width' else json.dumps(v[-1]).strip(chr(34))}]"
            for k, v in spec.get("grid", {}).items()]
    model = ["model.width=4"] if "width" in spec.get("model", {}) else []
    prune = spec.get("optimize", {}).get("prune")
    if prune:  # the first target only (the one the experiments combine with quantization)
        model += [f"optimize.prune=[{prune[0]}]", "optimize.prune_multiple=1"]
    if spec.get("optimize", {}).get("ptq"):  # every mode is validated at load; one is converted here
        model += [f"optimize.ptq=[{spec['optimize']['ptq'][0]}]"]
    if spec.get("optimize", {}).get("qat_steps"):  # validated at load; QAT itself is tests/test_qat.py's
        model += ["optimize.qat_steps=0"]
    if spec.get("search", {}).get("supernet_steps"):  # a shared training: its own steps turned down too
        model += ["search.supernet_steps=2"]
    if spec.get("train", {}).get("steps") == 0:  # judged on the shared weights, as the experiment is
        model += ["train.steps=0"]
    return [f"space={path}", *tiny_args, *grid, *model, "data.source=embedded", "train.batch_size=2",
            "train.log_every=1", "measure.threads=[2]", "optimize.representative_count=2",
            "optimize.prune_steps=1",
            "data.max_train_pairs=0", "data.max_val_pairs=0", "data.frame_stride=1"]


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_pinned_experiment_runs_at_tiny_scale(path, tiny_args):
    cfg, violations, dataset, study = prepare(_tiny_overrides(path, tiny_args))
    run_search(cfg, violations, study, dataset)
    rows = study.rows()
    assert rows and all(r.status in ("ok", "failed") for r in rows)
    assert rows[0].status == "ok" and rows[0].fidelity_psnr > 60, rows[0].error
    if cfg.search.weight_sharing == "supernet" and cfg.train.steps == 0:  # every network judged on the shared weights
        assert {(r.steps, r.inherited_from) for r in rows if r.status == "ok"} == {(0, "supernet")}
