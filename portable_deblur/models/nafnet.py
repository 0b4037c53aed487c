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
from portable_deblur.models.choice import Choices, choose, level_count, levels, repeat
from portable_deblur.models.layers import TLC_POOLS, AxisMeans, ChannelLayerNorm, ChannelScale, DepthToSpace, LocalAveragePool, SimpleGate
from portable_deblur.registry import ConfigError, lookup

# Thesis Table 6.4: which regular convolutions become depthwise-separable (3x3 -> depthwise kxk + 1x1).
# "high": blocks of the two full/half-resolution levels; "low": the two lowest levels and the middle blocks;
# "all": every convolution with groups=1, including intro, ending, down- and up-sampling convs.
SEPARABLE = {"none", "high", "low", "all"}
# NAFNet's nonlinearity in each block: SimpleGate (the paper's choice) or a classic activation (thesis Sec.
# 5.7, NAFNet's own ablation). An activation keeps the shapes by halving conv1's and conv4's outputs.
GATES = {"simplegate": None, "relu": "relu", "gelu": "gelu"}
# The normalization before each NAFBlock's two branches (and an attention gate's, plus "none" there), every
# one shape-preserving, so a supernet shares them:
# - "layer": NAFNet's LayerNorm over each pixel's channels (the reference);
# - "scaled_layer": the same LayerNorm reduced in an x/128 domain (exact: LayerNorm is scale-invariant), so
#   its sums stay inside fp16 on a GPU that accumulates in fp16 (LiteRT's NAFNet phone sample's fix); a float
#   / fp16 choice: its int8 file lost 3.6 dB (the scaled values lose their resolution at the stream's scale);
# - "batch": BatchNormalization, an affine map per channel at inference that the export folds into the
#   neighbouring convolutions (models/fold.py): no normalization op is left in the file, so nothing in the
#   block lacks an int8 kernel (LayerNorm's SQUARED_DIFFERENCE and RSQRT have none on XNNPACK). NAFNet's
#   paper chose LayerNorm for stable training at its large learning rates; what "batch" costs is measured
#   (benchmarks/nafnet_norms.py).
NORMS = {"layer", "scaled_layer", "batch"}
LAYER_NORM_SCALE = 1 / 128  # "scaled_layer"'s domain: the LiteRT sample's x/128, a power of two (exact)
# Soft attention gates in the skips (Oktay et al. 2018; thesis Table 6.5): options of the gate.
ATTENTION_NORMS = {"none"} | NORMS
# The ops of SCA's global average pool: one MEAN over both axes, or two single-axis means (AxisMeans: the
# form LiteRT's NAFNet phone sample needed on a Mali GPU; the same value).
GLOBAL_POOLS = {"mean", "axis_means"}
ATTENTION_UPSAMPLES = {"bilinear", "transpose"}
ATTENTION_ACTIVATIONS = {"relu", "gelu"}


def _conv(x, filters: int, kernel: int, *, name: str, separable: bool, strides: int = 1, use_bias: bool = True):
    """A regular conv, or its depthwise-separable replacement (depthwise kxk, then pointwise 1x1)."""
    if not separable:
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same" if kernel > 1 and strides == 1
                                   else "valid", use_bias=use_bias, name=name)(x)
    x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding="same" if kernel > 1 and strides == 1 else "valid",
                                     use_bias=False, name=f"{name}_dw")(x)
    return keras.layers.Conv2D(filters, 1, use_bias=use_bias, name=f"{name}_pw")(x)


def _nonlinearity(x, gate: str, name: str):
    act = GATES[gate]
    if act is None:
        return SimpleGate(name=name)(x)
    return keras.layers.Activation(act, name=name)(x)


