"""Portability: op inventory from the flatbuffer, per-target fallback rules, measured XNNPACK delegation."""
import numpy as np
import pytest
import yaml

from portable_deblur.backend import tf
from portable_deblur.models.blocks import ACTIVATIONS, UPSAMPLERS
from portable_deblur.deploy.export import to_tflite
from portable_deblur.deploy.flatbuffer import OpRecord, inventory_table, op_counts, op_inventory
from portable_deblur.models.macs import count_macs
from portable_deblur.deploy.portability import SUPPORT_DIR, check, check_all, get_target, predict_ops, targets, xnnpack_delegation
from portable_deblur.registry import ConfigError
from portable_deblur.models.unet import build_unet


def _tiny(**kwargs):
    return build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=1, **kwargs)


def test_inventory_of_a_hand_checked_model():
    model = _tiny(upsampler="transpose")
    ops = op_inventory(to_tflite(model, (16, 16)))
    # enc0 conv, pool, mid conv, tconv, concat, dec conv, out conv, add
    assert [o.name for o in ops] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "TRANSPOSE_CONV", "CONCATENATION",
                                     "CONV_2D", "CONV_2D", "ADD"]
    assert all(o.dtype == "float32" for o in ops)
    assert ops[4].input_dtypes == ("float32", "float32")  # both concatenated tensors are runtime inputs
    assert ops[0].macs == 16 * 16 * 3 * 3 * 3 * 4
    assert ops[3].macs == 8 * 8 * 2 * 2 * 8 * 4  # 8x8 input, 2x2 kernel, 8 -> 4 channels
    assert sum(o.macs for o in ops) == count_macs(model, (16, 16))
    table = {row["op"]: row for row in inventory_table(ops)}
    assert table["CONV_2D"]["count"] == 4 and table["CONV_2D"]["macs"] == sum(o.macs for o in ops if o.name == "CONV_2D")


def test_every_target_file_cites_its_source_and_nnapi_has_every_api_level():
    for path in SUPPORT_DIR.glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())
        assert spec["source"] and path.read_text().startswith("#"), path
    assert [t for t in targets() if t.startswith("nnapi")] == [f"nnapi_api{a}" for a in range(27, 35)]
    with pytest.raises(ConfigError, match=r"portability target must be one of \['gpu'.*got 'tpu'"):
        get_target("tpu")


def _op(name, dtype="float32", version=1, out=(1, 64, 64, 8), macs=10, **options):
    return OpRecord(0, name, version, (dtype,), (dtype,), out, macs, options)


@pytest.mark.parametrize("op, flagged_on, accepted_on", [
    (_op("TRANSPOSE_CONV", version=3), ["nnapi_api27", "nnapi_api28"], ["gpu", "nnapi_api29", "xnnpack"]),
    (_op("GELU"), ["nnapi_api34", "hexagon"], ["gpu", "xnnpack"]),
    (_op("PRELU", dtype="int8"), ["xnnpack", "hexagon", "nnapi_api28"], ["gpu", "nnapi_api29"]),
    (_op("RESIZE_BILINEAR", half_pixel_centers=True), ["nnapi_api29"], ["nnapi_api30", "gpu"]),
    (_op("RESIZE_BILINEAR", dtype="int8", out=(1, 128, 128, 8)), ["hexagon"], ["xnnpack", "nnapi_api27"]),
    (_op("RESIZE_BILINEAR", dtype="int8", out=(1, 64, 64, 8)), [], ["hexagon"]),
    (_op("CONV_2D", dtype="int16", version=4), ["gpu", "xnnpack", "nnapi_api34", "hexagon"], []),
    (_op("CONV_2D", version=9), ["nnapi_api34"], ["gpu"]),
    # the LiteRT NPU compiler plugins: MediaTek's static list has no DEPTH_TO_SPACE or ELU; both take 16x8
    (_op("DEPTH_TO_SPACE", dtype="int8"), ["neuron_apu"], ["qnn_htp", "hexagon", "gpu"]),
    (_op("ELU"), ["neuron_apu", "hexagon"], ["qnn_htp", "gpu"]),
    (_op("CONV_2D", dtype="int16", version=4), [], ["qnn_htp", "neuron_apu"]),
    (_op("PRELU", dtype="int8"), [], ["qnn_htp", "neuron_apu"]),
])
def test_an_op_a_target_lacks_is_flagged_for_that_target_only(op, flagged_on, accepted_on):
    for name in flagged_on:
        assert op.name in check([op], name).fallback, name
    for name in accepted_on:
        assert check([op], name).portable, name


