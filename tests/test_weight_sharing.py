"""Weight sharing: one supernet per grid, candidates extracted as plain models, the pretrained start, rows
compared at equal training, and the training precision a machine gets."""
import json

import numpy as np
import pytest

from portable_deblur.config import load_config
from portable_deblur.models.candidate import expand
from portable_deblur.registry import ConfigError

SMALL = {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}
GRID = {"upsampler": ["transpose", "depth_to_space", "bilinear"], "activation": ["relu", "prelu"]}


def _randomised(model, seed: int):
    """``model`` with random weights (positive variances): untrained identity weights (LayerNorm's ones and
    zeros, zero residual scales) would let the converter fold ops away."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.0, w.shape).astype(np.float32) if "variance" in w.name
                 else rng.normal(0, 0.3, w.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def grid_net():
    """The small grid's supernet with random (non-trivial) weights, and its candidates."""
    from portable_deblur.models.supernet import build_supernet, spec_of

    candidates = expand("unet", SMALL, GRID)
    return _randomised(build_supernet(spec_of(candidates)), seed=1), candidates


def test_every_extracted_candidate_computes_its_supernet_path(grid_net):
    from portable_deblur.models.choice import switches
    from portable_deblur.models.supernet import extract, set_path, weight_table

    net, candidates = grid_net
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    table = weight_table(net)
    outputs = []
    for c in candidates:
        set_path(net, c.values)
        model = extract(table, c)
        assert not switches(model)  # a plain model: nothing of the supernet in it
        expected = net(x).numpy()
        np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)
        outputs.append(expected)
    assert min(np.abs(a - b).max() for i, a in enumerate(outputs) for b in outputs[i + 1:]) > 1e-3  # paths differ


def test_extracted_candidates_export_the_ops_of_stand_alone_ones(grid_net):
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_counts
    from portable_deblur.models.build import build_model
    from portable_deblur.models.supernet import extract, weight_table

    net, candidates = grid_net
    table = weight_table(net)
    for c in candidates[::2] + candidates[1:2]:  # every upsampler and both activations
        alone = _randomised(build_model(c), seed=3)  # a trained network's weights: nothing folds away
        extracted = extract(table, c)
        assert [layer.name for layer in extracted.layers] == [layer.name for layer in alone.layers]
        assert op_counts(to_tflite(extracted, (32, 32))) == op_counts(to_tflite(alone, (32, 32)))


def test_a_searched_key_one_set_of_weights_cannot_hold_is_a_clear_error():
    from portable_deblur.models.supernet import spec_of

    with pytest.raises(ConfigError, match=r"cannot share weights across grid.residual: .*holds choices of "
                                          r"\['activation', 'dec_blocks', 'enc_blocks', 'middle_blocks', "
                                          r"'upsampler', 'width'\]"):
        spec_of(expand("unet", SMALL, {"residual": [True, False], "activation": ["relu", "prelu"]}))


def test_path_sampling_is_a_pure_function_of_seed_and_step_and_fair_trains_every_value_equally():
    from portable_deblur.train.paths import path_sampler

    choices = {"upsampler": ["transpose", "depth_to_space", "bilinear"], "activation": ["relu", "prelu"]}
    fair = lambda step: path_sampler(choices, 0, "fair")(step)[0]  # noqa: E731 - one path a step
    assert [fair(i) for i in range(30)] == [path_sampler(choices, 0, "fair")(i)[0] for i in range(30)]
    assert [fair(i) for i in range(12, 30)] == [fair(i) for i in range(30)][12:]  # resumes mid-way
    for block in range(10):  # every block of 3 steps trains each upsampler once and each activation 1-2 times
        steps = [fair(3 * block + j) for j in range(3)]
        assert sorted(s["upsampler"] for s in steps) == sorted(choices["upsampler"])
        assert set(s["activation"] for s in steps) == set(choices["activation"])
    uniform = lambda step: path_sampler(choices, 0, "uniform")(step)[0]  # noqa: E731
    assert [uniform(i) for i in range(30)] != [fair(i) for i in range(30)]
    assert [uniform(i) for i in range(30)] != [path_sampler(choices, 1, "uniform")(i)[0] for i in range(30)]
    with pytest.raises(ConfigError, match=r"search.path_sampling must be one of \['fair', 'sandwich', 'uniform'\]; "
                                          r"got 'greedy'"):
        path_sampler(choices, 0, "greedy")


