"""Blurry/sharp training and validation data: the embedded set, or a GoPro / REDS / paired folder.

Sources are a registry keyed by ``data.source``. Every source returns a :class:`Dataset` split into train and
validation by *source* (photo or sequence) so no scene appears in both. The embedded source renders its
training crops fresh as they are asked for (``scenes.py``) and its validation frames in memory, in both camera
pipelines (``blur.py``); folder pairs are listed and checked up front and decoded only when read, so memory
does not grow with the dataset (``pipeline.py`` streams the training crops).
"""
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Tuple

import numpy as np

from portable_deblur.data.content import photo
from portable_deblur.data.scenes import PIPELINES, scenes
from portable_deblur.registry import ConfigError, lookup


@dataclass(frozen=True)
class Pair:
    """One blurry/sharp image pair held in memory (uint8, HxWx3) and where it came from: the camera pipeline
    that blurred it (embedded frames) and whether it counts towards the figure the front ranks by."""

    name: str
    blurry: np.ndarray
    sharp: np.ndarray
    pipeline: str = ""
    ranked: bool = True

    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(self.sharp.shape[:2])


@dataclass(frozen=True)
class FilePair:
    """One blurry/sharp pair on disk: listed (and its size read from the headers) up front, decoded each time
    ``blurry`` / ``sharp`` is read, so a dataset of any size costs only its file list in memory."""

    name: str
    blurry_path: Path
    sharp_path: Path
    shape: Tuple[int, int]

    @property
    def blurry(self) -> np.ndarray:
        return read_image(self.blurry_path, self.shape)

    @property
    def sharp(self) -> np.ndarray:
        return read_image(self.sharp_path, self.shape)


@dataclass(frozen=True)
class Dataset:
    """Training data -- pairs (``Pair`` / ``FilePair``) or ``ShakeScenes`` rendered on demand -- and
    validation pairs; no source photo/sequence is in both."""

    train: Any
    val: Tuple[Any, ...]


# The validation frames are a fixed benchmark, like a dataset's test split: ``data.seed`` changes the training
# data only, so runs with different seeds are judged on the same frames.
VALIDATION_SEED = 0


def _val_pairs(name: str, cfg) -> List[Pair]:
    """Validation frames of one held-out photo, whole, ``val_blurs_per_image`` per camera pipeline. Frame j of
    photo p gets the length at quantile (j * photos + p + 0.5) / frames of the log-uniform range, so the
    figure covers the range evenly. Both pipelines blur with the same path and noise, so they differ only in
    how the sub-frames are averaged."""
    from portable_deblur.data.blur import blur_image, shake_path

    sharp = photo(name, cfg.max_side)
    rng = np.random.default_rng([VALIDATION_SEED, zlib.crc32(name.encode())])  # per photo: order-independent
    lo, hi = np.log(cfg.blur_length)
    p, photos, k = cfg.val_images.index(name), len(cfg.val_images), cfg.val_blurs_per_image
    pairs = []
    for j in range(k):
        q = (j * photos + p + 0.5) / (photos * k)
        path = shake_path(rng, float(np.exp(lo + q * (hi - lo))), sharp.shape[:2], cfg.rotation, cfg.zoom)
        noise_seed = rng.integers(2 ** 31)
        for space in PIPELINES:
            blurry = blur_image(sharp, path, np.random.default_rng(noise_seed), cfg.noise_sigma, space,
                                camera_gamma=cfg.camera_gamma)
            pairs.append(Pair(f"{name}_{space}_{j}", blurry, sharp, space, cfg.blur_space in (space, "mixed")))
    return pairs


def load_embedded(cfg) -> Dataset:
    """Training crops rendered fresh from photographs and dead leaves (``scenes.py``), and whole validation
    frames of held-out photographs in both camera pipelines (deterministic for ``cfg.seed``)."""
    val = [pair for name in cfg.val_images for pair in _val_pairs(name, cfg)]
    return Dataset(scenes(cfg), tuple(val))


