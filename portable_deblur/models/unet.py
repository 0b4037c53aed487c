"""U-Net builder (Ronneberger et al. 2015), the MediaTek paper's base network with swappable ops."""
from typing import Optional, Sequence

from portable_deblur.backend import keras
from portable_deblur.models.blocks import apply_conv_act, get_activation, get_upsampler, upsample
from portable_deblur.models.choice import Choices, level_count, levels, repeat
from portable_deblur.registry import ConfigError


def _check_blocks(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")


def build_unet(*, width: int = 16, enc_blocks: Sequence[int] = (2, 2, 2), middle_blocks: int = 2,
               dec_blocks: Optional[Sequence[int]] = None, upsampler: str = "transpose",
               activation: str = "relu", residual: bool = True, channels: int = 3,
               name: str = "unet") -> keras.Model:
    """Build a U-Net that maps a blurry image to a sharp one, for any input size divisible by 2**depth.

    Args:
        width: channels at full resolution; level ``i`` has ``width * 2**i``.
        enc_blocks: conv+activation blocks per encoder level; its length is the depth (number of 2x
            downsamplings).
        middle_blocks: blocks at the lowest resolution.
        dec_blocks: blocks per decoder level, in decoding order (deepest first); same length as enc_blocks.
            Default: ``enc_blocks`` mirrored, so a search over ``enc_blocks`` varies the depth alone.
        upsampler: key of ``blocks.UPSAMPLERS`` (``Choices`` of them: a supernet, ``models/choice.py``).
        activation: key of ``blocks.ACTIVATIONS`` (or ``Choices``).
        residual: predict a correction added to the input (global residual).
        channels: image channels in and out.
        name: model name.
    """
    _check_blocks("width", width, 1)
    depth = levels(enc_blocks)
    mirrored = dec_blocks is None
    encs = [list(v) for v in (enc_blocks if isinstance(enc_blocks, Choices) else [enc_blocks])]  # a depth choice: each
    decs = [list(reversed(e)) for e in encs] if mirrored else [
        list(v) for v in (dec_blocks if isinstance(dec_blocks, Choices) else [dec_blocks])]
    for enc in encs:
        for dec in decs:
            if not enc or len(enc) != len(dec):
                raise ConfigError(f"enc_blocks and dec_blocks must be non-empty lists of equal length; "
                                  f"got enc_blocks={enc}, dec_blocks={dec}")
        for i, n in enumerate(enc):
            _check_blocks(f"enc_blocks[{i}]", n, 1)
    for dec in decs:
        for i, n in enumerate(dec):
            _check_blocks(f"dec_blocks[{i}]", n, 0)
    for value in (middle_blocks if isinstance(middle_blocks, Choices) else [middle_blocks]):
        _check_blocks("middle_blocks", value, 0)
    for value in (activation if isinstance(activation, Choices) else [activation]):
        get_activation(value)
    for value in (upsampler if isinstance(upsampler, Choices) else [upsampler]):
        get_upsampler(value)

    inputs = keras.Input((None, None, channels), name="input")
    x, skips = inputs, []
    for level in range(depth):
        x = repeat(x, level_count(enc_blocks, level), lambda t, b: apply_conv_act(
            t, filters=width * 2**level, activation=activation, name=f"enc{level}_blk{b}"), name=f"enc{level}")
        skips.append(x)
        x = keras.layers.MaxPool2D(2, name=f"down{level}_pool")(x)
    x = repeat(x, level_count(middle_blocks), lambda t, b: apply_conv_act(
        t, filters=width * 2**depth, activation=activation, name=f"mid_blk{b}"), name="mid")
    for i, level in enumerate(reversed(range(depth))):
        x = upsample(x, upsampler=upsampler, filters=width * 2**level, name=f"up{level}")
        x = keras.layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        count = level_count(enc_blocks, i, reverse=True) if mirrored else level_count(dec_blocks, i)
        x = repeat(x, count, lambda t, b: apply_conv_act(
            t, filters=width * 2**level, activation=activation, name=f"dec{level}_blk{b}"), name=f"dec{level}")
    # With a global residual the output conv starts at zero, so training starts from the identity
    # (blurry in, blurry out) instead of identity plus random noise: measurably faster early progress.
    init = "zeros" if residual else "glorot_uniform"
    x = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init, name="out_conv")(x)
    if residual:
        x = keras.layers.Add(name="out_residual")([x, inputs])
    return keras.Model(inputs, x, name=name)


def size_multiple(*, enc_blocks: Sequence[int] = (2, 2, 2), **_) -> int:
    """Input height and width must be multiples of this (2**depth)."""
    return 2 ** levels(enc_blocks)
