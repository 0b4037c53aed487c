"""Post-training quantization variants: each a row of its own, judged on the .tflite itself."""
import dataclasses

import pytest

from portable_deblur.config import load_config
from portable_deblur.registry import ConfigError
from portable_deblur.search import prepare, run_search


def test_unknown_quantization_mode_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"optimize.ptq entries must be among \['fp16', 'int16x8', .*got 'int4'"):
        load_config(["optimize.ptq=[int4]"])


@pytest.mark.slow
def test_ptq_variants_are_rows_and_a_refused_16x8_op_fails_only_its_row(tiny_args):
    args = ["space=upsampling", *tiny_args, "grid.upsampler=[depth_to_space]", "grid.activation=[relu]",
            "optimize.ptq=[fp16,int8,int16x8,int16x8_float_fallback]", "optimize.representative_count=4"]
    cfg, violations, study = prepare(args)
    front = run_search(cfg, violations, study)
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
    fallback = rows[f"{base}__ptq-int16x8_float_fallback"]
    d2s = [g for g in fallback["inventory"] if g["op"] == "DEPTH_TO_SPACE"]
    assert d2s[0]["input_dtypes"] == "float32"  # honestly labelled: this op stayed float
    fp16 = rows[f"{base}__ptq-fp16"]
    assert abs(fp16["psnr_tflite"] - rows[base]["psnr_tflite"]) < 0.05
    assert (study.dir / base / "int8_32x32.tflite").is_file()
    assert front
