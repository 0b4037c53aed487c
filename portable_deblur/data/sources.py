"""Blurry/sharp training and validation pairs: the embedded photo set, or a GoPro / REDS / paired folder.

Sources are a registry keyed by ``data.source``. Every source returns a :class:`Dataset` split into train and
validation by *source* (photo or sequence) so no scene appears in both. Embedded pairs are rendered in memory
(``blur.py``); folder pairs are listed and checked up front and decoded only when read, so memory does not
grow with the dataset (``pipeline.py`` streams the training crops).
"""
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Tuple

import numpy as np

from portable_deblur.registry import ConfigError, lookup


@dataclass(frozen=True)
class Pair:
    """One blurry/sharp image pair held in memory (uint8, HxWx3) and where it came from."""

    name: str
    blurry: np.ndarray
    sharp: np.ndarray

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
    """Training and validation pairs (``Pair`` or ``FilePair``); no source photo/sequence is in both."""

    train: Tuple[Any, ...]
    val: Tuple[Any, ...]


def _grey(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=-1)


# Photographs bundled with scikit-image that load without a download (``cat`` is the same photo as
# ``chelsea``, so it is left out). Greyscale photos are replicated to 3 channels: their edges and textures
# (brick, grass, gravel, printed text) teach deblurring as well as colour ones do.
EMBEDDED_PHOTOS = {
    "astronaut": lambda d: d.astronaut(), "chelsea": lambda d: d.chelsea(), "coffee": lambda d: d.coffee(),
    "colorwheel": lambda d: d.colorwheel(), "hubble_deep_field": lambda d: d.hubble_deep_field(),
    "immunohistochemistry": lambda d: d.immunohistochemistry(), "retina": lambda d: d.retina(),
    "rocket": lambda d: d.rocket(), "stereo_motorcycle": lambda d: d.stereo_motorcycle()[0],
    "brick": lambda d: _grey(d.brick()), "camera": lambda d: _grey(d.camera()), "coins": lambda d: _grey(d.coins()),
    "grass": lambda d: _grey(d.grass()), "gravel": lambda d: _grey(d.gravel()), "moon": lambda d: _grey(d.moon()),
    "page": lambda d: _grey(d.page()),
}


def _photo(name: str, max_side: int) -> np.ndarray:
    """The photo at its native resolution, centre-cropped (never rescaled) to at most ``max_side`` pixels:
    shrinking would shrink the blur a network learns, as the 384-px downscale of earlier versions did."""
    import skimage.data

    image = lookup(EMBEDDED_PHOTOS, "embedded photo", name)(skimage.data)[..., :3]
    h, w = image.shape[:2]
    y, x = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return np.ascontiguousarray(image[y:y + max_side, x:x + max_side], dtype=np.uint8)


def _blurred_pairs(name: str, cfg, count: int, tile: int) -> List[Pair]:
    """``count`` blurred views of one photo, each with its own shake path: windows of ``tile`` pixels at
    random places of the frame (0: the whole frame), each blurred as that place of the frame is."""
    from portable_deblur.data.blur import blur_image, shake_path

    photo = _photo(name, cfg.max_side)
    rng = np.random.default_rng([cfg.seed, zlib.crc32(name.encode())])  # per photo: order-independent
    lo, hi = np.log(cfg.blur_length)
    frame = photo.shape[:2]
    h, w = (min(tile, frame[0]), min(tile, frame[1])) if tile else frame
    pairs = []
    for i in range(count):
        # Log-uniform lengths: hand shake is mostly small with a long tail of large motions.
        path = shake_path(rng, float(np.exp(rng.uniform(lo, hi))), frame, cfg.rotation, cfg.zoom)
        y, x = rng.integers(frame[0] - h + 1), rng.integers(frame[1] - w + 1)
        blurry = blur_image(photo, path, rng, cfg.noise_sigma, cfg.blur_space, window=(y, x, h, w))
        pairs.append(Pair(f"{name}_{i}", blurry, np.ascontiguousarray(photo[y:y + h, x:x + w])))
    return pairs


def load_embedded(cfg) -> Dataset:
    """scikit-image photographs blurred with synthetic camera shake (deterministic for ``cfg.seed``)."""
    train = [p for n in cfg.train_images for p in _blurred_pairs(n, cfg, cfg.blurs_per_image, cfg.train_tile)]
    val = [p for n in cfg.val_images for p in _blurred_pairs(n, cfg, cfg.val_blurs_per_image, 0)]
    return Dataset(tuple(train), tuple(val))


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
