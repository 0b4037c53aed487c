"""Building blocks shared by the architectures: activation and upsampling registries, conv blocks.

Every layer gets a deterministic, underscore-separated name derived from the caller's prefix
(``enc1_blk0_conv``): pruning, QAT annotation, parity debugging and per-layer reports rely on it.
"""
from dataclasses import dataclass
from typing import Callable, Optional

from portable_deblur.backend import keras
from portable_deblur.models.choice import Choices, choose
from portable_deblur.models.layers import DepthToSpace, PortablePReLU
from portable_deblur.registry import lookup


@dataclass(frozen=True)
class Activation:
    """How an activation is built: fused into the conv (``fused``) or as its own layer (``layer``).

    Fusing matters for QAT: with a separate activation layer TF-MOT gives the preceding conv a no-op
    quantize config, so its weights are never fake-quantized (measured on TF-MOT 0.8.1).
    """

    fused: Optional[str] = None
    layer: Optional[Callable[[str], keras.layers.Layer]] = None


ACTIVATIONS = {
    "relu": Activation(fused="relu"),
    "relu6": Activation(fused="relu6"),
    "gelu": Activation(fused="gelu"),
    # Per-channel slope shared over space, so the model accepts any input size (MediaTek paper, Table 3).
    "prelu": Activation(layer=lambda name: keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)),
    "leaky_relu": Activation(layer=lambda name: keras.layers.LeakyReLU(alpha=0.1, name=name)),
    # PReLU as MUL, MUL(+ReLU), ADD: int8 stays on XNNPACK, where int8 PRELU has no kernel (layers.py).
    "prelu_portable": Activation(layer=lambda name: PortablePReLU(name=name)),
}


def get_activation(name: str) -> Activation:
    """Return the registered activation ``name``."""
    return lookup(ACTIVATIONS, "activation", name)


def apply_conv_act(x, *, filters: int, activation, name: str, kernel_size: int = 3):
    """``kernel_size`` conv followed by ``activation``; layers ``{name}_conv`` (+ ``{name}_act``).

    A supernet (``activation`` is ``Choices``) shares the conv between the activations: a linear conv, then
    a ``Switch`` over the activations (a fused ReLU computes the same as a separate one)."""
    if isinstance(activation, Choices):
        x = keras.layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
        return choose(x, activation, lambda t, value: _activate(t, value, name), name=f"{name}_act_switch")
    act = get_activation(activation)
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", activation=act.fused, name=f"{name}_conv")(x)
    return x if act.layer is None else act.layer(f"{name}_act")(x)


def _activate(x, activation: str, name: str):
    act = get_activation(activation)
    if act.layer is None:
        return keras.layers.Activation(act.fused, name=f"{name}_act")(x)
    return act.layer(f"{name}_act")(x)


def upsample(x, *, upsampler, filters: int, name: str):
    """A 2x upsampling with ``upsampler`` (a ``UPSAMPLERS`` key, or ``Choices`` of them in a supernet)."""
    return choose(x, upsampler, lambda t, value: get_upsampler(value)(t, filters=filters, name=name),
                  name=f"{name}_switch")


def _transpose(x, *, filters: int, name: str):
    return keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_tconv")(x)


def _depth_to_space(x, *, filters: int, name: str):
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_conv")(x)
    return DepthToSpace(2, name=f"{name}_d2s")(x)


def _bilinear(x, *, filters: int, name: str):
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return keras.layers.Conv2D(filters, 1, name=f"{name}_conv")(x)


# All three cost the same MACs (4*H*W*Cin*Cout per 2x upsampling), so Table 3's comparison is about the op.
UPSAMPLERS = {"transpose": _transpose, "depth_to_space": _depth_to_space, "bilinear": _bilinear}


def get_upsampler(name: str) -> Callable:
    """Return the registered 2x upsampler ``name`` (a function ``(x, *, filters, name) -> x``)."""
    return lookup(UPSAMPLERS, "upsampler", name)
