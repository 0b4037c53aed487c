"""The records the stages pass each other, and the pure optimize plan: hand-built inputs, answers written out."""
import math

import pytest

from portable_deblur.config import load_config
from portable_deblur.optimize.plan import TRAINED, plan
from portable_deblur.records import ResultRow, Variant
from portable_deblur.latency import LatencyKey, best_ms, latency_key
from portable_deblur.registry import ConfigError


def test_variant_ids_follow_the_combined_grammar():
    assert TRAINED.row_id("unet__a-1") == "unet__a-1" and TRAINED.values == {} and TRAINED.label == "fp32"
    v = Variant(("prune", 0.3), "ptq", "int8")
    assert v.row_id("unet__a-1") == "unet__a-1__prune-0.3__ptq-int8"
    assert v.values == {"prune": 0.3, "ptq": "int8"} and v.label == "pruned-30%+int8" and v.file_label == "int8"
    sparse_qat = Variant(("sparsity", "2:4"), "qat", "int8")
    assert sparse_qat.id == "sparsity-2-4__qat-int8" and sparse_qat.file_label == "qat_int8"
    assert sparse_qat.label == "sparse-2:4+qat-int8"
    assert Variant(("prune", 0.1)).id == "prune-0.1" and Variant(("prune", 0.1)).label == "pruned-10%"


def test_plan_lists_floats_then_each_combined_float_with_ptq_and_qat(tiny_args):
    cfg = load_config(["space=upsampling", *tiny_args, "optimize.prune=[0.1,0.3]", "optimize.sparsity=['2:4']",
                       "optimize.ptq=[int8,fp16]", "optimize.qat_steps=2", "optimize.combine=[prune-0.3]"])
    assert [v.id for v in plan(cfg.optimize)] == [
        "", "prune-0.1", "prune-0.3", "sparsity-2-4",
        "ptq-int8", "ptq-fp16", "qat-int8",
        "prune-0.3__ptq-int8", "prune-0.3__ptq-fp16", "prune-0.3__qat-int8"]
    nothing = load_config(["space=upsampling", *tiny_args])
    assert plan(nothing.optimize) == [TRAINED]


def test_latency_key_round_trips_and_rejects_bad_text():
    key = LatencyKey.parse("720x1280_t4")
    assert (key.height, key.width, key.threads, key.pixels) == (720, 1280, 4, 921600)
    assert str(key) == "720x1280_t4" == latency_key((720, 1280), 4)
    with pytest.raises(ConfigError, match=r"HxW_tN.*got '720x1280'"):
        LatencyKey.parse("720x1280")


def test_best_ms_of_a_measurement_is_its_undisturbed_trial_median():
    assert best_ms({"median_ms": 5.0, "interleaved_median_ms": 4.0, "stable_ms": 3.0}) == 5.0  # those are checks
    assert best_ms({"median_ms": 5.0}) == 5.0
    assert math.isnan(best_ms({}))


def test_flat_row_has_one_column_per_nested_value():
    row = ResultRow(id="unet__x__ptq-int8", arch="unet", values={"enc_blocks": [1, 2], "ptq": "int8"}, status="ok",
                    psnr_tflite=27.5, psnr_blurry=26.0,
                    latency={"32x32_t2": {"median_ms": 3.0, "interleaved_median_ms": 2.5}},
                    ops={"CONV_2D": 4}, violations=["gpu"], artifacts={"primary": "a/int8_32x32.tflite"},
                    seconds={"export": 1.234}, channels={"enc0_conv": 8},
                    portability={"gpu": {"fallback": {"PRELU": "PRELU not supported"}, "accelerator_mac_fraction": 0.91234}},
                    xnnpack={"nodes": 10, "delegated_nodes": 9, "undelegated_ops": {"PRELU": 1}})
    flat = row.flat()
    assert flat["value_enc_blocks"] == "1-2" and flat["value_ptq"] == "int8"
    assert flat["psnr_gain"] == pytest.approx(1.5)
    assert flat["latency_32x32_t2_median_ms"] == 3.0 and flat["latency_32x32_t2_interleaved_median_ms"] == 2.5
    assert flat["ops"] == "CONV_2D:4" and flat["violations"] == "gpu"
    assert flat["fallback_gpu"] == "PRELU" and flat["accel_macs_gpu"] == 0.9123
    assert flat["xnnpack_delegated"] == "9/10" and flat["xnnpack_undelegated"] == "PRELU:1"
    assert flat["artifact_primary"] == "a/int8_32x32.tflite" and flat["seconds_export"] == 1.23
    assert "channels" not in flat and "values" not in flat
    assert row.best_ms("32x32_t2") == 3.0 and row.optimization == "int8"


