"""``python -m portable_deblur.handoff run=<dir> [candidate=<id> | pareto=true]``: bundles for app teams.

One folder per chosen artifact (a row of the run: a float model or one of its quantized variants):

    model.tflite        the artifact, with TFLite metadata embedded (name, description, version, author,
                        input/output image layout, normalisation and range)
    golden_input.npy    one validation input, float32 [1, H, W, C] in [0, 1]
    golden_output.npy   what LiteRT returned for it from this very file
    manifest.json       shapes, dtypes, ranges, quantization parameters, op inventory, delegate fallback table,
                        measured latency, PSNR/SSIM, MACs, params, the source candidate and training config,
                        library versions, and the SHA-256 of every other file
    README.md           how to feed it, pad and crop, dequantize

``python -m portable_deblur.handoff verify=<bundle dir>`` checks a bundle with the standalone LiteRT runtime
(not TensorFlow): every SHA-256, then the golden input through the file against the golden output.
Every file is written atomically (temp file + rename), so an interrupted handoff never leaves a truncated one.
"""
import dataclasses
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from portable_deblur.environment import library_versions
from portable_deblur.files import atomic_write
from portable_deblur.registry import ConfigError
from portable_deblur.search import attrs
from portable_deblur.records import searched

KEYS = ("run", "candidate", "pareto", "out", "version", "author", "verify")
LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy", "portable_deblur")
GOLDEN_ATOL = 1e-5  # float outputs: same file, same runtime; int8 outputs must match exactly


def parse_args(argv: Sequence[str]) -> Dict[str, str]:
    args = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"handoff arguments are key=value with key one of {list(KEYS)}; got {arg!r}")
        args[key] = value
    return args


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def choose(rows, front, candidate: Optional[str], pareto: bool) -> List:
    """The rows to bundle: one by id, or the Pareto front."""
    ok = {r.id: r for r in rows if r.status == "ok"}
    if candidate:
        if candidate not in ok:
            raise ConfigError(f"candidate must be the id of a finished artifact of this run, one of {sorted(ok)}; "
                              f"got {candidate!r}")
        return [ok[candidate]]
    if pareto:
        return list(front)
    raise ConfigError("say which artifacts to hand off: candidate=<id> (one of the run's rows) or pareto=true")


def golden_input(study, shape) -> np.ndarray:
    """A real validation image (edge-padded or cropped to ``shape``) when the run's data loads here,
    otherwise a smooth seeded test pattern; float32 [1, H, W, C] in [0, 1]."""
    from portable_deblur.data.sources import load_dataset

    try:
        image = load_dataset(study.cfg.data).val[0].blurry.astype(np.float32) / 255.0
    except ConfigError:  # e.g. a GoPro run handed off on a machine without the dataset
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
        image = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) * 0.5 + 0.5 for c in range(3)], -1)
    image = image[:shape[0], :shape[1]]
    image = np.pad(image, ((0, shape[0] - image.shape[0]), (0, shape[1] - image.shape[1]), (0, 0)), mode="edge")
    return image[None].astype(np.float32)


def _tensor_entry(detail: dict) -> dict:
    q = detail["quantization_parameters"]
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "quantization": {"scales": [float(s) for s in q["scales"]], "zero_points": [int(z) for z in q["zero_points"]],
                             "quantized_dimension": int(q["quantized_dimension"])}}


