"""NAFNet: reference parameter counts, every thesis option builds, trains, converts and matches Keras, TLC."""
import numpy as np
import pytest

from portable_deblur.backend import tf
from portable_deblur.models.layers import LocalAveragePool
from portable_deblur.models.nafnet import build_nafnet
from portable_deblur.deploy.portability import predict_ops
from portable_deblur.registry import ConfigError


def reference_params(width, enc, middle=1, dec=(1, 1, 1, 1), channels=3):
    """Parameters of the reference PyTorch NAFNet, layer by layer (NAFNet_arch.py): per NAFBlock of c channels
    conv1 c->2c, depthwise 3x3 on 2c, SCA 1x1 c->c, conv3 c->c, conv4 c->2c, conv5 c->c (all with bias),
    two LayerNorms (weight, bias) and beta, gamma: 7c^2 + 33c."""
    block = lambda c: 7 * c * c + 33 * c  # noqa: E731
    total = channels * width * 9 + width + width * 9 * channels + channels  # intro, ending
    c = width
    for n in enc:
        total += n * block(c) + 4 * c * 2 * c + 2 * c  # blocks, 2x2 stride-2 down conv with bias
        c *= 2
    total += middle * block(c)
    for n in dec:
        total += c * 2 * c  # 1x1 up conv, no bias (then PixelShuffle / DepthToSpace)
        c //= 2
        total += n * block(c)
    return total


@pytest.mark.parametrize("name, width, enc", [("NAFNet-32-36", 32, [1, 1, 1, 28]), ("NAFNet-16-18", 16, [1, 1, 1, 10]),
                                              ("NAFNet-16-9", 16, [1, 1, 1, 1]), ("NAFNet-8-9", 8, [1, 1, 1, 1])])
def test_parameter_counts_equal_the_reference(name, width, enc):
    model = build_nafnet(width=width, enc_blocks=enc)
    assert model.count_params() == reference_params(width, enc)
    if name == "NAFNet-32-36":
        assert model.count_params() == 17_111_907  # the published NAFNet-GoPro-width32: 17.11 M


# Every value of every option at least once, combined into four models (each costs a trace, a training step
# and a conversion): the defaults, then each non-default value in one of three combinations.
# norm="batch" with separable="high": the middle block's norms fold into its 1x1 convs, the separable levels'
# stay (their next conv is a bias-free depthwise 1x1); attention_norm="batch" folds back into theta and phi.
OPTIONS = [dict(),
           dict(gate="gelu", separable="high", attention="gate", norm="batch", global_pool="axis_means"),
           dict(gate="relu", separable="low", attention="gate", attention_activation="gelu",
                attention_norm="scaled_layer", norm="scaled_layer", attention_upsample="transpose", tlc_window=8,
                tlc_pool="depthwise"),
           dict(separable="all", attention="gate", attention_norm="batch", tlc_window=8)]


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", OPTIONS, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_each_option_trains_converts_matches_keras_and_is_predicted(kwargs, tiny_cfg, tiny_dataset, check_builder):
    import dataclasses

    from portable_deblur.train.fit import fit

    model = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], **kwargs)
    fit(model, tiny_dataset.train, dataclasses.replace(tiny_cfg.train, steps=1))
    rng = np.random.default_rng(0)  # non-trivial weights everywhere (zero-initialised scales hide ops)
    model.set_weights([np.abs(rng.normal(size=w.shape)).astype("float32") * 0.1 + 0.5 for w in model.get_weights()])
    _settle_batch_norms(model, rng.random((1, 32, 32, 3), np.float32))
    ops = check_builder(model, min_psnr=60)  # large weights: parity judged by PSNR
    counts = {}
    for op in predict_ops(model, (32, 32)):
        counts[op.name] = counts.get(op.name, 0) + 1
    assert dict(sorted(counts.items())) == ops


