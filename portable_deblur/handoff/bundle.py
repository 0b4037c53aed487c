"""``python -m portable_deblur.handoff run=<dir> [candidate=<id> | pareto=true] [resolution=720x1280,...]``:
bundles for app teams.

One folder per chosen artifact (a row of the run: a float model or one of its quantized variants):

    model.tflite        the artifact at the frame size the run ranked by (the largest it measured), with TFLite
                        metadata embedded (name, description, version, author, input/output image layout,
                        normalisation and range)
    golden_input.npy    one validation input, float32 [1, H, W, C] in [0, 1]
    golden_output.npy   what LiteRT returned for it from this very file
    manifest.json       shapes, dtypes, ranges, quantization parameters, op inventory, delegate fallback table,
                        measured latency, PSNR/SSIM, MACs, params, the source candidate and training config,
                        library versions, and the SHA-256 of every other file
    README.md           how to feed it, pad and crop, dequantize
    model_<H>x<W>.tflite + golden_*_<H>x<W>.npy   the network at every other size the run measured, at the
                        size its validation frames were scored at, and at each ``resolution=`` asked for
                        (``manifest.json`` ``resolutions``: input shape, padding, latency)

``python -m portable_deblur.handoff verify=<bundle dir>`` checks a bundle with the standalone LiteRT runtime
(not TensorFlow): every SHA-256, then the golden input through the file against the golden output.
Every file is written atomically (temp file + rename), so an interrupted handoff never leaves a truncated one.
"""
import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from portable_deblur.environment import library_versions
from portable_deblur.files import atomic_write
from portable_deblur.handoff.readme import app_readme
from portable_deblur.handoff.verify import sha256, verify_bundle
from portable_deblur.registry import ConfigError
from portable_deblur.search import attrs
from portable_deblur.records import searched

KEYS = ("run", "candidate", "pareto", "out", "version", "author", "verify", "resolution")
LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy", "portable_deblur")
GOLDEN_ATOL = 1e-5  # float outputs: same file, same runtime; int8 outputs must match exactly


def parse_args(argv: Sequence[str]) -> Dict[str, str]:
    from portable_deblur.config.load import last_wins

    args = {}
    for arg in last_wins(list(argv), "handoff "):
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"handoff arguments are key=value with key one of {list(KEYS)}; got {arg!r}")
        args[key] = value
    if args.get("out") and Path(args["out"]).expanduser().is_file():
        raise ConfigError(f"handoff out= must be a folder (bundles are written under it); {args['out']!r} is a file")
    return args


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
        if ok[candidate].screened:
            raise ConfigError(f"candidate {candidate!r} was only screened at a lower rung (its Keras quality and one "
                              f"timing; its .tflite's own quality was never judged): hand off one judged in full, "
                              f"e.g. the front's {sorted(r.id for r in front)}, or rerun with search.screen=false")
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


def write_model(study, row, folder: Path, stem: str, tflite: bytes, multiple: int, version: str, author: str) -> dict:
    """``<stem>.tflite`` with TFLite metadata, and its golden input / output pair (1 thread, as
    ``verify_bundle``); returns its manifest entry."""
    from portable_deblur.deploy.metadata import ModelInfo, TensorInfo, embed, read
    from portable_deblur.deploy.runtime import load_interpreter

    inp, outp = _io_details(load_interpreter(tflite))
    h, w, c = (int(d) for d in inp["shape"][1:])
    info = ModelInfo(
        name=row.id, version=version, author=author, license="",
        description=(f"Image deblurring ({row.arch}, {row.optimization}). Input: one blurry RGB frame, float32 "
                     f"[1, {h}, {w}, {c}] in [0, 1] (pixel / 255); output: the sharp frame, same shape, same range "
                     f"(clip to [0, 1], multiply by 255). Runs at exactly this shape; the bundle's README says how to get "
                     f"another size (a multiple of {multiple})."),
        inputs=[TensorInfo("blurry", "blurry frame, RGB, value = pixel / 255", h, w, c)],
        outputs=[TensorInfo("sharp", "restored frame, RGB, pixel = clip(value, 0, 1) * 255", h, w, c)])
    tflite = embed(tflite, info)
    model_path = atomic_write(folder / f"{stem}.tflite", tflite)
    x = golden_input(study, (h, w))
    interpreter = load_interpreter(model_path, threads=1)
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    suffix = stem[len("model"):]
    atomic_write(folder / f"golden_input{suffix}.npy", _npy(x))
    atomic_write(folder / f"golden_output{suffix}.npy", _npy(interpreter.get_tensor(outp["index"])))
    return {"file": model_path.name, "golden_input": f"golden_input{suffix}.npy",
            "golden_output": f"golden_output{suffix}.npy", "metadata": read(tflite),
            "input": {**_tensor_entry(inp), "range": [0.0, 1.0], "normalisation": "value = pixel / 255"},
            "output": {**_tensor_entry(outp), "range": [0.0, 1.0], "normalisation": "pixel = clip(value, 0, 1) * 255"}}


