"""The single module that imports TensorFlow's Keras 2 (``tf_keras``).

TF-MOT only works with Keras 2, and mixing Keras 3 layers into a model it touches fails in confusing ways.
Every other module gets ``tf`` and ``keras`` from here, so there is exactly one place that decides which
Keras the project uses.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
