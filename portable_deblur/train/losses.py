"""Restoration losses, keyed by ``train.loss``. Inputs are (sharp, restored) batches in [0, 1]."""
import numpy as np

from portable_deblur.registry import lookup


def l1(sharp, restored):
    """Mean absolute error (the MediaTek paper's training loss)."""
    from portable_deblur.backend import tf

    return tf.reduce_mean(tf.abs(sharp - restored))


def charbonnier(sharp, restored, eps: float = 1e-3):
    """Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1 (thesis, section 5)."""
    from portable_deblur.backend import tf

    return tf.reduce_mean(tf.sqrt(tf.square(sharp - restored) + eps * eps))


def psnr(sharp, restored, eps: float = 1e-8):
    """NAFNet's PSNR loss: 10 * log10(per-image MSE + eps), averaged over the batch -- minus the PSNR of
    images in [0, 1], so minimising it maximises PSNR."""
    from portable_deblur.backend import tf

    mse = tf.reduce_mean(tf.square(sharp - restored), axis=[1, 2, 3])
    return tf.reduce_mean(10.0 * tf.math.log(mse + eps) / tf.math.log(10.0))


def fft_l1(sharp, restored):
    """Frequency term (thesis, Sec. 5): mean absolute difference of the real and imaginary parts of the
    2-D real FFT of each channel. Zero for identical images."""
    from portable_deblur.backend import tf

    def spectrum(x):
        f = tf.signal.rfft2d(tf.transpose(tf.cast(x, tf.float32), [0, 3, 1, 2]))
        return tf.stack([tf.math.real(f), tf.math.imag(f)], axis=-1)

    return tf.reduce_mean(tf.abs(spectrum(sharp) - spectrum(restored)))


LOSSES = {"l1": l1, "charbonnier": charbonnier, "psnr": psnr}
LOGARITHMIC = ("psnr",)  # losses in dB: a difference, not a ratio, says how much worse
DIVERGED_FACTOR = 10.0  # an error this many times the first steps' (10 dB for a loss in dB)


def diverged(name: str, first: float, recent: float) -> bool:
    """Whether a mean training loss ``recent`` of ``train.loss`` ``name`` is far worse than ``first`` (the mean
    of the run's first steps, a residual network's identity): its error ``DIVERGED_FACTOR`` times the first's.
    A finite blow-up (an L1 loss of 0.06 grown to 2e8) trains on as garbage that no NaN check catches."""
    if name in LOGARITHMIC:
        return recent > first + 10.0 * float(np.log10(DIVERGED_FACTOR))
    return first > 0 and recent > DIVERGED_FACTOR * first


def psnr_to_teacher(sharp, teacher, restored, eps: float = 1e-8):
    """The PSNR loss of ``restored`` against ``teacher`` with the teacher's own per-image MSE to ``sharp`` as
    its floor: 10 * log10(MSE(restored, teacher) + MSE(teacher, sharp)). The plain PSNR loss against a teacher
    grows its gradient as 1 / MSE when a student nearly equals it (every path of a fresh supernet does), so
    those terms would swamp the teacher's own; with the floor a student's term is never steeper than the
    teacher's against the sharp frame, and it still reads as a PSNR (the student's when the two errors are
    uncorrelated)."""
    from portable_deblur.backend import tf

    def mse(a, b):
        return tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])

    floor = tf.stop_gradient(mse(teacher, sharp))
    return tf.reduce_mean(10.0 * tf.math.log(mse(teacher, restored) + floor + eps) / tf.math.log(10.0))


def get_loss(name: str, fft_weight: float = 0.0):
    """The registered loss ``name``, plus ``fft_weight`` times the FFT term when it is > 0 (thesis: 0.01)."""
    base = lookup(LOSSES, "train.loss", name)
    if fft_weight <= 0:
        return base
    return lambda sharp, restored: base(sharp, restored) + fft_weight * fft_l1(sharp, restored)


def get_distillation_loss(name: str, fft_weight: float = 0.0):
    """The loss (sharp, teacher, restored) a path is taught with by a wider path's output in place (the
    sandwich rule): ``train.loss`` against the teacher's output -- for ``psnr``, ``psnr_to_teacher``, its
    bounded form -- plus ``fft_weight`` times the FFT term against the teacher."""
    plain = lookup(LOSSES, "train.loss", name)
    if name == "psnr":
        base = psnr_to_teacher
    else:
        def base(sharp, teacher, restored):
            return plain(teacher, restored)
    if fft_weight <= 0:
        return base
    return lambda sharp, teacher, restored: base(sharp, teacher, restored) + fft_weight * fft_l1(teacher, restored)
