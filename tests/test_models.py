"""Every registered upsampler and activation, end to end at tiny size (width 4, 32x32)."""
import numpy as np
import pytest

from portable_deblur.models.blocks import ACTIVATIONS, UPSAMPLERS
from portable_deblur.registry import ConfigError
from portable_deblur.models.unet import build_unet

# The op each upsampler must put in the flatbuffer (MediaTek paper, Table 3), and must be the only one to.
UPSAMPLER_OPS = {"transpose": "TRANSPOSE_CONV", "depth_to_space": "DEPTH_TO_SPACE", "bilinear": "RESIZE_BILINEAR"}


@pytest.mark.parametrize("upsampler", sorted(UPSAMPLERS))
def test_upsampler_end_to_end_and_its_op_in_the_flatbuffer(upsampler, check_builder):
    model = build_unet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], middle_blocks=1, upsampler=upsampler)
    # Perturb the zero-initialised output conv so the parity check compares a non-trivial output.
    out = model.get_layer("out_conv")
    out.set_weights([np.random.default_rng(1).normal(0, 0.1, w.shape) for w in out.get_weights()])
    ops = check_builder(model)
    assert ops[UPSAMPLER_OPS[upsampler]] == 2  # one per decoder level
    for other, op in UPSAMPLER_OPS.items():
        if other != upsampler:
            assert op not in ops


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_end_to_end(activation, check_builder):
    model = build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=1, activation=activation,
                       upsampler="depth_to_space", residual=False)
    ops = check_builder(model)
    if activation == "prelu":
        assert "PRELU" in ops


def test_layer_names_are_deterministic():
    a = [layer.name for layer in build_unet(width=4).layers]
    b = [layer.name for layer in build_unet(width=4).layers]
    assert a == b and "enc1_blk1_conv" in a and "up0_tconv" in a and "dec0_concat" in a
    assert all(n == "input" or "_" in n for n in a), a  # underscore-separated stage_block_op names


@pytest.mark.parametrize("kwargs, expected", [
    ({"upsampler": "pixelshufle"}, r"upsampler must be one of \['bilinear', 'depth_to_space', 'transpose'\]; got 'pixelshufle'"),
    ({"activation": "swishy"}, r"activation must be one of \[.*'prelu'.*got 'swishy'"),
    ({"enc_blocks": [1, 1], "dec_blocks": [1]}, r"equal length.*enc_blocks=\[1, 1\], dec_blocks=\[1\]"),
    ({"width": 0}, r"width must be an integer >= 1; got 0"),
])
def test_builder_rejects_bad_arguments(kwargs, expected):
    with pytest.raises(ConfigError, match=expected):
        build_unet(**kwargs)


def test_residual_output_starts_as_identity():
    model = build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=0)
    x = np.random.default_rng(0).random((2, 16, 16, 3), np.float32)
    np.testing.assert_allclose(model(x).numpy(), x, atol=1e-6)