def test_accelerator_mac_fraction():
    ops = [_op("CONV_2D", macs=90), _op("TRANSPOSE_CONV", version=3, macs=10), _op("ADD", macs=0)]
    report = check(ops, "nnapi_api28")
    assert report.fallback == {"TRANSPOSE_CONV": "TRANSPOSE_CONV needs API 29"}
    assert report.rejected_nodes == 1 and report.nodes == 3
    assert report.accelerator_mac_fraction == pytest.approx(0.9)


CASES = [dict(upsampler=u) for u in sorted(UPSAMPLERS)] + [dict(activation=a, upsampler="depth_to_space") for a in sorted(ACTIVATIONS)]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "-".join(k.values()))
def test_keras_graph_prediction_matches_the_converted_flatbuffer(kwargs):
    """The pre-training check and the post-export report judge the same ops for every registry entry."""
    model = _tiny(**kwargs)
    flat = to_tflite(model, (32, 32))
    predicted = predict_ops(model, (32, 32))
    counts = {}
    for op in predicted:
        counts[op.name] = counts.get(op.name, 0) + 1
    assert dict(sorted(counts.items())) == op_counts(flat)
    real = op_inventory(flat)
    assert sum(o.macs for o in predicted) == sum(o.macs for o in real)
    names = ["gpu", "nnapi_api27", "nnapi_api29", "nnapi_api30", "hexagon", "xnnpack"]
    assert {k: set(v.fallback) for k, v in check_all(predicted, names).items()} == \
        {k: set(v.fallback) for k, v in check_all(real, names).items()}


def test_nafnet_prediction_matches_its_trained_flatbuffer():
    """NAFNet's own layers (LayerNorm, SimpleGate, SCA, residual scales) predicted op for op, as converted
    once trained (random weights: initial ones/zeros let the converter fold some of them away)."""
    from portable_deblur.models.nafnet import build_nafnet

    model = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    flat = to_tflite(model, (32, 32))
    counts = {}
    for op in predict_ops(model, (32, 32)):
        counts[op.name] = counts.get(op.name, 0) + 1
    assert dict(sorted(counts.items())) == op_counts(flat)


def _int8(model, size=16):
    @tf.function(autograph=False)
    def serve(x):
        return model(x, training=False)

    concrete = serve.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.random((1, size, size, 3), np.float32)] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def test_int8_prelu_is_flagged_for_xnnpack_by_the_live_interpreter():
    flat = _int8(_tiny(activation="prelu", upsampler="depth_to_space"))
    measured = xnnpack_delegation(flat)
    assert measured["undelegated_ops"].get("PRELU", 0) == 3  # enc0, mid and dec0 blocks
    assert measured["delegated_nodes"] < measured["nodes"]
    assert "PRELU" in check(op_inventory(flat), "xnnpack").fallback  # the data file agrees
    relu = xnnpack_delegation(_int8(_tiny(activation="relu", upsampler="depth_to_space")))
    assert "PRELU" not in relu["undelegated_ops"]
    assert sum(relu["undelegated_ops"].values()) < sum(measured["undelegated_ops"].values())


def test_fp32_unet_is_fully_delegated_to_xnnpack():
    measured = xnnpack_delegation(to_tflite(_tiny(activation="prelu"), (16, 16)))
    assert measured["undelegated_ops"] == {} and measured["delegated_nodes"] == measured["nodes"] > 0
