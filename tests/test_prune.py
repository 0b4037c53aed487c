"""Structured channel pruning (ours) and TF-MOT's 2:4 sparsity on tiny models."""
import numpy as np
import pytest

from portable_deblur.backend import keras
from portable_deblur.models.macs import count_macs
from portable_deblur.models.nafnet import build_nafnet
from portable_deblur.optimize.prune import TOLERANCE, PruneError, plan, prune, rebuild
from portable_deblur.models.unet import build_unet

SHAPE = (32, 32)


def _unet(upsampler, activation="relu", width=8):
    return build_unet(width=width, enc_blocks=[1, 1], middle_blocks=1, upsampler=upsampler, activation=activation)


def _randomise(model, seed=0):
    """Trained-looking weights: random biases, PReLU slopes and NAFNet scales (zero-initialised otherwise)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in layer.get_weights()])


@pytest.mark.parametrize("upsampler, activation", [("transpose", "relu"), ("depth_to_space", "prelu"),
                                                   ("bilinear", "gelu")])
@pytest.mark.parametrize("target", [0.1, 0.3, 0.5])
def test_pruning_hits_the_mac_target_and_keeps_the_unet_runnable(upsampler, activation, target):
    model = _unet(upsampler, activation)
    _randomise(model)
    result = prune(model, target, SHAPE)
    assert result.macs_after == count_macs(result.model, SHAPE)  # measured on the rebuilt model
    assert abs(result.reduction - target) <= TOLERANCE
    assert result.model.count_params() < model.count_params()
    out = result.model(np.random.rand(2, *SHAPE, 3).astype("float32")).numpy()
    assert out.shape == (2, *SHAPE, 3) and np.isfinite(out).all()
    if upsampler == "depth_to_space":  # the conv before DepthToSpace loses whole groups of 4
        for name, (_, after) in result.channels.items():
            if name.endswith("_conv") and name.startswith("up"):
                assert after % 4 == 0
    assert {"input", "out_residual"} <= {layer.name for layer in result.model.layers}  # same architecture


@pytest.mark.parametrize("upsampler", ["transpose", "depth_to_space", "bilinear"])
def test_rebuilt_model_equals_the_original_with_the_removed_channels_zeroed(upsampler):
    """Slicing is exact: removed channels silenced in the original give the pruned model's output (skips,
    concatenations, DepthToSpace groups and transposed kernels all sliced consistently)."""
    model = _unet(upsampler)
    _randomise(model)
    removed, groups = plan(model, 0.3, SHAPE)
    thin, _ = rebuild(model, removed, groups)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and groups[layer.name].size:
            gone = np.array([g in removed for g in groups[layer.name]])
            kernel, bias = layer.get_weights()
            if isinstance(layer, keras.layers.Conv2DTranspose):
                kernel[:, :, gone, :] = 0
            else:
                kernel[..., gone] = 0
            bias[gone] = 0
            layer.set_weights([kernel, bias])
    x = np.random.default_rng(1).random((1, *SHAPE, 3), dtype=np.float32)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("options", [{}, {"attention": "gate", "attention_norm": "batch"},
                                     {"separable": "all", "gate": "relu"}])
def test_nafnet_prunes_with_residual_streams_and_gates_consistent(options):
    model = build_nafnet(width=8, enc_blocks=[1, 1], **options)
    _randomise(model)
    result = prune(model, 0.3, SHAPE)
    assert abs(result.reduction - 0.3) <= TOLERANCE
    assert result.model(np.random.rand(1, *SHAPE, 3).astype("float32")).shape == (1, *SHAPE, 3)
    # A residual stream is one channel space: the blocks' last convs and the stream's producer agree.
    ch = {name: after for name, (_, after) in result.channels.items()}
    sca = "enc0_blk0_sca_conv_pw" if options.get("separable") == "all" else "enc0_blk0_sca_conv"
    stream = [n for n in ch if n.startswith("enc0_blk0_conv3") or n.startswith("enc0_blk0_conv5")]
    assert len({ch[n] for n in stream}) == 1 and sca in ch


def test_channels_go_in_multiples_so_kept_widths_stay_simd_friendly():
    model = build_unet(width=16, enc_blocks=[1, 1], middle_blocks=1, upsampler="transpose", activation="relu")
    _randomise(model)
    result = prune(model, 0.3, SHAPE, multiple=4)
    assert abs(result.reduction - 0.3) <= TOLERANCE
    assert all(after % 4 == 0 for name, (_, after) in result.channels.items() if name != "out_conv")


def test_unreachable_target_is_a_clear_error():
    with pytest.raises(PruneError, match=r"cannot remove 95% of the MACs.*use a smaller target"):
        prune(_unet("bilinear"), 0.95, SHAPE)
    with pytest.raises(PruneError, match=r"in \(0, 1\), e.g. 0.3; got 30"):
        prune(_unet("bilinear"), 30, SHAPE)


def test_unsupported_layer_is_named():
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="c")(inp)
    x = keras.layers.LayerNormalization(name="odd_norm")(x)
    out = keras.layers.Conv2D(3, 3, padding="same")(x)
    with pytest.raises(PruneError, match="odd_norm.*LayerNormalization.*not supported.*supported: \\["):
        prune(keras.Model(inp, out), 0.3, SHAPE)


def test_two_of_four_sparsity_zeroes_half_of_every_group_and_survives_fine_tuning(tiny_dataset, tiny_args):
    from portable_deblur.optimize import sparsity
    from portable_deblur.config import load_config
    from portable_deblur.train.fit import fit

    cfg = load_config(["space=upsampling", *tiny_args])
    model = _unet("depth_to_space")
    _randomise(model)
    wrapped, wrappers = sparsity.wrap(model, "2:4")
    fit(wrapped, tiny_dataset.train, cfg.train)
    sparse = sparsity.strip(model, wrapped, wrappers)
    assert sparsity.zero_fraction(sparse, "2:4") == pytest.approx(0.5)
    for layer in sparse.layers:
        if sparsity.sparsifiable(layer, 4):
            kernel = layer.kernel.numpy()  # (kh, kw, in, out): groups of 4 consecutive input channels
            groups = np.moveaxis(kernel, 2, -1).reshape(-1, kernel.shape[2] // 4, 4)
            assert ((groups == 0).sum(-1) >= 2).all()
    assert sparsity.zero_fraction(model, "2:4") == 0  # the original is untouched
    assert sparse(np.zeros((1, *SHAPE, 3), "float32")).shape == (1, *SHAPE, 3)