def _io_details(interpreter):
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def _at_size(study, row, folder: Path, shape, multiple: int, version: str, author: str, stem: str) -> dict:
    """The bundle's file for one frame size, verified by its golden pair, with its latency: the run's own
    figure where the run measured that size, else timed on this host."""
    from portable_deblur.deploy.measure import measure
    from portable_deblur.handoff.sizes import export_at
    from portable_deblur.latency import latency_key

    entry = write_model(study, row, folder, stem, export_at(study, row, shape, multiple), multiple, version, author)
    threads = study.cfg.measure.threads[0]
    key = latency_key(shape, threads)
    if key in row.latency:
        ms = row.latency_interval(key)
        entry["latency"] = {"median_ms": ms.estimate, "low_ms": ms.low, "high_ms": ms.high,
                            "measured": "in the search run, paired with its reference network"}
    else:
        entry["latency"] = {**dataclasses.asdict(measure(folder / entry["file"], study.cfg.measure, threads)),
                            "measured": "at the handoff, on this host"}
    entry["latency_key"] = key
    entry["frames"] = f"{shape[0]}x{shape[1]}"
    padded_to = entry["input"]["shape"][1:3]
    if tuple(padded_to) != tuple(shape):
        entry["padded_to"] = f"{padded_to[0]}x{padded_to[1]}"
    return entry


def bundle_sizes(study, row, resolutions=()) -> List[Tuple[int, int]]:
    """The frame sizes a bundle holds, the one the run ranked by first: every size the run measured, the size
    its validation frames were scored at, then the sizes asked for (``resolution=``)."""
    from portable_deblur.latency import LatencyKey
    from portable_deblur.rank import Objectives

    ranked = LatencyKey.parse(Objectives.of(study.cfg).latency).shape
    scored = [study.layout.artifact_parts(row.artifacts["eval"])[1]] if row.artifacts.get("eval") else []
    return list(dict.fromkeys([ranked, *study.cfg.measure.shapes, *scored, *map(tuple, resolutions)]))


def build_bundle(study, row, out: Path, version: str, author: str, resolutions=()) -> Path:
    """Write the bundle of one row under ``out/<row id>/``: ``model.tflite`` at the size the run ranked by and
    ``model_<H>x<W>.tflite`` at every other size of ``bundle_sizes``; returns its folder."""
    from portable_deblur.models.build import size_multiple
    from portable_deblur.models.candidate import candidate_at

    source = study.layout / row.artifacts["primary"]
    if not source.is_file():
        raise ConfigError(f"artifact {str(source)!r} of {row.id!r} is not on this machine (worker {row.worker}); "
                          f"run the handoff where that worker wrote it")
    candidate = candidate_at(row.arch, study.cfg.model, searched(row.values))
    multiple, folder = size_multiple(candidate), Path(out) / row.id
    ranked, *others = bundle_sizes(study, row, resolutions)
    main = _at_size(study, row, folder, ranked, multiple, version, author, "model")
    sizes = {f"{h}x{w}": _at_size(study, row, folder, (h, w), multiple, version, author, f"model_{h}x{w}")
             for h, w in others}
    atomic_write(folder / "README.md", app_readme(row, main, sizes, multiple, study.layout.root.resolve()))  # handoff/readme.py
    atomic_write(folder / "manifest.json", json.dumps(_manifest(study, row, candidate, folder, main, sizes, multiple,
                                                                version, author), indent=2, default=str))
    return folder