def test_artifact_names_round_trip_through_the_layout(tmp_path):
    from portable_deblur.layout import RunLayout

    path = RunLayout.artifact(tmp_path, "qat_int8", (720, 1280))
    assert path.name == "qat_int8_720x1280.tflite"
    assert RunLayout.artifact_parts(path) == ("qat_int8", (720, 1280))


def test_typed_records_round_trip_through_the_study_and_old_rows_still_load():
    """A row with per-frame scores, a paired latency and a duel goes to the study as JSON and comes back typed;
    a row stored before those fields existed loads with their defaults and ranks by its trial median."""
    import dataclasses
    import json

    from portable_deblur.estimates import Duel, FrameScores, PairedLatency

    frames = FrameScores(("a", "b"), ("srgb", "linear"), (True, True), {"blurry": (24.0, 23.0), "tflite": (24.5, 23.2)},
                         {"blurry": (0.7, 0.6), "tflite": (0.75, 0.62)})
    row = ResultRow(id="x", arch="unet", values={}, status="ok", latency={"32x32_t2": {"median_ms": 9.0}},
                    frames=frames, paired={"32x32_t2": PairedLatency(2.0, 1.9, 2.1, 4.0, 30)},
                    duels=(Duel("y", 0.95, 0.93, 0.97, 20, "faster", 1.5),))
    back = ResultRow.from_dict(json.loads(json.dumps(dataclasses.asdict(row))))
    assert (back.frames, back.paired, back.duels) == (row.frames, row.paired, row.duels)
    assert back.best_ms("32x32_t2") == 8.0  # the paired ratio x the unit, not the median
    assert back.latency_interval("32x32_t2").low == pytest.approx(7.6)
    assert back.frames.values("tflite", pipeline="linear") == [23.2]
    assert back.frames.rows("x")[0] == {"artifact": "x", "frame": "a", "pipeline": "srgb", "ranked": True,
                                        "psnr_blurry": 24.0, "psnr_tflite": 24.5, "ssim_blurry": 0.7, "ssim_tflite": 0.75}
    old = {k: v for k, v in dataclasses.asdict(row).items() if k not in ("frames", "paired", "duels")}
    legacy = ResultRow.from_dict(old)
    assert legacy.frames is None and legacy.paired == {} and legacy.best_ms("32x32_t2") == 9.0
    assert legacy.latency_interval("32x32_t2").half_width == 0.0  # compared exactly: no interval was measured


def test_an_old_runs_final_re_timing_still_applies():
    """A study written before paired re-timing kept ``{key, stats}`` per row; it is merged into the latency as
    before, and the newer ``{key, retimed, unit_ms}`` sets the ranked paired figure."""
    from portable_deblur.search.rows import _retimed

    row = ResultRow(id="x", arch="unet", values={}, status="ok", latency={"32x32_t2": {"median_ms": 9.0}})
    old = _retimed(row, {"key": "32x32_t2", "stats": {"interleaved_median_ms": 8.5, "interleaved_rounds": 3}})
    assert old.latency["32x32_t2"]["interleaved_median_ms"] == 8.5 and old.best_ms("32x32_t2") == 9.0
    new = _retimed(row, {"key": "32x32_t2", "unit_ms": 4.0, "level": 0.95, "retimed": {
        "ratio": 2.0, "ratio_low": 1.9, "ratio_high": 2.2, "pairs": 30, "clean": 30, "median_ms": 8.1,
        "reference_ms": 4.05}})
    assert new.best_ms("32x32_t2") == 8.0 and new.latency["32x32_t2"]["settled"]


def test_rows_the_final_re_timing_left_out_are_read_in_the_runs_final_unit():
    """A lower rung's row keeps its trial's ratio; the report reads it in the unit the competing rows got."""
    from portable_deblur.estimates import PairedLatency
    from portable_deblur.search.rows import _in_unit

    row = ResultRow(id="x", arch="unet", values={}, status="ok", latency={"32x32_t2": {"median_ms": 9.0}},
                    paired={"32x32_t2": PairedLatency(2.0, 1.9, 2.1, 4.0, 20)})
    assert _in_unit(row, {"32x32_t2": 4.5}).best_ms("32x32_t2") == 9.0
    assert _in_unit(row, {}).best_ms("32x32_t2") == 8.0