def test_supernet_training_resumes_to_the_weights_of_one_uninterrupted_run(tiny_overrides, tiny_dataset, tmp_path,
                                                                           monkeypatch, capsys):
    from portable_deblur.models.supernet import read_table, spec_of
    from portable_deblur.layout import RunLayout
    from portable_deblur.search.weight_sharing import train_supernet
    from portable_deblur.train import fit
    from portable_deblur.train.paths import path_sampler

    cfg = load_config(["space=upsampling", *tiny_overrides, "model.enc_blocks=[1,1]", "model.dec_blocks=[1,1]",
                       "train.learning_rate=3e-3"])  # 6 steps that move the figures
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    traces, make_step = [], fit.make_step
    monkeypatch.setattr(fit, "make_step", lambda *a, **k: traces.append(1) or make_step(*a, **k))
    once = train_supernet(cfg, tmp_path / "once", tiny_dataset, candidates, steps=6, save_every=2)
    sampler = path_sampler(spec_of(candidates).choices, cfg.train.seed, cfg.search.path_sampling)
    paths = {tuple(sorted(sampler(i)[0].items())) for i in range(6)}
    assert len(traces) == len(paths) < 6  # a path is traced once, not again in each piece of training
    printed = capsys.readouterr().out  # no terminal here: a line per piece instead of the progress bar
    assert "supernet: 2/6 steps (" in printed and "supernet: 4/6 steps" in printed and " left" in printed
    assert f"supernet: its {len(candidates)} paths on the validation frames gain " in printed
    first = train_supernet(cfg, tmp_path / "pieces", tiny_dataset, candidates, steps=6, save_every=3, minutes=1e-9)
    assert first["steps"] == 3  # out of time after its first piece
    pieces = train_supernet(cfg, tmp_path / "pieces", tiny_dataset, candidates, steps=6, save_every=3)
    a, b = read_table(RunLayout.weight_table(tmp_path / "once")), read_table(RunLayout.weight_table(tmp_path / "pieces"))
    assert sorted(a) == sorted(b) and any("|upsampler=depth_to_space" in k for k in a)
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)
    assert pieces["steps"] == once["steps"] == 6 and set(pieces["paths"]) == {c.id for c in candidates}
    assert json.loads(RunLayout.weight_record(tmp_path / "pieces").read_text())["sha256"] == pieces["sha256"]
    again = train_supernet(cfg, tmp_path / "pieces", tiny_dataset, candidates, steps=6, save_every=3)
    assert again["paths"] == pieces["paths"] and again["own_steps"] == 6  # finished: judged on its trained weights


def test_a_supernet_whose_paths_still_output_their_input_is_called_out_with_what_to_change():
    from portable_deblur.search.weight_sharing import paths_summary

    record = {"steps": 3000, "paths": {"a": {"gain": 0.0}, "b": {"gain": -0.0004}, "c": {"gain": 0.019}}}
    said = paths_summary(record, 240, "psnr")
    assert said.startswith("supernet: 3 of its 240 paths on the validation frames gain -0.000 .. +0.019 dB")
    assert "warning: 2 of the 3 still output their input" in said and "longer than its 3000 steps" in said
    assert "train.loss=l1" in said and "train.loss=l1" not in paths_summary(record, 3, "l1")
    learned = {"steps": 5, "paths": {"a": {"gain": 0.0}, "b": {"gain": 0.02}}}  # half at the identity: no warning
    assert "warning" not in paths_summary(learned, 2, "psnr")


