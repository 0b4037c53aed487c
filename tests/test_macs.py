"""MAC and parameter counting against hand-computed values."""
from portable_deblur.backend import keras
from portable_deblur.models.macs import count_macs, count_params
from portable_deblur.models.unet import build_unet


def test_small_conv_stack_by_hand():
    x = inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(x)          # 8*8 * 3*3*3*4   = 6912
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)    # 8*8 * 3*3*4     = 2304
    x = keras.layers.Conv2D(6, 1, strides=2)(x)                # 4*4 * 4*6       = 384
    x = keras.layers.Conv2DTranspose(2, 2, strides=2)(x)       # 4*4 * 2*2*6*2   = 768
    x = keras.layers.Dense(5)(x)                               # 8*8 * 2*5       = 640
    model = keras.Model(inp, x)
    assert count_macs(model, (8, 8)) == 6912 + 2304 + 384 + 768 + 640
    assert count_params(model) == (3 * 3 * 3 * 4 + 4) + (3 * 3 * 4 + 4) + (4 * 6 + 6) + (2 * 2 * 6 * 2 + 2) + (2 * 5 + 5)


def test_upsamplers_cost_equal_macs_and_macs_scale_with_pixels():
    macs = {u: count_macs(build_unet(width=8, upsampler=u), (64, 64)) for u in ("transpose", "depth_to_space", "bilinear")}
    assert len(set(macs.values())) == 1
    model = build_unet(width=8)
    assert count_macs(model, (128, 128)) == 4 * count_macs(model, (64, 64))
