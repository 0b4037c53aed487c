"""Running ``.tflite`` files with the standalone LiteRT runtime (``ai_edge_litert``), not TensorFlow.

``tf.lite.Interpreter`` is deprecated; LiteRT gives bit-identical outputs with the same XNNPACK delegate.
This module imports no TensorFlow, so the measurement subprocess starts fast and stays small.
"""
from pathlib import Path
from typing import Callable, Union

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from portable_deblur.console import quiet_stderr


def load_interpreter(model: Union[bytes, str, Path], threads: int = 2) -> Interpreter:
    """An allocated interpreter for a flatbuffer given as bytes or a path (LiteRT's "Created TensorFlow Lite
    XNNPACK delegate" line, printed for every interpreter, is filtered like TensorFlow's start-up noise)."""
    with quiet_stderr():
        if isinstance(model, (bytes, bytearray)):
            interpreter = Interpreter(model_content=bytes(model), num_threads=threads)
        else:
            interpreter = Interpreter(model_path=str(model), num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


def predictor(model: Union[bytes, str, Path], threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``float32 [1, H, W, C] -> float32 output`` backed by one interpreter."""
    interpreter = load_interpreter(model, threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def predict(x: np.ndarray) -> np.ndarray:
        if tuple(x.shape) != tuple(inp["shape"]):
            raise ValueError(f"input shape must be {tuple(inp['shape'])}; got {tuple(x.shape)}")
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).astype(np.float32)

    return predict