def _manifest(study, row, candidate, folder: Path, main: dict, sizes: dict, multiple: int, version: str,
              author: str) -> dict:
    entries = (main, *sizes.values())
    files = [name for e in entries for name in (e["file"], e["golden_input"], e["golden_output"])]
    return {
        "id": row.id, "version": version, "author": author, "metadata": main["metadata"],
        "input": main["input"], "output": main["output"], "frames": main["frames"], "pad_to_multiple_of": multiple,
        "quantization": row.optimization, "quality": _quality(row), "latency": row.latency,
        "resolutions": {k: {n: v for n, v in e.items() if n != "metadata"} for k, e in sizes.items()},
        "macs": row.macs, "params": row.params,
        "op_inventory": row.inventory, "delegate_fallback": row.portability, "xnnpack": row.xnnpack,
        "gpu_measured": row.gpu_measured or None, "fp16_range": row.fp16_range or None,
        "candidate": _architecture(row, candidate),
        "training": dataclasses.asdict(study.cfg.train), "data": dataclasses.asdict(study.cfg.data),
        "source": {"run": str(study.layout.root.resolve()), "artifact": row.artifacts["primary"], "trial": row.trial,
                   "worker": row.worker},
        "libraries": library_versions(LIBRARIES),
        # The machine the numbers above were measured on (same seed, same numbers holds there).
        "environment": study.study.user_attrs.get(attrs.ENVIRONMENT + row.worker),
        "golden": {"atol": GOLDEN_ATOL if main["output"]["dtype"].startswith("float") else 0, "threads": 1,
                   "pairs": [[e["file"], e["golden_input"], e["golden_output"]] for e in entries]},
        "sha256": {name: sha256(folder / name) for name in [*files, "README.md"]},
    }


def _quality(row) -> dict:
    return {"psnr": row.psnr_tflite, "ssim": row.ssim_tflite, "psnr_blurry_input": row.psnr_blurry,
            "ssim_blurry_input": row.ssim_blurry, "psnr_keras": row.psnr_keras,
            "fidelity_vs_keras_psnr": row.fidelity_psnr, "fidelity_vs_keras_l2": row.fidelity_l2,
            "by_camera_pipeline": row.pipelines}


def _architecture(row, candidate) -> dict:
    """What the bundled network is: the builder arguments it was built from and the widths it really has
    (``channels``: conv layer -> output channels, from the model the file was converted from -- for a pruned
    row these are the pruned widths, not ``arguments``' ``width``)."""
    return {"arch": row.arch, "arguments": dict(candidate.arguments), "searched": row.values,
            "channels": row.channels or None,
            "pruned": "prune" in row.values or "sparsity" in row.values,
            # A mixed-precision file: the Keras layers computed in float inside the int8 graph, and why each.
            "float_islands": {layer: {"dtype": dtype, "why": row.mixed_plan.get("reasons", {}).get(layer, "")}
                              for layer, dtype in row.float_islands.items()} or None,
            # Training: the steps its start had (a supernet / pretrained start) and its own.
            "training": {"inherited_steps": row.inherited_steps, "inherited_from": row.inherited_from or None,
                         "own_steps": row.steps}}


def handoff(run: str, candidate: Optional[str] = None, pareto: bool = False, out: Optional[str] = None,
            version: str = "1.0.0", author: str = "portable_deblur", resolutions=()) -> List[Path]:
    """Write the bundles of the chosen artifacts of run directory ``run``; returns their folders."""
    from portable_deblur.rank import Objectives, front_rows
    from portable_deblur.search.study import SearchStudy

    study = SearchStudy.load(run)
    rows = study.rows()
    _, front = front_rows(rows, Objectives.of(study.cfg))
    chosen = choose(rows, front, candidate, pareto)
    target = Path(out) if out else study.layout.handoff
    folders = [build_bundle(study, row, target, version, author, resolutions) for row in chosen]
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
        from portable_deblur.handoff.sizes import parse_resolutions

        sizes = parse_resolutions(args.get("resolution", ""))
        folders = handoff(args["run"], args.get("candidate"), pareto == "true", args.get("out"),
                          args.get("version", "1.0.0"), args.get("author", "portable_deblur"), sizes)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for folder in folders:
        print(f"bundle: {folder} (verified with LiteRT)")
    return 0