def test_the_shipped_pretrained_start_loads_and_a_mismatched_candidate_is_named():
    from portable_deblur.models.build import build_model
    from portable_deblur.models.pretrained import shipped
    from portable_deblur.models.supernet import read_table
    from portable_deblur.search.run import check_start
    from portable_deblur.train.start import apply_start, configured_start

    cfg = load_config(["space=upsampling", "train.init=pretrained"])
    table, record = shipped()
    assert table.stat().st_size < 20e6 and record["steps"] > 0 and record["command"].startswith("python benchmarks/")
    assert set(record["paths"]) == {c.id for c in expand(cfg.arch, cfg.model, cfg.grid)}
    candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
    start = configured_start("pretrained", candidate.id)
    assert start.steps == record["steps"] and start.source == f"pretrained {record['sha256'][:12]}"
    model = build_model(candidate)
    apply_start(model, candidate, start)
    weights = read_table(table)
    np.testing.assert_array_equal(model.get_layer("mid_blk0_conv").get_weights()[0], weights["mid_blk0_conv"][0])
    narrow = load_config(["space=upsampling", "train.init=pretrained", "model.width=8"])
    with pytest.raises(ConfigError, match=r"train.init='pretrained' .* first mismatch is layer 'enc0_blk0_conv', "
                                          r"weights \[\(3, 3, 3, 8\), \(8,\)\] here but \[\(3, 3, 3, 16\), \(16,\)\]"):
        check_start(narrow, expand(narrow.arch, narrow.model, narrow.grid))


def test_a_damaged_weight_table_is_refused(tmp_path):
    from portable_deblur.models.pretrained import read_record, record_file

    table = tmp_path / "start.npz"
    table.write_bytes(b"not the file the record names")
    record_file(table).write_text(json.dumps({"sha256": "0" * 64, "command": "python benchmarks/pretrain.py"}))
    with pytest.raises(ConfigError, match="does not match the SHA-256 its record start.json names"):
        read_record(table)


def test_a_diverged_supernet_ends_the_run_with_a_clear_error(tiny_args, monkeypatch, capsys):
    from portable_deblur.search import weight_sharing
    from portable_deblur.search.run import main

    def diverging(*args, **kwargs):
        raise FloatingPointError("training diverged: mean l1 loss 2e+08 over steps 2451-2500")

    monkeypatch.setattr(weight_sharing, "train_supernet", diverging)
    args = ["space=upsampling", *tiny_args, "search.weight_sharing=supernet", "search.supernet_steps=4", "run.name=diverged"]
    assert main(args) == 1
    said = capsys.readouterr().err
    assert "error: training diverged: mean l1 loss 2e+08 over steps 2451-2500; the supernet's last checkpoint" in said
    assert "Traceback" not in said


def test_a_supernet_run_trains_it_once_judges_every_width_and_depth_and_fine_tunes_only_the_promoted(tiny_args):
    """One elastic supernet (two widths x two depths, sandwich steps) trained once per run; ``search.rungs=[0,
    2]`` judges every candidate on the shared weights (0 own steps, recorded) and fine-tunes only the promoted
    from those very weights; the report has the width x depth table; a resumed run trains nothing again."""
    from portable_deblur.search.run import main
    from portable_deblur.search.study import SearchStudy

    args = ["space=upsampling", *tiny_args, "model.enc_blocks=[1,1]", "model.dec_blocks=null",
            "grid.width=[4,8]", "grid.enc_blocks=[[1,1],[2,2]]", "grid.upsampler=[bilinear]", "grid.activation=[prelu]",
            "search.weight_sharing=supernet", "search.supernet_steps=4", "search.path_sampling=sandwich",
            "search.sandwich_random=1", "search.rungs=[0,2]", "search.eta=2", "train.steps=2"]
    assert main(args) == 0
    study = SearchStudy.load(str(load_config(args).run.root) + "/upsampling")
    judged = [r for r in study.rows_at(0) if r.optimization == "fp32"]
    assert len(judged) == 4 and {(r.steps, r.inherited_from, r.inherited_steps) for r in judged} == {(0, "supernet", 4)}
    tuned = [r for r in study.rows_at(1) if r.optimization == "fp32"]
    assert len(tuned) == 2 and {(r.steps, r.inherited_from, r.inherited_steps) for r in tuned} == {(2, "supernet", 4)}
    assert all(np.isfinite(r.psnr_inherited) for r in tuned)
    assert all(r.psnr_inherited == pytest.approx(next(j.psnr_keras for j in judged if j.id == r.id), abs=1e-4)
               for r in tuned)  # the fine-tuning started from the very weights rung 0 judged
    report = study.layout.report.read_text()
    assert "Weight sharing" in report
    section = report[report.index("<h2>Width x depth</h2>"):]
    section = section[:section.index("<h2>", 5)]
    assert all(r.id in section for r in judged) and "4 shared + 0 own" in section
    assert section.count("[") == 11  # 4 gains, 3 differences to the largest, 4 latencies: each with its interval
    weights = study.layout.supernet / "weights.npz"
    stamp = weights.stat().st_mtime_ns
    assert main(args) == 0 and weights.stat().st_mtime_ns == stamp  # resumed: not trained again


