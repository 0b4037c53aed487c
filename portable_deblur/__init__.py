"""portable_deblur: find image-deblurring networks that are fast *and* portable on phones.

Pipeline (one sub-package per stage): config -> data -> models (candidate -> model) -> train -> optimize
-> deploy (export -> measure -> portability) -> rank -> report / handoff; ``search`` runs a space through
them. Importing the package is cheap: TensorFlow is only imported by :mod:`portable_deblur.backend`, which
the model/train/export stages pull in on first use.
"""
import os

# TF-MOT needs Keras 2 (tf_keras). The switch must be set before TensorFlow is first imported anywhere in
# the process, so it is set here, at the package root, and again in backend.py for direct imports.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
