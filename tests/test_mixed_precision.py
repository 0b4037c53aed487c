"""Per-layer mixed precision: selective int8 files, the plan's rows through study, report and handoff, and
the errors a user's island list gets."""
import json

import numpy as np
import pytest

from portable_deblur.config import load_config
from portable_deblur.registry import ConfigError

NAFNET = ["space=nafnet", "grid.width=[4]", "grid.enc_blocks=[[1,1]]", "model.dec_blocks=[1,1]"]


def test_selective_quantization_leaves_exactly_the_chosen_layers_in_float():
    from portable_deblur.deploy.flatbuffer import op_inventory
    from portable_deblur.models.nafnet import build_nafnet
    from portable_deblur.optimize.mixed import Calibrated, float_islands, undelegated_layers

    model = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1])
    samples = [np.random.default_rng(i).random((1, 32, 32, 3), np.float32) for i in range(2)]
    calibrated = Calibrated(model, (32, 32), lambda: ([s] for s in samples))
    full = calibrated.quantize()
    assert float_islands(full) == {}
    slow = undelegated_layers(full)  # LayerNorm's int8 SQUARED_DIFFERENCE / RSQRT have no XNNPACK kernel
    assert "enc0_blk0_norm1" in slow and "RSQRT" in slow["enc0_blk0_norm1"]
    chosen = ["enc0_blk0_norm1", "mid_blk0_norm2", "dec0_blk0_add2"]
    mixed = calibrated.quantize(chosen)
    assert float_islands(mixed) == {name: "float32" for name in sorted(chosen)}
    ops = op_inventory(mixed)
    assert all(op.dtype == "int8" for op in ops if op.layer == "enc0_blk0_conv1")
    assert "enc0_blk0_norm1" not in undelegated_layers(mixed)
    with pytest.raises(ConfigError, match=r"optimize.mixed_islands names layer 'enc9_norm', which this network does "
                                          r"not have; its layers with ops: \[.*'enc0_blk0_norm1'"):
        calibrated.quantize(["enc9_norm"])


def test_an_unknown_island_or_op_is_a_clear_error_before_any_work(tiny_args):
    from portable_deblur.search.run import prepare

    with pytest.raises(ConfigError, match=r"optimize.mixed_ops names op 'LAYER_NORM', which is no TFLite builtin "
                                          r"op; valid: \[.*'RSQRT'"):
        load_config([*NAFNET, *tiny_args, "optimize.ptq=[mixed]", "optimize.mixed_ops=[LAYER_NORM]"])
    args = [*NAFNET, *tiny_args, "optimize.ptq=[mixed]", "optimize.mixed_islands=[enc0_blk0_norm9]"]
    with pytest.raises(ConfigError, match=r"names layer 'enc0_blk0_norm9', .* \[.*'enc0_blk0_norm1'"):
        prepare(args)
    assert not (load_config(args).run.root and __import__("pathlib").Path(load_config(args).run.root).exists())


def test_a_mixed_row_goes_through_the_study_the_report_and_a_bundle(tiny_args):
    from portable_deblur.handoff.bundle import main as handoff
    from portable_deblur.search.run import main
    from portable_deblur.search.study import SearchStudy

    args = [*NAFNET, *tiny_args, "optimize.ptq=[mixed]", "optimize.apply_to=all", "optimize.mixed_max_tries=1",
            "optimize.qat_steps=0"]
    assert main(args) == 0
    run = str(load_config(args).run.root) + "/nafnet"
    rows = {r.id: r for r in SearchStudy.load(run).rows()}
    mixed = rows["nafnet__enc_blocks-1.1__width-4__ptq-mixed"]
    assert mixed.status == "ok" and mixed.optimization == "mixed"
    assert {"enc0_blk0_norm1", "dec0_blk0_norm2"} <= set(mixed.float_islands)  # LayerNorms left off XNNPACK
    assert "left off XNNPACK" in mixed.mixed_plan["reasons"]["enc0_blk0_norm1"]
    assert mixed.quantization_errors and not mixed.xnnpack["undelegated_ops"].get("RSQRT")
    assert "errors" not in mixed.mixed_plan  # the full per-layer table stays in the candidate folder
    report = (SearchStudy.load(run).layout.report).read_text()
    assert "float islands" in report and "Per-layer quantization" in report
    assert handoff([f"run={run}", f"candidate={mixed.id}"]) == 0
    manifest = json.loads(next((SearchStudy.load(run).layout.handoff).glob("*ptq-mixed*/manifest.json")).read_text())
    islands = manifest["candidate"]["float_islands"]
    assert islands["enc0_blk0_norm1"]["dtype"] == "float32" and "XNNPACK" in islands["enc0_blk0_norm1"]["why"]
