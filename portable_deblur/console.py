"""What a run prints: TensorFlow's start-up noise filtered out, real warnings and errors kept.

TensorFlow's C++ side writes its start-up lines ("failed call to cuInit" on every machine without a GPU,
oneDNN notices, absl's "All log messages before absl::InitializeLog()") straight to file descriptor 2, some
at ERROR level, so ``TF_CPP_MIN_LOG_LEVEL`` alone cannot hide them without hiding real errors too. While
TensorFlow is imported, the descriptor is caught and replayed without the known start-up lines. ``-v`` /
``log.level=debug`` shows everything (and TensorFlow's INFO logs).
"""
import os
import re
import sys
import tempfile
from contextlib import contextmanager

LEVELS = ("debug", "info", "warning", "error")
_LEVEL_VAR = "PORTABLE_DEBLUR_LOG_LEVEL"

# Lines TensorFlow / LiteRT print on every start (or conversion) on a machine without a GPU; none is actionable.
STARTUP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"cudart_stub\.cc", r"cuda_platform\.cc", r"failed call to cuInit", r"cuda_executor\.cc",
    r"oneDNN custom operations are on", r"This TensorFlow binary is optimized to use available CPU",
    r"rebuild TensorFlow with the appropriate compiler flags", r"TF-TRT Warning",
    r"Unable to register cu(DNN|FFT|BLAS) factory", r"computation placer already registered",
    r"Created TensorFlow Lite XNNPACK delegate for CPU",
    r"fully_quantize: \d+, inference_type: \d+",  # the TFLite converter's quantizer, on every int8 export
]))


def set_level(level: str) -> None:
    """Choose how much TensorFlow may print; call before TensorFlow is imported (the CLI does)."""
    os.environ[_LEVEL_VAR] = level
    if level == "debug":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def level() -> str:
    return os.environ.get(_LEVEL_VAR, "warning")


@contextmanager
def quiet_stderr():
    """Catch what C++ code writes to descriptor 2 inside the block; replay all but ``STARTUP_NOISE``."""
    if level() == "debug":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines()
                    if line.strip() and not STARTUP_NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def quiet_python_loggers() -> None:
    """TensorFlow's Python loggers: warnings and errors by default (INFO and below with debug/info)."""
    import logging

    threshold = {"debug": logging.DEBUG, "info": logging.INFO}.get(level(), logging.ERROR)
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(threshold)
