"""Post-training quantization variants: each a row of its own, judged on the .tflite itself."""
import dataclasses

import pytest

from portable_deblur.config import load_config
from portable_deblur.registry import ConfigError
from portable_deblur.search.run import prepare, run_search


def test_unknown_quantization_mode_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"optimize.ptq entries must be one of \['fp16', 'int16x8', .*got 'int4'"):
        load_config(["optimize.ptq=[int4]"])


def test_every_ptq_mode_the_optimize_stage_offers_has_converter_settings():
    from portable_deblur.deploy.export import QUANTIZATIONS
    from portable_deblur.optimize.options import PTQ_MODES

    assert set(QUANTIZATIONS) == {"fp32", *PTQ_MODES}


@pytest.mark.slow
def test_ptq_variants_are_rows_and_a_refused_16x8_op_fails_only_its_row(tiny_args):
    args = ["space=upsampling", *tiny_args, "grid.upsampler=[depth_to_space]", "grid.activation=[relu]",
            "optimize.ptq=[fp16,int8,int16x8,int16x8_float_fallback]", "optimize.representative_count=4"]
    cfg, violations, dataset, study = prepare(args)
    front = run_search(cfg, violations, study, dataset)
    rows = {r.id: dataclasses.asdict(r) for r in study.rows()}
    base = "unet__activation-relu__upsampler-depth_to_space"
    assert {k: r["status"] for k, r in rows.items()} == {
        base: "ok", f"{base}__ptq-fp16": "ok", f"{base}__ptq-int8": "ok",
        f"{base}__ptq-int16x8": "failed", f"{base}__ptq-int16x8_float_fallback": "ok"}
    assert "16x8-bit not yet supported for op: 'DEPTH_TO_SPACE'" in rows[f"{base}__ptq-int16x8"]["error"]
    int8 = rows[f"{base}__ptq-int8"]
    conv = [g for g in int8["inventory"] if g["op"] == "CONV_2D"]
    assert conv and all(g["input_dtypes"] == "int8" for g in conv)  # int8 conv tensors in the flatbuffer
    assert int8["values"]["ptq"] == "int8" and int8["fidelity_psnr"] > 20
    assert int8["size_kb"] < rows[base]["size_kb"]  # int8 weights: a smaller file
    fallback = rows[f"{base}__ptq-int16x8_float_fallback"]
    d2s = [g for g in fallback["inventory"] if g["op"] == "DEPTH_TO_SPACE"]
    assert d2s[0]["input_dtypes"] == "float32"  # honestly labelled: this op stayed float
    fp16 = rows[f"{base}__ptq-fp16"]
    assert abs(fp16["psnr_tflite"] - rows[base]["psnr_tflite"]) < 0.05
    assert (study.layout.root / base / "int8_32x32.tflite").is_file()
    assert front


@pytest.mark.slow
def test_pruning_and_combos_optimize_only_the_float_pareto_set(tiny_args):
    from portable_deblur.rank import front_rows
    from portable_deblur.rank import Objectives
    from portable_deblur.search.run import float_front

    # MediaTek's NPU plugin has no DEPTH_TO_SPACE: that candidate is flagged and kept off the front, so one
    # float is on the front and one is not, whatever the timings.
    args = ["space=upsampling", *tiny_args, "model.width=8", "grid.upsampler=[depth_to_space,bilinear]",
            "grid.activation=[relu]", "optimize.prune=[0.3]", "optimize.prune_steps=2",
            "optimize.prune_multiple=2", "optimize.ptq=[int8]", "portability.require=[neuron_apu]",
            "portability.on_violation=flag", "optimize.representative_count=2", "optimize.apply_to=pareto"]
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    rows = {r.id: r for r in study.rows()}
    floats = [r for r in rows.values() if r.optimization == "fp32"]
    assert len(floats) == 2
    front = float_front(cfg, study)  # from the per-trial timings every worker saw, not the final re-timing
    untimed = [r for r in study.rows(retimed=False) if r.optimization == "fp32"]
    assert front == [r.id for r in front_rows(untimed, Objectives.of(cfg))[1]]
    assert front == ["unet__activation-relu__upsampler-bilinear"]  # the flagged one is not optimized
    for base in floats:
        variants = {rid for rid in rows if rid.startswith(base.id + "__")}
        if base.id not in front:
            assert variants == set()  # not on the float front: not optimized
            continue
        assert variants == {f"{base.id}__prune-0.3", f"{base.id}__ptq-int8", f"{base.id}__prune-0.3__ptq-int8"}
        assert all(rows[v].status == "ok" for v in variants)
        pruned = rows[f"{base.id}__prune-0.3"]
        assert abs(1 - pruned.macs / base.macs - 0.3) <= 0.02 and pruned.params < base.params
        assert rows[f"{base.id}__prune-0.3__ptq-int8"].optimization == "pruned-30%+int8"
        assert (study.layout.root / pruned.artifacts["primary"]).is_file()
    optimize_trials = [t for t in study.study.get_trials() if t.user_attrs.get("phase") == "optimize"]
    assert sorted(t.user_attrs["candidate"] for t in optimize_trials) == sorted(front)
    # Resuming a finished run does no work and enqueues nothing again.
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    assert len(study.study.get_trials()) == 2 + len(front)