class UnreadableImage(IOError):
    """An image file that cannot be decoded (met while training or evaluating): fails that trial, named."""


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image(path: Path, shape: Tuple[int, int]) -> np.ndarray:
    """Decode an RGB image; a file that fails (or changed size since it was listed) raises, naming it."""
    import imageio.v3 as iio

    try:
        image = iio.imread(path)
    except Exception as exc:  # imageio raises several types; the user needs the file name either way
        raise UnreadableImage(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None
    if image.ndim != 3 or image.shape[2] < 3 or tuple(image.shape[:2]) != tuple(shape):
        raise UnreadableImage(f"image {path} has shape {image.shape}; expected {tuple(shape)} x RGB")
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def _header(path: Path) -> Tuple[int, int]:
    """(height, width) from the file's header alone; an unreadable or non-RGB file is a ConfigError."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except Exception as exc:
        raise ConfigError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None
    if mode not in ("RGB", "RGBA", "P"):
        raise ConfigError(f"image {path} must be RGB; got mode {mode!r}")
    return height, width


def _check_sharp_twins(pairs: List[Tuple[str, Path, Path]], sharp_root: Path) -> None:
    """Every sharp image must have a blurry twin too (an unpaired sharp file means a broken copy)."""
    expected = {s for _, _, s in pairs}
    folders = {s.parent for s in expected}  # other folders (GoPro's blur/, blur_gamma/) are not sharp twins
    for sharp in sorted(p for p in sharp_root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        if sharp.parent in folders and sharp not in expected:
            raise ConfigError(f"sharp image {sharp} has no blurry twin")


def _list_folder_pairs(pairs: List[Tuple[str, Path, Path]], limit: int, stride: int) -> Tuple[FilePair, ...]:
    """Pair up and check the files (partner present, headers readable, sizes equal); read no pixels."""
    pairs = pairs[::stride][: limit or None]
    out = []
    for name, blurry_path, sharp_path in pairs:
        if not sharp_path.is_file():
            raise ConfigError(f"blurry image {blurry_path} has no sharp twin; expected {sharp_path}")
        blurry, sharp = _header(blurry_path), _header(sharp_path)
        if blurry != sharp:
            raise ConfigError(f"size mismatch: {blurry_path} is {blurry} but {sharp_path} is {sharp}")
        out.append(FilePair(name, blurry_path, sharp_path, sharp))
    return tuple(out)


def _split_dir(root: Path, split: str) -> Path:
    if not root.is_dir():
        raise ConfigError(f"data.root {str(root)!r} is not a directory")
    return root / split


def _gopro_pairs(root: Path, split: str) -> List[Tuple[str, Path, Path]]:
    """GoPro: ``<root>/<split>/<sequence>/blur/*.png`` with ``sharp/`` beside ``blur/``."""
    base = _split_dir(root, split)
    blurs = sorted(base.glob("*/blur/*.png"))
    if not blurs:
        raise ConfigError(f"no GoPro pairs under {base}; expected {base}/<sequence>/blur/*.png")
    pairs = [(f"{b.parent.parent.name}_{b.stem}", b, b.parent.parent / "sharp" / b.name) for b in blurs]
    _check_sharp_twins(pairs, base)
    return pairs


def _reds_pairs(root: Path, split: str) -> List[Tuple[str, Path, Path]]:
    """REDS: ``<root>/<split>_blur/<sequence>/*.png`` with ``<root>/<split>_sharp/<sequence>/``."""
    base = _split_dir(root, f"{split}_blur")
    blurs = sorted(base.glob("*/*.png"))
    if not blurs:
        raise ConfigError(f"no REDS pairs under {base}; expected {base}/<sequence>/*.png")
    pairs = [(f"{b.parent.name}_{b.stem}", b, root / f"{split}_sharp" / b.parent.name / b.name) for b in blurs]
    _check_sharp_twins(pairs, root / f"{split}_sharp")
    return pairs


def _paired_pairs(root: Path, split: str) -> List[Tuple[str, Path, Path]]:
    """Any paired layout: ``<root>/<split>/blurry/**`` and ``<root>/<split>/sharp/**`` with the same relative
    file names (PNG or JPEG), e.g. a phone's own frames."""
    base = _split_dir(root, split)
    blurry_root, sharp_root = base / "blurry", base / "sharp"
    blurs = sorted(p for p in blurry_root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not blurs:
        raise ConfigError(f"no paired images under {blurry_root}; expected {blurry_root}/**/*.png (or .jpg) with "
                          f"the same relative names under {sharp_root}")
    pairs = [("_".join(b.relative_to(blurry_root).with_suffix("").parts), b, sharp_root / b.relative_to(blurry_root))
             for b in blurs]
    _check_sharp_twins(pairs, sharp_root)
    return pairs


def _folder_loader(list_pairs: Callable, default_splits: Tuple[str, str]) -> Callable[..., Dataset]:
    def load(cfg) -> Dataset:
        if not cfg.root:
            raise ConfigError(f"data.root must be set for data.source={cfg.source!r}")
        root = Path(cfg.root).expanduser()
        train_split, val_split = cfg.train_split or default_splits[0], cfg.val_split or default_splits[1]
        train = _list_folder_pairs(list_pairs(root, train_split), cfg.max_train_pairs, cfg.frame_stride)
        val = _list_folder_pairs(list_pairs(root, val_split), cfg.max_val_pairs, cfg.frame_stride)
        return Dataset(train, val)

    return load


SOURCES = {
    "embedded": load_embedded,
    "gopro": _folder_loader(_gopro_pairs, ("train", "test")),
    "reds": _folder_loader(_reds_pairs, ("train", "val")),
    "paired": _folder_loader(_paired_pairs, ("train", "val")),
}


def load_dataset(cfg) -> Dataset:
    """The pairs described by a ``DataConfig``: embedded pairs in memory, folder pairs listed and checked
    (pixels are decoded only when a batch or a validation image needs them)."""
    return lookup(SOURCES, "data.source", cfg.source)(cfg)
