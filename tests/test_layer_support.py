"""The one layer table drives QAT, pruning and the portability prediction alike."""
import pytest

from portable_deblur.backend import keras
from portable_deblur.models.layer_support import LAYERS


def test_qat_configs_are_the_tables_non_default_entries():
    from portable_deblur.optimize.qat import OutputQuantizeConfig, PassThroughQuantizeConfig, QUANTIZE_CONFIGS

    assert set(QUANTIZE_CONFIGS) == {name for name, e in LAYERS.items() if e.quantize != "default"}
    assert QUANTIZE_CONFIGS["DepthToSpace"] is PassThroughQuantizeConfig
    assert QUANTIZE_CONFIGS["PReLU"] is OutputQuantizeConfig


def test_a_layer_missing_from_the_table_is_refused_by_pruning_and_never_predicted_portable():
    from portable_deblur.deploy.portability import check, predict_ops
    from portable_deblur.optimize.prune import PruneError, channel_graph

    inputs = keras.Input((None, None, 3), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem_conv")(inputs)
    x = keras.layers.Softmax(name="odd_softmax")(x)  # not in models/layer_support.py
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", name="out_conv")(x))
    with pytest.raises(PruneError, match=r"odd_softmax.*Softmax.*not supported by channel pruning; supported: \[.*'Conv2D'"):
        channel_graph(model)
    ops = [op.name for op in predict_ops(model, (16, 16))]
    assert "UNKNOWN_Softmax" in ops
    assert "UNKNOWN_Softmax" in check(predict_ops(model, (16, 16)), "gpu").fallback


def test_channel_rules_tie_what_the_table_says():
    from portable_deblur.optimize.prune import channel_graph

    inputs = keras.Input((None, None, 3), name="input")
    a = keras.layers.Conv2D(4, 3, padding="same", name="a_conv")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b_conv")(inputs)
    s = keras.layers.Add(name="ab_add")([a, b])  # "elementwise": ties a's channel i to b's
    p = keras.layers.PReLU(shared_axes=[1, 2], name="ab_prelu")(s)  # "pass"
    c = keras.layers.Concatenate(name="cat_concat")([p, a])  # "concat": 8 channels
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="out_conv")(c))
    nodes, channels, _ = channel_graph(model)
    find = lambda arr: [nodes.find(int(i)) for i in arr]  # noqa: E731
    assert find(channels["a_conv"]) == find(channels["b_conv"]) == find(channels["ab_prelu"])
    assert len(channels["cat_concat"]) == 8
