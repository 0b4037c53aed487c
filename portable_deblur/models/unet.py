"""U-Net builder (Ronneberger et al. 2015), the MediaTek paper's base network with swappable ops."""
from typing import Optional, Sequence

from portable_deblur.backend import keras
from portable_deblur.models.blocks import apply_conv_act, get_activation, get_upsampler, upsample
from portable_deblur.models.choice import Choices
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
    enc_blocks = list(enc_blocks)
    dec_blocks = list(reversed(enc_blocks)) if dec_blocks is None else list(dec_blocks)
    if not enc_blocks or len(enc_blocks) != len(dec_blocks):
        raise ConfigError(f"enc_blocks and dec_blocks must be non-empty lists of equal length; "
                          f"got enc_blocks={enc_blocks}, dec_blocks={dec_blocks}")
    for i, n in enumerate(enc_blocks):
        _check_blocks(f"enc_blocks[{i}]", n, 1)
    for i, n in enumerate(dec_blocks):
        _check_blocks(f"dec_blocks[{i}]", n, 0)
    _check_blocks("middle_blocks", middle_blocks, 0)
    for value in (activation if isinstance(activation, Choices) else [activation]):
        get_activation(value)
    for value in (upsampler if isinstance(upsampler, Choices) else [upsampler]):
        get_upsampler(value)
    depth = len(enc_blocks)

    inputs = keras.Input((None, None, channels), name="input")
    x, skips = inputs, []
    for level, n in enumerate(enc_blocks):
        for b in range(n):
            x = apply_conv_act(x, filters=width * 2**level, activation=activation, name=f"enc{level}_blk{b}")
        skips.append(x)
        x = keras.layers.MaxPool2D(2, name=f"down{level}_pool")(x)
    for b in range(middle_blocks):
        x = apply_conv_act(x, filters=width * 2**depth, activation=activation, name=f"mid_blk{b}")
    for i, level in enumerate(reversed(range(depth))):
        x = upsample(x, upsampler=upsampler, filters=width * 2**level, name=f"up{level}")
        x = keras.layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        for b in range(dec_blocks[i]):
            x = apply_conv_act(x, filters=width * 2**level, activation=activation, name=f"dec{level}_blk{b}")
    # With a global residual the output conv starts at zero, so training starts from the identity
    # (blurry in, blurry out) instead of identity plus random noise: measurably faster early progress.
    init = "zeros" if residual else "glorot_uniform"
    x = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init, name="out_conv")(x)
    if residual:
        x = keras.layers.Add(name="out_residual")([x, inputs])
    return keras.Model(inputs, x, name=name)


def size_multiple(*, enc_blocks: Sequence[int] = (2, 2, 2), **_) -> int:
    """Input height and width must be multiples of this (2**depth)."""
    return 2 ** len(list(enc_blocks))
