"""The report's visual crops: the same detailed patches of one validation frame, restored by every front
artifact (its ``.tflite``), magnified, each above its error map against the sharp frame, so a reader sees
what each network changed where PSNR gains of a few tenths of a dB are invisible side by side."""
import html
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from portable_deblur.layout import RunLayout
from portable_deblur.records import ResultRow

CROP = 48  # px of each validation patch
ZOOM = 4  # nearest-neighbour magnification, so single pixels stay visible
ERROR_GAIN = 8  # |x - sharp| is shown times this (an error of 1/8 of the range is full scale)


def _patches(sharp: np.ndarray, count: int = 2) -> List[tuple]:
    """Top-left corners of the ``count`` most detailed non-overlapping patches (gradient energy)."""
    h, w = sharp.shape[:2]
    size = min(CROP, h, w)
    grey = sharp.astype(np.float32).mean(-1)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    step = max(1, size // 2)
    scored = []
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            scored.append((float(energy[y:y + size - 1, x:x + size - 1].sum()), y, x))
    chosen: List[tuple] = []
    for _, y, x in sorted(scored, reverse=True):
        if all(abs(y - cy) >= size or abs(x - cx) >= size for cy, cx, _ in chosen):
            chosen.append((y, x, size))
        if len(chosen) == count:
            break
    return chosen


def error_map(image: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """|image - sharp| (mean over channels, times ``ERROR_GAIN``) as an RGB heat map, uint8."""
    from matplotlib import colormaps

    err = np.abs(image.astype(np.float32) - sharp.astype(np.float32)).mean(-1) / 255.0
    return (colormaps["inferno"](np.clip(err * ERROR_GAIN, 0, 1))[..., :3] * 255).astype(np.uint8)


def patch_psnr(image: np.ndarray, sharp: np.ndarray) -> float:
    mse = float(np.mean((image.astype(np.float64) - sharp.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def restored(layout: RunLayout, front: Sequence[ResultRow], pair) -> Dict[str, np.ndarray]:
    """The frame as the caption orders it: blurry input, each front artifact (fastest first), sharp."""
    from portable_deblur.deploy.runtime import load_interpreter, predictor
    from portable_deblur.train.evaluate import restore, to_uint8

    outputs = {"blurry": pair.blurry}
    for r in front:
        path = layout / r.artifacts.get("eval", "")
        if r.artifacts.get("eval") and path.is_file():
            canvas = tuple(int(d) for d in load_interpreter(path).get_input_details()[0]["shape"][1:3])
            outputs[r.id] = to_uint8(restore(predictor(path), pair.blurry, canvas))
    outputs["sharp"] = pair.sharp
    return outputs


def visual_crops(layout: RunLayout, front: Sequence[ResultRow], val_pairs) -> List[Dict]:
    """Save, under ``crops/``, the same patches of the first validation frame: each image of ``restored``
    magnified, and beneath each but the sharp one its error map; returns one entry per patch."""
    from skimage.io import imsave

    from portable_deblur.decision import label

    pair = val_pairs[0]
    layout.crops.mkdir(exist_ok=True)
    outputs = restored(layout, front, pair)
    names = {r.id: label(r) for r in front}
    crops = []
    for i, (y, x, size) in enumerate(_patches(pair.sharp)):
        sharp = pair.sharp[y:y + size, x:x + size]
        entry = {"patch": f"{pair.name} y={y} x={x} ({size} px, shown {ZOOM}x)", "images": []}
        for name, image in outputs.items():
            patch = image[y:y + size, x:x + size]
            files = {"image": _save(layout, imsave, f"patch{i}_{name}.png", patch)}
            if name != "sharp":
                files["error"] = _save(layout, imsave, f"patch{i}_{name}_error.png", error_map(patch, sharp))
            entry["images"].append({"name": name, "label": names.get(name, name), **files,
                                    "psnr": patch_psnr(patch, sharp) if name != "sharp" else None})
        crops.append(entry)
    return crops


def _save(layout: RunLayout, imsave, name: str, image: np.ndarray) -> str:
    big = np.repeat(np.repeat(image, ZOOM, axis=0), ZOOM, axis=1).astype(np.uint8)
    path: Path = layout.crops / name
    imsave(path, big, check_contrast=False)
    return layout.relative(path)


def crops_section(crops: Sequence[Dict]) -> List[str]:
    """The crops in the caption's order, every figure the same size; error maps in the row beneath."""
    if not crops:
        return []
    parts = ["<h2>Visual crops</h2><p>The same validation patches, left to right: the blurry input, each Pareto "
             "artifact (its .tflite, fastest first), the sharp ground truth; each magnified "
             f"{ZOOM}x. Beneath each, its error against the sharp patch, |image - sharp| times {ERROR_GAIN} "
             "(black: no error; bright: 1/8 of the range or more), and the patch's PSNR: where a network "
             "restored detail, its map is darker than the blurry input's.</p>"]
    for c in crops:
        figs = []
        for i in c["images"]:
            db = f"{i['psnr']:.2f} dB" if i["psnr"] is not None else "ground truth"
            error = (f"<img src='{html.escape(i['error'])}' alt='error of {html.escape(i['name'])}'>"
                     if "error" in i else "<div class='noerror'></div>")
            figs.append(f"<figure title='{html.escape(i['name'])}'><img src='{html.escape(i['image'])}' "
                        f"alt='{html.escape(i['name'])}'>{error}<figcaption>{html.escape(i['label'])}<br>{db}"
                        "</figcaption></figure>")
        parts.append(f"<div class='crops'><p>{html.escape(c['patch'])}</p>{''.join(figs)}</div>")
    return parts