def attention_gate(skip, coarse, *, name: str, activation: str = "relu", norm: str = "none",
                   upsample: str = "bilinear"):
    """Oktay et al.'s additive attention gate: coefficients in [0, 1] per skip pixel, computed from the skip
    and the coarser decoder features, upsampled 2x, multiplied into the skip."""
    channels = int(skip.shape[-1])
    theta = keras.layers.Conv2D(channels, 2, strides=2, name=f"{name}_theta")(skip)
    phi = keras.layers.Conv2D(channels, 1, name=f"{name}_phi")(coarse)
    f = keras.layers.Add(name=f"{name}_add")([theta, phi])
    f = choose(f, norm, lambda t, value: _attention_norm(t, value, name), name=f"{name}_norm_switch")
    f = choose(f, activation, lambda t, value: keras.layers.Activation(value, name=f"{name}_act")(t),
               name=f"{name}_act_switch")
    psi = keras.layers.Conv2D(1, 1, name=f"{name}_psi")(f)
    psi = choose(psi, upsample, lambda t, value: _attention_upsample(t, value, name), name=f"{name}_up_switch")
    alpha = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(psi)
    return keras.layers.Multiply(name=f"{name}_mul")([skip, alpha])


def _attention_norm(f, norm: str, name: str):
    suffix = {"batch": "bn", "layer": "ln", "scaled_layer": "sln"}.get(norm)
    return f if suffix is None else _norm(f, norm, f"{name}_{suffix}")


def _norm(x, norm: str, name: str):
    """One of ``NORMS`` as the layer named ``name``."""
    if norm == "batch":
        return keras.layers.BatchNormalization(name=name)(x)
    return ChannelLayerNorm(scale=LAYER_NORM_SCALE if norm == "scaled_layer" else 1.0, name=name)(x)


def _attention_upsample(psi, upsample: str, name: str):
    if upsample == "transpose":
        return keras.layers.Conv2DTranspose(1, 2, strides=2, name=f"{name}_up")(psi)
    return keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(psi)


