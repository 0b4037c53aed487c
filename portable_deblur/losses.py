"""Restoration losses, keyed by ``train.loss``. Inputs are (sharp, restored) batches in [0, 1]."""
from portable_deblur.registry import lookup


def l1(sharp, restored):
    """Mean absolute error (the MediaTek paper's training loss)."""
    from portable_deblur.backend import tf

    return tf.reduce_mean(tf.abs(sharp - restored))


def charbonnier(sharp, restored, eps: float = 1e-3):
    """Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1 (thesis, section 5)."""
    from portable_deblur.backend import tf

    return tf.reduce_mean(tf.sqrt(tf.square(sharp - restored) + eps * eps))


LOSSES = {"l1": l1, "charbonnier": charbonnier}


def get_loss(name: str):
    """Return the registered loss ``name``."""
    return lookup(LOSSES, "train.loss", name)
