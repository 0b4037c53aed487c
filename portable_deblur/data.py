"""Blurry/sharp training and validation pairs: the embedded photo set, or a GoPro / REDS folder.

Sources are a registry keyed by ``data.source``. Every source returns a :class:`Dataset` of uint8 pairs,
split into train and validation by *source* (photo or sequence) so no scene appears in both.
"""
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

from portable_deblur.registry import ConfigError, lookup


@dataclass(frozen=True)
class Pair:
    """One blurry/sharp image pair (uint8, HxWx3) and where it came from."""

    name: str
    blurry: np.ndarray
    sharp: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Training and validation pairs; no source photo/sequence is in both."""

    train: Tuple[Pair, ...]
    val: Tuple[Pair, ...]


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
    import skimage.data
    from skimage.transform import rescale

    image = lookup(EMBEDDED_PHOTOS, "embedded photo", name)(skimage.data)[..., :3]
    scale = max_side / max(image.shape[:2])
    if scale < 1:  # anti-aliased downscale keeps the photo sharp at working resolution
        image = rescale(image, scale, channel_axis=-1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _blurred_pairs(name: str, cfg, count: int) -> List[Pair]:
    from portable_deblur.blur import blur_image, shake_kernel

    sharp = _photo(name, cfg.max_side)
    rng = np.random.default_rng([cfg.seed, zlib.crc32(name.encode())])  # per photo: order-independent
    lo, hi = cfg.blur_length
    pairs = []
    for i in range(count):
        kernel = shake_kernel(rng, rng.uniform(lo, hi))
        pairs.append(Pair(f"{name}_{i}", blur_image(sharp, kernel, rng, cfg.noise_sigma), sharp))
    return pairs


def load_embedded(cfg) -> Dataset:
    """scikit-image photographs blurred with synthetic camera shake (deterministic for ``cfg.seed``)."""
    train = [p for n in cfg.train_images for p in _blurred_pairs(n, cfg, cfg.blurs_per_image)]
    val = [p for n in cfg.val_images for p in _blurred_pairs(n, cfg, cfg.val_blurs_per_image)]
    return Dataset(tuple(train), tuple(val))


def _read(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        image = iio.imread(path)
    except Exception as exc:  # imageio raises several types; the user needs the file name either way
        raise ConfigError(f"cannot read image {path}: {exc}") from None
    if image.ndim != 3 or image.shape[2] < 3:
        raise ConfigError(f"image {path} must be RGB; got shape {image.shape}")
    return image[..., :3].astype(np.uint8)


def _check_sharp_twins(pairs: List[Tuple[str, Path, Path]]) -> None:
    """Every sharp image must have a blurry twin too (an unpaired sharp file means a broken copy)."""
    blurry_for = {s: b for _, b, s in pairs}
    for folder in sorted({s.parent for _, _, s in pairs}):
        for sharp in sorted(folder.glob("*.png")):
            if sharp not in blurry_for:
                raise ConfigError(f"sharp image {sharp} has no blurry twin")


def _load_folder_pairs(pairs: List[Tuple[str, Path, Path]], limit: int, stride: int) -> Tuple[Pair, ...]:
    _check_sharp_twins(pairs)
    pairs = pairs[::stride][: limit or None]
    out = []
    for name, blurry_path, sharp_path in pairs:
        if not sharp_path.is_file():
            raise ConfigError(f"blurry image {blurry_path} has no sharp twin; expected {sharp_path}")
        blurry, sharp = _read(blurry_path), _read(sharp_path)
        if blurry.shape != sharp.shape:
            raise ConfigError(f"size mismatch: {blurry_path} is {blurry.shape} but {sharp_path} is {sharp.shape}")
        out.append(Pair(name, blurry, sharp))
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
    return [(f"{b.parent.parent.name}_{b.stem}", b, b.parent.parent / "sharp" / b.name) for b in blurs]


def _reds_pairs(root: Path, split: str) -> List[Tuple[str, Path, Path]]:
    """REDS: ``<root>/<split>_blur/<sequence>/*.png`` with ``<root>/<split>_sharp/<sequence>/``."""
    base = _split_dir(root, f"{split}_blur")
    blurs = sorted(base.glob("*/*.png"))
    if not blurs:
        raise ConfigError(f"no REDS pairs under {base}; expected {base}/<sequence>/*.png")
    return [(f"{b.parent.name}_{b.stem}", b, root / f"{split}_sharp" / b.parent.name / b.name) for b in blurs]


def _folder_loader(list_pairs: Callable, default_splits: Tuple[str, str]) -> Callable[..., Dataset]:
    def load(cfg) -> Dataset:
        if not cfg.root:
            raise ConfigError(f"data.root must be set for data.source={cfg.source!r}")
        root = Path(cfg.root).expanduser()
        train_split, val_split = cfg.train_split or default_splits[0], cfg.val_split or default_splits[1]
        train = _load_folder_pairs(list_pairs(root, train_split), cfg.max_train_pairs, cfg.frame_stride)
        val = _load_folder_pairs(list_pairs(root, val_split), cfg.max_val_pairs, cfg.frame_stride)
        return Dataset(train, val)

    return load


SOURCES = {
    "embedded": load_embedded,
    "gopro": _folder_loader(_gopro_pairs, ("train", "test")),
    "reds": _folder_loader(_reds_pairs, ("train", "val")),
}


def load_dataset(cfg) -> Dataset:
    """Load the pairs described by a ``DataConfig``."""
    return lookup(SOURCES, "data.source", cfg.source)(cfg)


def sample_batch(rng: np.random.Generator, pairs, batch_size: int, crop: int) -> Tuple[np.ndarray, np.ndarray]:
    """Random aligned crops with flips and 90-degree rotations, as float32 in [0, 1]."""
    blurry = np.empty((batch_size, crop, crop, 3), np.float32)
    sharp = np.empty_like(blurry)
    for i in range(batch_size):
        pair = pairs[rng.integers(len(pairs))]
        h, w = pair.sharp.shape[:2]
        y, x = rng.integers(h - crop + 1), rng.integers(w - crop + 1)
        b, s = pair.blurry[y:y + crop, x:x + crop], pair.sharp[y:y + crop, x:x + crop]
        k, flip = rng.integers(4), rng.integers(2)
        b, s = np.rot90(b, k), np.rot90(s, k)
        if flip:
            b, s = b[:, ::-1], s[:, ::-1]
        blurry[i], sharp[i] = b / 255.0, s / 255.0
    return blurry, sharp