def build_bundle(study, row, out: Path, version: str, author: str) -> Path:
    """Write the bundle of one row under ``out/<row id>/``; returns its folder."""
    from portable_deblur.models.candidate import candidate_at
    from portable_deblur.deploy.metadata import ModelInfo, TensorInfo, embed, read
    from portable_deblur.models.build import size_multiple
    from portable_deblur.deploy.runtime import load_interpreter

    source = study.layout / row.artifacts["primary"]
    if not source.is_file():
        raise ConfigError(f"artifact {str(source)!r} of {row.id!r} is not on this machine (worker {row.worker}); "
                          f"run the handoff where that worker wrote it")
    candidate = candidate_at(row.arch, study.cfg.model, searched(row.values))
    interpreter = load_interpreter(source)
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    h, w, c = (int(d) for d in inp["shape"][1:])
    multiple = size_multiple(candidate)

    quantized = row.optimization
    info = ModelInfo(
        name=row.id, version=version, author=author, license="",
        description=(f"Image deblurring ({row.arch}, {quantized}). Input: one blurry RGB frame, float32 "
                     f"[1, {h}, {w}, {c}] in [0, 1] (pixel / 255); output: the sharp frame, same shape, same range "
                     f"(clip to [0, 1], multiply by 255). Other sizes: pad to a multiple of {multiple} and crop back."),
        inputs=[TensorInfo("blurry", "blurry frame, RGB, value = pixel / 255", h, w, c)],
        outputs=[TensorInfo("sharp", "restored frame, RGB, pixel = clip(value, 0, 1) * 255", h, w, c)])
    tflite = embed(source.read_bytes(), info)
    folder = Path(out) / row.id
    model_path = atomic_write(folder / "model.tflite", tflite)

    x = golden_input(study, (h, w))
    interpreter = load_interpreter(model_path, threads=1)  # the bundled file itself; 1 thread, as verify_bundle
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(outp["index"])
    atomic_write(folder / "golden_input.npy", _npy(x))
    atomic_write(folder / "golden_output.npy", _npy(y))
    atomic_write(folder / "README.md", app_readme(row, h, w, c, multiple, quantized))

    files = ("model.tflite", "golden_input.npy", "golden_output.npy", "README.md")
    manifest = {
        "id": row.id, "version": version, "author": author, "metadata": read(tflite),
        "input": {**_tensor_entry(inp), "range": [0.0, 1.0], "normalisation": "value = pixel / 255"},
        "output": {**_tensor_entry(outp), "range": [0.0, 1.0], "normalisation": "pixel = clip(value, 0, 1) * 255"},
        "pad_to_multiple_of": multiple, "quantization": quantized,
        "quality": _quality(row), "latency": row.latency, "macs": row.macs, "params": row.params,
        "op_inventory": row.inventory, "delegate_fallback": row.portability, "xnnpack": row.xnnpack,
        "candidate": _architecture(row, candidate),
        "training": dataclasses.asdict(study.cfg.train), "data": dataclasses.asdict(study.cfg.data),
        "source": {"run": str(study.layout.root.resolve()), "artifact": row.artifacts["primary"], "trial": row.trial,
                   "worker": row.worker},
        "libraries": library_versions(LIBRARIES),
        # The machine the numbers above were measured on (same seed, same numbers holds there).
        "environment": study.study.user_attrs.get(attrs.ENVIRONMENT + row.worker),
        "golden": {"atol": GOLDEN_ATOL if np.dtype(outp["dtype"]).kind == "f" else 0, "threads": 1},
        "sha256": {name: sha256(folder / name) for name in files},
    }
    atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2, default=str))
    return folder


def _quality(row) -> dict:
    return {"psnr": row.psnr_tflite, "ssim": row.ssim_tflite, "psnr_blurry_input": row.psnr_blurry,
            "ssim_blurry_input": row.ssim_blurry, "psnr_keras": row.psnr_keras,
            "fidelity_vs_keras_psnr": row.fidelity_psnr, "fidelity_vs_keras_l2": row.fidelity_l2}


def _architecture(row, candidate) -> dict:
    """What the bundled network is: the builder arguments it was built from and the widths it really has
    (``channels``: conv layer -> output channels, from the model the file was converted from -- for a pruned
    row these are the pruned widths, not ``arguments``' ``width``)."""
    return {"arch": row.arch, "arguments": dict(candidate.arguments), "searched": row.values,
            "channels": row.channels or None,
            "pruned": "prune" in row.values or "sparsity" in row.values}