def _settle_batch_norms(model, x):
    """Give every batch norm the statistics of its input on ``x``, as training would (with the large test
    weights, unnormalised activations would overflow)."""
    from portable_deblur.backend import keras

    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            seen = keras.Model(model.input, layer.input)(x).numpy()
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, seen.mean(axis=(0, 1, 2)), seen.var(axis=(0, 1, 2))])


def test_tlc_equals_global_pooling_when_the_window_covers_the_input():
    x = tf.random.stateless_uniform([1, 16, 24, 3], seed=[3, 4])
    global_mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True).numpy()
    np.testing.assert_allclose(LocalAveragePool(24)(x).numpy(), global_mean, rtol=1e-6)
    local = LocalAveragePool(5)(x).numpy()
    assert local.shape == (1, 16, 24, 3)
    np.testing.assert_allclose(local[0, 8, 12], x.numpy()[0, 6:11, 10:15].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(local[0, 0, 0], x.numpy()[0, :3, :3].mean(axis=(0, 1)), rtol=1e-5)  # in-image only
    # A whole NAFNet built with a window >= the input equals the global-pooling one with the same weights.
    a, b = build_nafnet(width=4, enc_blocks=[1, 1]), build_nafnet(width=4, enc_blocks=[1, 1], tlc_window=32)
    b.set_weights(a.get_weights())
    img = np.random.default_rng(1).random((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(a(img).numpy(), b(img).numpy(), atol=1e-6)


@pytest.mark.parametrize("shape, window", [((1, 40, 30, 2), 36), ((1, 33, 17, 2), 9), ((1, 16, 12, 3), 16),
                                           ((1, 8, 8, 2), 1)])
def test_depthwise_tlc_computes_the_same_mean_as_the_average_pools(shape, window):
    """The portable pooling (a PAD, dilated depthwise box passes, the border MUL) is TLC's in-image mean."""
    x = tf.random.stateless_uniform(shape, seed=[1, 2])
    pools = LocalAveragePool(window)(x).numpy()
    np.testing.assert_allclose(LocalAveragePool(window, "depthwise")(x).numpy(), pools, atol=1e-6)


@pytest.mark.slow
def test_int8_depthwise_tlc_stays_on_xnnpack_where_average_pooling_falls_off(tiny_dataset):
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.portability import xnnpack_delegation

    rep = representative_inputs(tiny_dataset.train, (32, 32), 2)
    left = {}
    for pool in ("average_pool", "depthwise"):
        model = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], tlc_window=16, tlc_pool=pool)
        left[pool] = xnnpack_delegation(to_tflite(model, (32, 32), "int8", rep))["undelegated_ops"]
    assert "AVERAGE_POOL_2D" in left["average_pool"]
    assert not {"AVERAGE_POOL_2D", "PAD", "DEPTHWISE_CONV_2D", "MUL"} & set(left["depthwise"])


@pytest.mark.slow
@pytest.mark.parametrize("global_pool", ["mean", "axis_means"])
def test_each_norms_int8_file_falls_off_xnnpack_where_the_table_and_the_scale_check_say(global_pool, tiny_dataset):
    """Per norm, the int8 nodes XNNPACK leaves to TFLite's reference kernels are exactly those of the ops the op
    table predicts from the flatbuffer (LayerNorm's RSQRT, and SQUARED_DIFFERENCE unless scaled) and the ADD /
    SUB / MUL nodes whose quantization scales XNNPACK's check refuses (``scale_refusals``: LayerNorm's epsilon
    ADD; the table sees op types, not scales); where both predict none -- a folded batch norm -- XNNPACK runs
    the int8 file whole, with the global pool as one MEAN or two."""
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.flatbuffer import op_inventory
    from portable_deblur.deploy.portability import check, scale_refusals, xnnpack_nodes

    rep = representative_inputs(tiny_dataset.train, (32, 32), 2)
    left = {}
    for norm in ("layer", "scaled_layer", "batch"):
        model = _random_weights(build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], norm=norm,
                                             global_pool=global_pool))
        flat = to_tflite(model, (32, 32), "int8", rep)
        original, taken, _, names = xnnpack_nodes(flat)
        refused = {names[d["outputs"][0]]: d["op_name"] for i, d in enumerate(original) if i not in taken}
        predicted = set(check(op_inventory(flat), "xnnpack").fallback)
        assert predicted <= set(refused.values()), norm
        assert {name for name, op in refused.items() if op not in predicted} == set(scale_refusals(flat)), norm
        left[norm] = set(refused.values())
    assert {"SQUARED_DIFFERENCE", "RSQRT"} <= left["layer"] and "RSQRT" in left["scaled_layer"]
    assert left["batch"] == set()