def test_a_start_is_judged_in_float32_like_its_fine_tuned_model(tiny_args):
    """Fine-tuned in bfloat16 at learning rate 0, a candidate's weights never move: the report's fine-tuning gain
    (fine-tuned minus inherited PSNR) must then be 0, not the difference between bfloat16 and float32 inference
    (the shipped start at its own width: a barely trained tiny network's residual is too small to show it)."""
    from portable_deblur.search.run import main
    from portable_deblur.search.study import SearchStudy

    args = ["space=upsampling", *tiny_args, "model.width=16", "train.init=pretrained", "grid.upsampler=[transpose]",
            "grid.activation=[relu]", "train.precision=mixed_bfloat16", "train.learning_rate=0", "train.steps=1"]
    assert main(args) == 0
    [row] = SearchStudy.load(str(load_config(args).run.root) + "/upsampling").rows()
    assert row.inherited_from.startswith("pretrained") and row.psnr_keras == pytest.approx(row.psnr_inherited, abs=1e-6)


def test_a_stale_supernet_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    import os
    import time

    from portable_deblur.search.weight_sharing import _Lock

    lock = tmp_path / "training.lock"
    with _Lock(lock, heartbeat_s=60) as held:
        assert held
        with _Lock(lock, heartbeat_s=60) as other:
            assert not other  # a live worker holds it
    assert not lock.exists()
    lock.write_text("gone:1")
    old = time.time() - 600
    os.utime(lock, (old, old))
    with _Lock(lock, heartbeat_s=60) as held:
        assert held  # its worker stopped refreshing it 10 minutes ago


def _row(cid, psnr, ms, steps, inherited=0, **values):
    from portable_deblur.records import ResultRow

    return ResultRow(id=cid, arch="unet", values=values, status="ok", psnr_blurry=25.0, psnr_keras=psnr,
                     psnr_tflite=psnr, latency={"32x32_t2": {"median_ms": ms}}, steps=steps,
                     inherited_steps=inherited, inherited_from="pretrained" if inherited else "",
                     psnr_inherited=psnr - 0.1 if inherited else float("nan"))


def test_only_rows_trained_equally_are_compared_on_the_front_and_in_the_choice_effects():
    from portable_deblur.rank import Objectives, front_rows
    from portable_deblur.report.effects import choice_effects
    from portable_deblur.report.sharing import sharing_rows

    spec = Objectives(psnr="tflite", latency="32x32_t2")
    rows = [_row("a", 26.0, 10, 300, 5000, activation="relu"), _row("b", 26.2, 12, 300, 5000, activation="prelu"),
            _row("c", 27.0, 5, 100, 0, activation="gelu"),  # better and faster, but trained differently
            _row("d", 25.9, 11, 100, 5000, activation="relu6")]  # a lower rung
    _, front = front_rows(rows, spec)
    assert [r.id for r in front] == ["a", "b"]
    effects = {e["value"]: e for e in choice_effects(rows, spec) if e["choice"] == "activation"}
    assert set(effects) == {"relu", "prelu"} and effects["prelu"]["delta_db"] == pytest.approx(0.1)
    assert [r["candidate"] for r in sharing_rows(rows)] == ["b", "a"]
    assert rows[0].training_label == "5000 shared + 300 steps" and rows[2].training_label == "100 steps"


def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it_natively(monkeypatch):
    from portable_deblur import environment

    monkeypatch.setattr(environment, "_has_gpu", lambda: False)
    assert environment.training_precision("auto", isa="avx avx2 fma avx512f") == "float32"
    assert environment.training_precision("auto", isa="avx2 avx512f avx512_bf16") == "mixed_bfloat16"
    assert environment.training_precision("auto", isa="avx2 amx_tile amx_bf16") == "mixed_bfloat16"
    assert environment.training_precision("float32", isa="avx512_bf16") == "float32"
    monkeypatch.setattr(environment, "_has_gpu", lambda: True)
    assert environment.training_precision("auto", isa="avx512_bf16") == "float32"
    assert "native_bfloat16" in environment.describe()


