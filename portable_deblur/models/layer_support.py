"""What the project knows about every Keras layer its builders use, in one table: the TFLite ops it lowers
to (read by ``deploy.portability`` to predict delegate fallbacks before training), the QuantizeConfig 8-bit
QAT wraps it in (``optimize.qat``), and how it passes channels (``optimize.prune``).

Adding a layer to the builders means its layer code plus one entry here. ``tests/test_layer_support.py``
walks every layer of every registered block and search space against this table, and
``tests/test_portability.py`` converts every block and checks ``ops`` against the real flatbuffer.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Tuple, Union

from portable_deblur.models.fold import foldable

# QuantizeConfigs (optimize/qat.py): "default" = TF-MOT's own registry; "output" = quantize the output only;
# "pass_through" = no quantizer (ops TFLite requires to keep their input's scale).
QUANTIZE = ("default", "output", "pass_through")
# Channel rules (optimize/prune.py): "input" = the model's input (never pruned); "produce" = starts new
# channels (convs, dense); "depthwise" = channel c in is channel c out, weights per channel; "pass" = per
# channel, passes them through; "elementwise" = ties channel i of every input; "concat" = appends its
# inputs' channels; "fold" = folds k input blocks onto each output channel (DepthToSpace, SimpleGate).
CHANNELS = ("concat", "depthwise", "elementwise", "fold", "input", "pass", "produce")

Ops = Union[Tuple[str, ...], Callable[[object], Tuple[str, ...]]]


@dataclass(frozen=True)
class LayerSupport:
    """One Keras layer class: its float32 TFLite ops (or a function of the layer instance when they depend
    on its settings; an activation fused into it is added by the caller), QuantizeConfig and channel rule."""

    ops: Ops
    quantize: str = "default"
    channels: str = "pass"


def _local_average_pool_ops(layer) -> Tuple[str, ...]:
    # a global mean where the window covers the input; else TLC's two separable passes (NAFNet's test-time
    # trick): average pools, or a PAD, depthwise box-filter passes and the border MUL (LocalAveragePool.ops)
    return layer.ops(*layer.input.shape[1:3])


def _layer_norm_ops(layer) -> Tuple[str, ...]:
    # mean, deviation, variance, rsqrt, normalise, weight, bias; a scaled one reduces x * scale and rescales
    # the mean and the variance (three more MULs; its square of a scaled deviation is a SQUARE)
    if layer.scale != 1.0:
        return ("MUL", "MEAN", "MUL", "SUB", "MUL", "SQUARE", "MEAN", "MUL", "ADD", "RSQRT", "MUL", "MUL", "ADD")
    return ("MEAN", "SUB", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "ADD")


def _channel_scale_ops(layer) -> Tuple[str, ...]:
    # a scale right after a convolution that feeds nothing else folds into its kernel
    producer = layer._inbound_nodes[0].inbound_layers
    into_conv = type(producer).__name__ in ("Conv2D", "DepthwiseConv2D") and len(producer._outbound_nodes) == 1
    return () if into_conv else ("MUL",)


def _batch_norm_ops(layer) -> Tuple[str, ...]:
    # its inference affine map, gone where the export folds it into the neighbouring convolutions (fold.py)
    return () if foldable(layer) else ("MUL", "ADD")


def _upsampling_ops(layer) -> Tuple[str, ...]:
    return ("RESIZE_BILINEAR",) if layer.interpolation == "bilinear" else ("RESIZE_NEAREST_NEIGHBOR",)


# Keras activations -> the ops they add (a ReLU after a conv/add/mul is fused into it: none).
ACTIVATION_OPS = {None: (), "linear": (), "relu": (), "relu6": (), "gelu": ("GELU",), "sigmoid": ("LOGISTIC",),
                  "tanh": ("TANH",), "swish": ("LOGISTIC", "MUL")}


def _activation_ops(layer) -> Tuple[str, ...]:
    name = getattr(layer.activation, "__name__", layer.activation)
    if name == "relu":
        return ("RELU",)
    return ACTIVATION_OPS.get(name, (f"UNKNOWN_{name}",))


LAYERS: Dict[str, LayerSupport] = {
    "InputLayer": LayerSupport((), channels="input"),
    "Conv2D": LayerSupport(("CONV_2D",), channels="produce"),
    "Conv2DTranspose": LayerSupport(("TRANSPOSE_CONV",), channels="produce"),
    "DepthwiseConv2D": LayerSupport(("DEPTHWISE_CONV_2D",), channels="depthwise"),
    "Dense": LayerSupport(("FULLY_CONNECTED",), channels="produce"),
    "DepthToSpace": LayerSupport(("DEPTH_TO_SPACE",), "pass_through", "fold"),
    "SimpleGate": LayerSupport(("SPLIT", "MUL"), "output", "fold"),
    "Concatenate": LayerSupport(("CONCATENATION",), channels="concat"),
    "Add": LayerSupport(("ADD",), channels="elementwise"),
    "Subtract": LayerSupport(("SUB",), channels="elementwise"),
    "Multiply": LayerSupport(("MUL",), "output", "elementwise"),
    "Maximum": LayerSupport(("MAXIMUM",), channels="elementwise"),
    "Minimum": LayerSupport(("MINIMUM",), channels="elementwise"),
    "MaxPooling2D": LayerSupport(("MAX_POOL_2D",)),
    "AveragePooling2D": LayerSupport(("AVERAGE_POOL_2D",)),
    "GlobalAveragePooling2D": LayerSupport(("MEAN",), "output"),
    "LocalAveragePool": LayerSupport(_local_average_pool_ops, "output"),
    "UpSampling2D": LayerSupport(_upsampling_ops),
    "ReLU": LayerSupport(("RELU",)),
    "PReLU": LayerSupport(("PRELU",), "output"),
    "PortablePReLU": LayerSupport(("MUL", "MUL", "ADD"), "output"),  # the ReLU fuses into the second MUL
    "LeakyReLU": LayerSupport(("LEAKY_RELU",), "output"),
    "ELU": LayerSupport(("ELU",)),
    "Activation": LayerSupport(_activation_ops, "output"),
    # NAFNet's layers (layers.py), as the converter lowers them once trained (non-trivial weights):
    "ChannelLayerNorm": LayerSupport(_layer_norm_ops, "output"),
    "ChannelScale": LayerSupport(_channel_scale_ops, "output"),
    "BatchNormalization": LayerSupport(_batch_norm_ops, "output"),
    "AxisMeans": LayerSupport(("MEAN", "MEAN"), "output"),
    "Identity": LayerSupport((), "pass_through"),  # where the export folded a batch norm away
    "Dropout": LayerSupport(()),
}


def support(layer) -> LayerSupport:
    """The table entry of ``layer`` (an instance); None-safe callers use ``LAYERS.get``."""
    return LAYERS[type(layer).__name__]


def layer_ops(entry: LayerSupport, layer) -> Tuple[str, ...]:
    """``entry.ops`` for this ``layer`` instance."""
    return entry.ops(layer) if callable(entry.ops) else entry.ops
