"""Handoff stage: self-verifying bundles of the chosen ``.tflite`` files for app teams (``bundle``)."""