def _random_weights(model, seed=0):
    """Non-trivial weights everywhere (positive variances for batch norms)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.uniform(0.5, 2.0, w.shape) if "moving_variance" in w.name else
                        rng.normal(0, 0.15, w.shape)).astype("float32") for w in model.weights])
    return model


def test_a_folded_batch_norm_leaves_no_normalization_op_in_the_file():
    """norm=batch: every block's two norms fold into the 1x1 convolution after them, the attention gates'
    into theta and phi before them; the file has no op of a norm layer and computes what Keras does."""
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_inventory
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.models.fold import foldable

    model = _random_weights(build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], norm="batch",
                                         attention="gate", attention_norm="batch"))
    norms = [l for l in model.layers if type(l).__name__ == "BatchNormalization"]
    assert len(norms) == 2 * 5 + 2 and all(foldable(l) for l in norms)  # 5 blocks, 2 gates
    flat = to_tflite(model, (32, 32))
    assert not {op.layer for op in op_inventory(flat)} & {l.name for l in norms}
    assert {op.name for op in predict_ops(model, (32, 32))} == {op.name for op in op_inventory(flat)}
    x = np.random.default_rng(1).random((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(predictor(flat)(x), model(x, training=False).numpy(), atol=1e-5)


def test_scaled_layer_norm_and_axis_means_compute_what_the_reference_does():
    """LayerNorm is scale-invariant, so reducing in an x/128 domain gives the reference's output; two
    single-axis means give the global mean (within 1e-5), while the probed sums shrink."""
    from portable_deblur.deploy.fp16_range import peaks

    x = 200 * np.random.default_rng(2).random((1, 32, 32, 3), np.float32)
    ref = _random_weights(build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1]))
    ported = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], norm="scaled_layer",
                          global_pool="axis_means")
    ported.set_weights(ref.get_weights())
    np.testing.assert_allclose(ported(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)
    squares = lambda m: max(p.value for p in peaks(m, [x]) if p.kind == "sum of squares")  # noqa: E731
    assert squares(ported) == pytest.approx(squares(ref) / 128 ** 2, rel=1e-3)


def test_bad_options_name_the_value_and_the_choices():
    with pytest.raises(ConfigError, match=r"separable must be one of \['all', 'high', 'low', 'none'\]; got 'mid'"):
        build_nafnet(width=4, separable="mid")
    with pytest.raises(ConfigError, match=r"tlc_pool must be one of \['average_pool', 'depthwise'\]; got 'sum'"):
        build_nafnet(width=4, tlc_window=8, tlc_pool="sum")
    with pytest.raises(ConfigError, match=r"gate must be one of \['gelu', 'relu', 'simplegate'\]; got 'swish'"):
        build_nafnet(width=4, gate="swish")
    with pytest.raises(ConfigError, match=r"norm must be one of \['batch', 'layer', 'scaled_layer'\]; got 'group'"):
        build_nafnet(width=4, norm="group")
    with pytest.raises(ConfigError, match=r"attention_norm must be one of \['batch', 'layer', 'none', 'scaled_layer'\]; got 'group'"):
        build_nafnet(width=4, attention="gate", attention_norm="group")
