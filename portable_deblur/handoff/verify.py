"""``python -m portable_deblur.handoff verify=<bundle>``: what an app team runs to trust a bundle -- every file's
SHA-256 against ``manifest.json``, then each golden input through its ``.tflite`` with the standalone LiteRT
runtime (not TensorFlow) against the golden output."""
import hashlib
import json
from pathlib import Path

import numpy as np


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verify_bundle(folder: Path) -> None:
    """Raise ValueError unless every file matches its SHA-256 and the golden input reproduces the golden
    output through the bundled ``.tflite`` with the standalone LiteRT runtime."""
    from portable_deblur.deploy.runtime import load_interpreter  # LiteRT only: what an app team has

    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"{folder} is not a handoff bundle: no manifest.json")
    manifest = json.loads(manifest_path.read_text())
    for name, digest in manifest["sha256"].items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{path} listed in manifest.json is missing")
        if sha256(path) != digest:
            raise ValueError(f"SHA-256 mismatch for {path}: the file was changed after the handoff")
    pairs = manifest["golden"].get("pairs") or [["model.tflite", "golden_input.npy", "golden_output.npy"]]
    for model, x_name, y_name in pairs:
        interpreter = load_interpreter(folder / model, threads=1)
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        x = np.load(folder / x_name)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        expected = np.load(folder / y_name)
        err = float(np.max(np.abs(y.astype(np.float64) - expected.astype(np.float64))))
        if y.shape != expected.shape or err > manifest["golden"]["atol"]:
            raise ValueError(f"golden output mismatch for {folder / model}: max |diff| {err:.3g} "
                             f"> atol {manifest['golden']['atol']}")