def _pool(x, *, tlc_window: Optional[int], tlc_pool: str, global_pool: str, level: int, name: str):
    """SCA's pooling: global average (computed with ``global_pool``'s ops), or TLC's local window
    (``tlc_window`` pixels at full resolution, computed with ``tlc_pool``'s ops)."""
    if tlc_window is None:
        return choose(x, global_pool, lambda t, value: (AxisMeans(name=name) if value == "axis_means" else
                                                        keras.layers.GlobalAveragePooling2D(keepdims=True, name=name))(t),
                      name=f"{name}_switch")
    window = max(1, tlc_window // 2**level)
    return choose(x, tlc_pool, lambda t, value: LocalAveragePool(window, value, name=name)(t), name=f"{name}_switch")


def naf_block(inp, *, channels: int, name: str, level: int, dw_expand: int = 2, ffn_expand: int = 2,
              tlc_window: Optional[int] = None, tlc_pool: str = "average_pool", global_pool: str = "mean",
              separable: bool = False, gate: str = "simplegate", norm: str = "layer"):
    """One NAFBlock: LN -> 1x1 -> 3x3 depthwise -> SimpleGate -> SCA -> 1x1, scaled by ``beta``, added;
    then LN -> 1x1 -> SimpleGate -> 1x1 (the FFN), scaled by ``gamma``, added."""
    dw = channels * dw_expand
    halve = 1 if GATES[gate] is None else 2  # SimpleGate halves the channels itself
    x = choose(inp, norm, lambda t, value: _norm(t, value, f"{name}_norm1"), name=f"{name}_norm1_switch")
    x = _conv(x, dw // halve, 1, name=f"{name}_conv1", separable=separable)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name=f"{name}_conv2")(x)
    x = _nonlinearity(x, gate, f"{name}_sg1")
    attention = _pool(x, tlc_window=tlc_window, tlc_pool=tlc_pool, global_pool=global_pool, level=level,
                      name=f"{name}_sca_pool")
    attention = _conv(attention, dw // 2, 1, name=f"{name}_sca_conv", separable=separable)
    x = keras.layers.Multiply(name=f"{name}_sca_mul")([x, attention])
    x = _conv(x, channels, 1, name=f"{name}_conv3", separable=separable)
    y = keras.layers.Add(name=f"{name}_add1")([inp, ChannelScale(name=f"{name}_beta")(x)])
    x = choose(y, norm, lambda t, value: _norm(t, value, f"{name}_norm2"), name=f"{name}_norm2_switch")
    x = _conv(x, channels * ffn_expand // halve, 1, name=f"{name}_conv4", separable=separable)
    x = _nonlinearity(x, gate, f"{name}_sg2")
    x = _conv(x, channels, 1, name=f"{name}_conv5", separable=separable)
    return keras.layers.Add(name=f"{name}_add2")([y, ChannelScale(name=f"{name}_gamma")(x)])


def _each(value) -> list:
    """Every value a builder argument holds: the values of a supernet's ``Choices``, else the one."""
    return list(value) if isinstance(value, Choices) else [value]


def _check_arguments(width, enc_blocks, middle_blocks, dec_blocks, tlc_window, **choices) -> None:
    """Validate ``build_nafnet``'s arguments once, at the top (errors name the argument and the choices)."""
    for enc in _each(enc_blocks):
        for dec in _each(dec_blocks):
            for middle in _each(middle_blocks):
                enc, dec = list(enc), list(dec)
                if width < 1 or not enc or len(dec) != len(enc) or middle < 0 or min(enc + dec) < 0:
                    raise ConfigError(f"nafnet needs width >= 1, non-empty enc_blocks and dec_blocks of equal "
                                      f"length with counts >= 0; got width={width}, enc_blocks={enc}, "
                                      f"middle_blocks={middle}, dec_blocks={dec}")
    if tlc_window is not None and (not isinstance(tlc_window, int) or tlc_window < 1):
        raise ConfigError(f"tlc_window must be None, auto or >= 1 pixels; got {tlc_window!r}")
    lookup(GATES, "gate", choices["gate"])
    for key, valid in (("separable", SEPARABLE), ("tlc_pool", set(TLC_POOLS)), ("attention", {"none", "gate"}),
                       ("norm", NORMS), ("global_pool", GLOBAL_POOLS),
                       ("attention_activation", ATTENTION_ACTIVATIONS), ("attention_norm", ATTENTION_NORMS),
                       ("attention_upsample", ATTENTION_UPSAMPLES)):
        values = choices[key]
        for value in (values if isinstance(values, Choices) else [values]):  # a supernet holds several
            if value not in valid:
                raise ConfigError(f"{key} must be one of {sorted(valid)}; got {value!r}")


def build_nafnet(*, width: int = 16, enc_blocks: Sequence[int] = (1, 1, 1, 1), middle_blocks: int = 1,
                 dec_blocks: Optional[Sequence[int]] = None, tlc_window: Optional[int] = None,
                 tlc_pool: str = "average_pool", global_pool: str = "mean", norm: str = "layer",
                 gate: str = "simplegate", separable: str = "none", attention: str = "none",
                 attention_activation: str = "relu", attention_norm: str = "none",
                 attention_upsample: str = "bilinear", channels: int = 3, name: str = "nafnet") -> keras.Model:
    """Build NAFNet for inputs whose height and width are multiples of ``2**len(enc_blocks)``.

    Args:
        width: channels at full resolution (doubled at each 2x2 stride-2 downsampling conv).
        enc_blocks: NAFBlocks per encoder level; its length is the depth.
        middle_blocks: NAFBlocks at the lowest resolution.
        dec_blocks: NAFBlocks per decoder level, deepest first (default: one per level, as the thesis).
        tlc_window: None for SCA's global average pooling (training); a window in full-resolution pixels for
            TLC's local pooling (export at sizes larger than the training crop; 1.5x the crop, as NAFNetLocal;
            ``model.tlc_window=auto`` in a config derives it from ``train.crop``).
        tlc_pool: the ops of TLC's local mean: ``average_pool`` (AVERAGE_POOL_2D) or ``depthwise`` (fixed
            DEPTHWISE_CONV_2D box filters and a border MUL, which int8 XNNPACK runs; the same numbers).
        global_pool: the ops of SCA's global mean (``tlc_window`` None): ``mean`` (one MEAN) or ``axis_means``
            (two single-axis MEANs; the same value).
        norm: each block's normalization, ``layer`` (NAFNet), ``scaled_layer`` (reduced in an x/128 domain) or
            ``batch`` (folded into the next convolution at export); see ``NORMS``.
        gate: ``simplegate`` (NAFNet), ``relu`` or ``gelu`` in every block.
        separable: depthwise-separable convs in ``none``, ``high``, ``low`` or ``all`` levels (thesis Table 6.4).
        attention: ``none`` or ``gate`` -- soft attention gates in the skips (thesis Table 6.5), with
            ``attention_activation`` (relu, gelu), ``attention_norm`` (none or a ``NORMS`` value) and
            ``attention_upsample`` (bilinear, transpose) of the coefficients.
        channels: image channels in and out.
    """
    enc_blocks = enc_blocks if isinstance(enc_blocks, Choices) else list(enc_blocks)  # Choices: a depth choice
    depth = levels(enc_blocks)
    dec_blocks = [1] * depth if dec_blocks is None else dec_blocks if isinstance(dec_blocks, Choices) else list(
        dec_blocks)
    _check_arguments(width, enc_blocks, middle_blocks, dec_blocks, tlc_window, gate=gate, separable=separable,
                     tlc_pool=tlc_pool, global_pool=global_pool, norm=norm,
                     attention=attention, attention_activation=attention_activation, attention_norm=attention_norm,
                     attention_upsample=attention_upsample)
    high = {0, 1}
    sep = lambda level: separable == "all" or (separable == "high" and level in high) or (  # noqa: E731
        separable == "low" and level not in high)
    block = dict(tlc_window=tlc_window, tlc_pool=tlc_pool, global_pool=global_pool, gate=gate, norm=norm)
    everything = separable == "all"
    inputs = keras.Input((None, None, channels), name="input")
    x = _conv(inputs, width, 3, name="intro", separable=everything)
    skips, chan = [], width
    for level in range(depth):
        x = repeat(x, level_count(enc_blocks, level), lambda t, b: naf_block(
            t, channels=chan, name=f"enc{level}_blk{b}", level=level, separable=sep(level), **block), f"enc{level}")
        skips.append(x)
        x = _conv(x, 2 * chan, 2, strides=2, name=f"down{level}", separable=everything)
        chan *= 2
    x = repeat(x, level_count(middle_blocks), lambda t, b: naf_block(
        t, channels=chan, name=f"mid_blk{b}", level=depth, separable=sep(depth), **block), "mid")
    for i, level in enumerate(reversed(range(depth))):
        skip = skips[level]
        if attention == "gate":
            skip = attention_gate(skip, x, name=f"att{level}", activation=attention_activation, norm=attention_norm,
                                  upsample=attention_upsample)
        x = _conv(x, 2 * chan, 1, use_bias=False, name=f"up{level}_conv", separable=everything)
        x = DepthToSpace(2, name=f"up{level}_d2s")(x)
        chan //= 2
        x = keras.layers.Add(name=f"dec{level}_skip")([x, skip])
        x = repeat(x, level_count(dec_blocks, i), lambda t, b: naf_block(
            t, channels=chan, name=f"dec{level}_blk{b}", level=level, separable=sep(level), **block), f"dec{level}")
    x = _conv(x, channels, 3, name="ending", separable=everything)
    x = keras.layers.Add(name="out_residual")([x, inputs])
    return keras.Model(inputs, x, name=name)


def size_multiple(*, enc_blocks: Sequence[int] = (1, 1, 1, 1), **_) -> int:
    """Input height and width must be multiples of this (2**depth)."""
    return 2 ** levels(enc_blocks)
