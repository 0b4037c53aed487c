"""NAFNet (Chen et al. 2022, "Simple Baselines for Image Restoration"): the thesis's starting network.

A layer-for-layer re-implementation of the reference ``NAFNet`` (megvii-research/NAFNet,
``basicsr/models/archs/NAFNet_arch.py``): the same convolutions, norms, gates and residual scales with the
same shapes, so the parameter count equals the reference's for the same config. NHWC instead of NCHW, and
DepthToSpace instead of PixelShuffle (the same op up to a fixed permutation of the learned 1x1 conv's
output channels).

The thesis names models NAFNet-C-N: width C, N NAFBlocks in total (encoder + middle + decoder), varying the
last encoder level: NAFNet-32-36 = width 32, enc [1, 1, 1, 28]; NAFNet-16-18 = width 16, enc [1, 1, 1, 10];
NAFNet-16-9 = width 16, enc [1, 1, 1, 1]; always middle 1 and dec [1, 1, 1, 1].
"""
from typing import Optional, Sequence

from portable_deblur.backend import keras
from portable_deblur.layers import ChannelLayerNorm, ChannelScale, DepthToSpace, LocalAveragePool, SimpleGate
from portable_deblur.registry import ConfigError


def _pool(x, *, tlc_window: Optional[int], level: int, name: str):
    """SCA's pooling: global average, or TLC's local window (``tlc_window`` pixels at full resolution)."""
    if tlc_window is None:
        return keras.layers.GlobalAveragePooling2D(keepdims=True, name=name)(x)
    return LocalAveragePool(max(1, tlc_window // 2**level), name=name)(x)


def naf_block(inp, *, channels: int, name: str, level: int, dw_expand: int = 2, ffn_expand: int = 2,
              tlc_window: Optional[int] = None):
    """One NAFBlock: LN -> 1x1 -> 3x3 depthwise -> SimpleGate -> SCA -> 1x1, scaled by ``beta``, added;
    then LN -> 1x1 -> SimpleGate -> 1x1 (the FFN), scaled by ``gamma``, added."""
    dw = channels * dw_expand
    x = ChannelLayerNorm(name=f"{name}_norm1")(inp)
    x = keras.layers.Conv2D(dw, 1, name=f"{name}_conv1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{name}_conv2")(x)
    x = SimpleGate(name=f"{name}_sg1")(x)
    attention = _pool(x, tlc_window=tlc_window, level=level, name=f"{name}_sca_pool")
    attention = keras.layers.Conv2D(dw // 2, 1, name=f"{name}_sca_conv")(attention)
    x = keras.layers.Multiply(name=f"{name}_sca_mul")([x, attention])
    x = keras.layers.Conv2D(channels, 1, name=f"{name}_conv3")(x)
    y = keras.layers.Add(name=f"{name}_add1")([inp, ChannelScale(name=f"{name}_beta")(x)])
    x = ChannelLayerNorm(name=f"{name}_norm2")(y)
    x = keras.layers.Conv2D(channels * ffn_expand, 1, name=f"{name}_conv4")(x)
    x = SimpleGate(name=f"{name}_sg2")(x)
    x = keras.layers.Conv2D(channels, 1, name=f"{name}_conv5")(x)
    return keras.layers.Add(name=f"{name}_add2")([y, ChannelScale(name=f"{name}_gamma")(x)])


def build_nafnet(*, width: int = 16, enc_blocks: Sequence[int] = (1, 1, 1, 1), middle_blocks: int = 1,
                 dec_blocks: Optional[Sequence[int]] = None, tlc_window: Optional[int] = None,
                 channels: int = 3, name: str = "nafnet") -> keras.Model:
    """Build NAFNet for inputs whose height and width are multiples of ``2**len(enc_blocks)``.

    Args:
        width: channels at full resolution (doubled at each 2x2 stride-2 downsampling conv).
        enc_blocks: NAFBlocks per encoder level; its length is the depth.
        middle_blocks: NAFBlocks at the lowest resolution.
        dec_blocks: NAFBlocks per decoder level, deepest first (default: one per level, as the thesis).
        tlc_window: None for SCA's global average pooling (training); a window in full-resolution pixels for
            TLC's local pooling (export at sizes larger than the training crop; 1.5x the crop, as NAFNetLocal).
        channels: image channels in and out.
    """
    enc_blocks = list(enc_blocks)
    dec_blocks = [1] * len(enc_blocks) if dec_blocks is None else list(dec_blocks)
    if width < 1 or not enc_blocks or len(dec_blocks) != len(enc_blocks) or middle_blocks < 0 \
            or min(enc_blocks + dec_blocks) < 0:
        raise ConfigError(f"nafnet needs width >= 1, non-empty enc_blocks and dec_blocks of equal length with "
                          f"counts >= 0; got width={width}, enc_blocks={enc_blocks}, middle_blocks={middle_blocks}, "
                          f"dec_blocks={dec_blocks}")
    if tlc_window is not None and tlc_window < 1:
        raise ConfigError(f"tlc_window must be None or >= 1 pixels; got {tlc_window}")
    inputs = keras.Input((None, None, channels), name="input")
    x = keras.layers.Conv2D(width, 3, padding="same", name="intro")(inputs)
    skips, chan = [], width
    for level, n in enumerate(enc_blocks):
        for b in range(n):
            x = naf_block(x, channels=chan, name=f"enc{level}_blk{b}", level=level, tlc_window=tlc_window)
        skips.append(x)
        x = keras.layers.Conv2D(2 * chan, 2, strides=2, name=f"down{level}")(x)
        chan *= 2
    depth = len(enc_blocks)
    for b in range(middle_blocks):
        x = naf_block(x, channels=chan, name=f"mid_blk{b}", level=depth, tlc_window=tlc_window)
    for i, level in enumerate(reversed(range(depth))):
        x = keras.layers.Conv2D(2 * chan, 1, use_bias=False, name=f"up{level}_conv")(x)
        x = DepthToSpace(2, name=f"up{level}_d2s")(x)
        chan //= 2
        x = keras.layers.Add(name=f"dec{level}_skip")([x, skips[level]])
        for b in range(dec_blocks[i]):
            x = naf_block(x, channels=chan, name=f"dec{level}_blk{b}", level=level, tlc_window=tlc_window)
    x = keras.layers.Conv2D(channels, 3, padding="same", name="ending")(x)
    x = keras.layers.Add(name="out_residual")([x, inputs])
    return keras.Model(inputs, x, name=name)


def size_multiple(*, enc_blocks: Sequence[int] = (1, 1, 1, 1), **_) -> int:
    """Input height and width must be multiples of this (2**depth)."""
    return 2 ** len(list(enc_blocks))