def test_a_nafnet_supernet_holds_norm_attention_and_pooling_choices():
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_counts
    from portable_deblur.models.build import build_model
    from portable_deblur.models.supernet import build_supernet, extract, set_path, spec_of, weight_table

    fixed = {"width": 4, "enc_blocks": [1, 1], "dec_blocks": [1, 1], "attention": "gate", "tlc_window": 16}
    candidates = expand("nafnet", fixed, {"attention_norm": ["none", "batch", "layer"],
                                          "attention_upsample": ["bilinear", "transpose"],
                                          "norm": ["layer", "scaled_layer", "batch"],
                                          "tlc_pool": ["average_pool", "depthwise"]})
    net = _randomised(build_supernet(spec_of(candidates)), seed=2)
    table = weight_table(net)
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    assert {"norm", "attention_norm"} <= set(spec_of(candidates).choices)
    checked = candidates[::5]
    assert all({c.values[k] for c in checked} == set(v) for k, v in spec_of(candidates).choices.items())
    for c in checked:  # every value of every key
        set_path(net, c.values)
        model = extract(table, c)
        np.testing.assert_allclose(model(x).numpy(), net(x).numpy(), atol=1e-5)
    c = next(c for c in candidates if c.values["norm"] == "batch")
    alone = _randomised(build_model(c), seed=3)  # a trained network's weights: nothing folds away
    assert op_counts(to_tflite(extract(table, c), (32, 32))) == op_counts(to_tflite(alone, (32, 32)))
    with pytest.raises(ConfigError, match=r"cannot share weights across grid.gate"):
        spec_of(expand("nafnet", fixed, {"gate": ["simplegate", "relu"]}))


def test_a_pretraining_recipe_chains_its_stages_and_resumes_without_training_again(tiny_overrides, tmp_path, monkeypatch,
                                                                                     capsys):
    """``benchmarks/pretrain.py --recipe``: each stage continues the one before, the last record carries the
    chain (steps, each stage's record) and names the one command; run again, it trains nothing."""
    import importlib.util
    import sys

    from portable_deblur.config import REPO_ROOT
    from portable_deblur.models.pretrained import read_record

    spec = importlib.util.spec_from_file_location("pretrain", REPO_ROOT / "benchmarks" / "pretrain.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "RECIPES", {"tiny": [(2, ["train.learning_rate=1e-3"]), (3, ["train.warmup_steps=0"])]})
    tiny = [o for o in tiny_overrides if not o.startswith(("train.steps", "search.rungs", "train.init"))]
    argv = ["pretrain.py", "--recipe", "tiny", "--piece", "2", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
            *tiny, "model.enc_blocks=[1,1]", "model.dec_blocks=[1,1]", "grid.upsampler=[transpose]"]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    record = read_record(tmp_path / "o" / "upsampling.npz")
    assert (record["steps"], record["own_steps"], record["continued_from"]["steps"]) == (5, 3, 2)
    assert record["command"].startswith("python benchmarks/pretrain.py --recipe tiny")
    assert record["continued_from"]["command"].startswith("python benchmarks/pretrain.py --steps 2 ")
    stamp = (tmp_path / "w" / "stage2" / "progress.json").read_text()
    bench.main()  # finished: judged again, trained no further
    assert (tmp_path / "w" / "stage2" / "progress.json").read_text() == stamp
    assert read_record(tmp_path / "o" / "upsampling.npz")["paths"] == record["paths"]
    capsys.readouterr()
    # --against: every shared path judged on the same frames, paired -- against itself exactly 0, against the
    # first stage's table some difference, each with its interval
    monkeypatch.setattr(sys, "argv", [*argv, "--against", str(tmp_path / "o" / "upsampling.npz")])
    bench.main()
    monkeypatch.setattr(sys, "argv", [*argv, "--against", str(tmp_path / "w" / "stage1" / "out" / "upsampling.npz")])
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("unet__") and "[" in line]
    assert len(rows) == 2 * 2  # each of the two paths, compared with each table
    assert all(row.endswith("+0.000 [+0.000, +0.000]") for row in rows[:2])
    assert not any(row.endswith("+0.000 [+0.000, +0.000]") for row in rows[2:])
    monkeypatch.setattr(sys, "argv", [*argv, "train.init=pretrained"])
    with pytest.raises(SystemExit, match="--recipe tiny sets every stage's steps and start"):
        bench.main()
