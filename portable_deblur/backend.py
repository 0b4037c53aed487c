"""The single module that imports TensorFlow's Keras 2 (``tf_keras``).

TF-MOT only works with Keras 2, and mixing Keras 3 layers into a model it touches fails in confusing ways.
Every other module gets ``tf`` and ``keras`` from here, so there is exactly one place that decides which
Keras the project uses.
"""
import os

from portable_deblur import console

os.environ["TF_USE_LEGACY_KERAS"] = "1"

with console.quiet_stderr():  # TensorFlow's C++ start-up lines ("failed call to cuInit", ...)
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # devices initialise (and complain about CUDA) here, not mid-run
console.quiet_python_loggers()

__all__ = ["tf", "keras"]