def app_readme(row, h: int, w: int, c: int, multiple: int, quantized: str) -> str:
    lat = next(iter(row.latency.items()), ("-", {}))
    return f"""# {row.id}

Image deblurring network for on-device use ({row.arch}, {quantized}). PSNR on validation {row.psnr_tflite:.2f} dB
(the blurry input scores {row.psnr_blurry:.2f} dB); median latency {lat[1].get('median_ms', float('nan')):.1f} ms at
{lat[0]} (height x width, threads) with LiteRT on the machine that ran the search -- time it on your phone.

## Feeding it
- Input `blurry`: float32 `[1, {h}, {w}, {c}]`, RGB, each value = pixel / 255 (range [0, 1]), NHWC.
- Output `sharp`: float32, same shape; pixel = clip(value, 0, 1) * 255.
- Other frame sizes: pad height and width up to a multiple of {multiple} (edge-replicate the last row/column),
  run, then crop the output back. The file is built for exactly {h}x{w}; ask for an export at your size.
- Quantization: input and output stay float32 (the converter adds QUANTIZE/DEQUANTIZE inside the model
  for int8 variants); if you convert to integer I/O yourself, use the scale and zero point in
  `manifest.json` (`real = scale * (q - zero_point)`).

## Checking your integration
`golden_input.npy` through `model.tflite` must give `golden_output.npy` (within `manifest.json`'s
`golden.atol`). `python -m portable_deblur.handoff verify=<this folder>` does exactly that with LiteRT and
checks every file's SHA-256 against `manifest.json`.

## Where it falls back
`manifest.json` lists every op (`op_inventory`) and, per accelerator delegate, the ops it would reject and run
on the CPU (`delegate_fallback`) -- a rejected op wrecks latency on that delegate.
"""


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
    interpreter = load_interpreter(folder / "model.tflite", threads=1)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = np.load(folder / "golden_input.npy")
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    expected = np.load(folder / "golden_output.npy")
    err = float(np.max(np.abs(y.astype(np.float64) - expected.astype(np.float64))))
    if y.shape != expected.shape or err > manifest["golden"]["atol"]:
        raise ValueError(f"golden output mismatch for {folder / 'model.tflite'}: max |diff| {err:.3g} "
                         f"> atol {manifest['golden']['atol']}")


def handoff(run: str, candidate: Optional[str] = None, pareto: bool = False, out: Optional[str] = None,
            version: str = "1.0.0", author: str = "portable_deblur") -> List[Path]:
    """Write the bundles of the chosen artifacts of run directory ``run``; returns their folders."""
    from portable_deblur.rank import Objectives, front_rows
    from portable_deblur.search.study import SearchStudy

    study = SearchStudy.load(run)
    rows = study.rows()
    _, front = front_rows(rows, Objectives.of(study.cfg))
    chosen = choose(rows, front, candidate, pareto)
    target = Path(out) if out else study.layout.handoff
    folders = [build_bundle(study, row, target, version, author) for row in chosen]
    for folder in folders:
        verify_bundle(folder)
    return folders


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        if "verify" in args:
            verify_bundle(Path(args["verify"]))
            print(f"ok: {args['verify']} (SHA-256 of every file, golden output reproduced with LiteRT)")
            return 0
        if "run" not in args:
            raise ConfigError("run=<run directory> is required (e.g. run=experiments/runs/upsampling)")
        pareto = args.get("pareto", "false").lower()
        if pareto not in ("true", "false"):
            raise ConfigError(f"pareto must be true or false; got {args['pareto']!r}")
        folders = handoff(args["run"], args.get("candidate"), pareto == "true", args.get("out"),
                          args.get("version", "1.0.0"), args.get("author", "portable_deblur"))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for folder in folders:
        print(f"bundle: {folder} (verified with LiteRT)")
    return 0

