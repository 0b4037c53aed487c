"""The fp16 range check: what LiteRT's GPU accelerator (fp16 whatever the file's dtype) would overflow, per
layer, including the sums inside reductions, at every measured size."""
import numpy as np

from portable_deblur.backend import keras
from portable_deblur.deploy.fp16_range import FP16_MAX, RISK, fp16_report, peaks, risk_text
from portable_deblur.models.layers import ChannelLayerNorm


def _norm_after_a_gain(gain: float, channels: int = 64):
    """Input -> a 1x1 conv that spreads each pixel over ``channels`` channels at +-``gain`` -> LayerNorm."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(channels, 1, use_bias=False, name="spread")(inputs)
    out = ChannelLayerNorm(name="norm")(x)
    model = keras.Model(inputs, out)
    kernel = np.zeros((1, 1, 3, channels), np.float32)
    kernel[0, 0, 0, ::2], kernel[0, 0, 0, 1::2] = gain, -gain  # channels +-gain * red: mean 0, |x| = gain
    model.get_layer("spread").set_weights([kernel])
    return model


def test_a_layer_norm_whose_sum_of_squares_overflows_is_flagged_though_no_activation_does():
    frame = np.ones((1, 16, 16, 3), np.float32)
    found = {(p.layer, p.kind): p.value for p in peaks(_norm_after_a_gain(100.0), [frame])}
    assert found[("spread", "activation")] == 100.0 < RISK * FP16_MAX  # every tensor fits fp16 ...
    assert found[("norm", "sum of squares")] == 64 * 100.0 ** 2 > FP16_MAX  # ... but the variance's sum does not
    report = fp16_report(_norm_after_a_gain(100.0), {"16x16": [frame]})
    assert [(p["layer"], p["kind"]) for p in report["16x16"]["risky"]] == [("norm", "sum of squares")]
    assert risk_text(report) == "fp16 overflow risk at 16x16: norm sum of squares 6.4e+05 (overflows)"
    calm = fp16_report(_norm_after_a_gain(10.0), {"16x16": [frame]})  # 64 x 10^2: far inside fp16
    assert calm["16x16"]["risky"] == [] and risk_text(calm) == ""
    assert calm["16x16"]["largest"] == {"layer": "norm", "kind": "sum of squares", "value": 6400.0}


def test_a_global_pool_sums_the_frame_so_its_risk_grows_with_the_resolution():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(keepdims=True, name="sca_pool")(inputs))
    sizes = {f"{s}x{s}": [np.full((1, s, s, 3), 0.5, np.float32)] for s in (32, 512)}
    report = fp16_report(model, sizes)
    assert report["32x32"]["risky"] == []  # 32 * 32 * 0.5 = 512
    assert report["512x512"]["risky"] == [{"layer": "sca_pool", "kind": "spatial sum", "value": 512 * 512 * 0.5}]


def test_the_portability_matrix_names_the_risk_in_the_gpu_column():
    from portable_deblur.records import ResultRow
    from portable_deblur.report.portability import portability_rows

    risky = {"720x1280": {"largest": {"layer": "enc3_blk0_norm1", "kind": "sum of squares", "value": 2.1e5},
                          "risky": [{"layer": "enc3_blk0_norm1", "kind": "sum of squares", "value": 2.1e5}]}}
    row = ResultRow(id="nafnet__x", arch="nafnet", values={}, status="ok", fp16_range=risky,
                    portability={"gpu": {"fallback": {}, "accelerator_mac_fraction": 1.0},
                                 "xnnpack": {"fallback": {}, "accelerator_mac_fraction": 1.0}})
    cells = portability_rows([row])[0]
    assert cells["gpu"] == "ok; fp16 overflow risk at 720x1280: enc3_blk0_norm1 sum of squares 2.1e+05 (overflows)"
    assert cells["xnnpack"] == "ok"  # the CPU computes in float32
    assert "fp16 overflow risk at 720x1280" in row.flat()["fp16_risk"]
