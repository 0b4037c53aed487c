"""Sharp content the embedded data blurs: photographs that installed packages ship, and procedural dead leaves.

Photographs (``PHOTOS``, loaded offline, each with its licence):
- scikit-image ``data``: astronaut (NASA, public domain), chelsea (CC0, Stefan van der Walt), coffee (CC0,
  Rachel Michetti), rocket (SpaceX, public domain), stereo_motorcycle (Middlebury 2014 stereo benchmark,
  Scharstein et al., GCPR 2014: free for research with citation).
- scikit-learn ``load_sample_image``: china.jpg and flower.jpg (CC BY 2.0, danielbuechele and vultilion on
  Flickr, as the package's README credits).
- matplotlib sample data: grace_hopper.jpg (US Navy photograph, public domain).
The greyscale textures, scans and scientific images scikit-image also ships (brick, camera, coins, grass,
gravel, moon, page, hubble_deep_field, immunohistochemistry, retina, colorwheel) can still be named, but they
are not what phones photograph: the default sets use the natural colour photographs only.

Dead leaves (Achddou, Gousseau, Ladjal, "Synthetic images as a regularity prior for image restoration neural
networks", SSVM 2021, and "Fully synthetic training for image restoration tasks", CVIU 2023): occluding disks
whose radii have density ~ r^-3 (scale invariance, as natural images), colours drawn from natural photos,
texture inside each leaf and depth-of-field blur on the leaves behind a focus depth (and, here, a contrast
per frame that keeps their linear-light blur as bright as a photo's) -- content without end,
generated from a seed, which trained deblurring that transferred to real frames as well as photographs did.
"""
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
from scipy import ndimage

from portable_deblur.registry import lookup


def _grey(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=-1)


def _sklearn(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image(name)


def _matplotlib(name: str) -> np.ndarray:
    import imageio.v3 as iio
    import matplotlib

    return iio.imread(Path(matplotlib.get_data_path()) / "sample_data" / name)


def _skimage(name: str, index=None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[index] if index is not None else image

    return load


# Natural colour photographs (``cat`` is ``chelsea`` again, and the motorcycle's right view the left one).
NATURAL_PHOTOS: Dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"), "chelsea": _skimage("chelsea"), "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"), "stereo_motorcycle": _skimage("stereo_motorcycle", 0),
    "china": lambda: _sklearn("china.jpg"), "flower": lambda: _sklearn("flower.jpg"),
    "grace_hopper": lambda: _matplotlib("grace_hopper.jpg"),
}
# Everything a user may name: the natural photos, then scikit-image's textures, scans and scientific images.
PHOTOS: Dict[str, Callable[[], np.ndarray]] = {
    **NATURAL_PHOTOS,
    **{n: _skimage(n) for n in ("colorwheel", "hubble_deep_field", "immunohistochemistry", "retina")},
    **{n: (lambda n=n: _grey(_skimage(n)())) for n in ("brick", "camera", "coins", "grass", "gravel", "moon", "page")},
}


@lru_cache(maxsize=32)
def photo(name: str, max_side: int) -> np.ndarray:
    """The photo at its native resolution, centre-cropped (never rescaled) to at most ``max_side`` pixels:
    shrinking would shrink the blur a network learns. Read-only (shared by every caller)."""
    image = lookup(PHOTOS, "embedded photo", name)()[..., :3]
    h, w = image.shape[:2]
    y, x = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    out = np.ascontiguousarray(image[y:y + max_side, x:x + max_side], dtype=np.uint8)
    out.setflags(write=False)
    return out


def palette(names: Sequence[str], max_side: int, count: int = 4096) -> np.ndarray:
    """``count`` colours (uint8 RGB) sampled from the photos ``names``: the leaves' colours."""
    pixels = np.concatenate([photo(n, max_side).reshape(-1, 3) for n in names])
    rng = np.random.default_rng(zlib.crc32(",".join(names).encode()))
    return pixels[rng.integers(len(pixels), size=count)]


def _radii(rng: np.random.Generator, count: int, r_min: float, r_max: float) -> np.ndarray:
    """Radii with density ~ r^-3 on [r_min, r_max] (inverse CDF)."""
    u = rng.random(count)
    return (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5


def _texture(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """A leaf's texture over its pixels, in [-1, 1]: flat, a grating of random period and orientation, or
    band-passed noise (the papers' textured leaves)."""
    kind = rng.integers(3)
    if kind == 0:
        return np.zeros(ys.shape, np.float32)
    if kind == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(2.5, 24.0)
        return np.sin(2 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period + rng.uniform(0, 2 * np.pi))
    return noise[ys, xs]


def dead_leaves(seed: Sequence[int], size: Tuple[int, int], colours: np.ndarray, r_min: float = 1.5,
                r_max: float = 160.0, defocus: float = 3.0) -> np.ndarray:
    """A dead-leaves image (uint8 HxWx3) from ``seed``: disks fall one beneath the other until the plane is
    covered (the last 0.5 % of specks take the leaf beside them); each has a colour from ``colours``, a texture and a depth; the leaves deeper than a random focus
    depth are blurred in proportion to their distance from it (depth of field), by a Gaussian of sigma up to
    a random fraction of ``defocus`` pixels."""
    rng = np.random.default_rng(list(seed))
    h, w = size
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), rng.uniform(0.7, 3.0))
    noise = (noise / (np.abs(noise).max() + 1e-9)).astype(np.float32)
    image = np.zeros((h, w, 3), np.float32)
    depth = np.full((h, w), -1.0, np.float32)
    covered = np.zeros((h, w), bool)
    focus = rng.uniform(0.3, 1.0)  # leaves deeper than this are out of focus
    # Colours drawn independently make every leaf edge a photo's strongest edge: linear-light blur then
    # brightened leaves 3.6x as much as photo crops (+0.077 vs +0.021). Pulling them towards one tint per
    # frame by a random contrast keeps the brightening photo-like (+0.02..+0.04), as neighbouring surfaces
    # of a photo share their light and colour.
    tint, contrast = colours[rng.integers(len(colours))].astype(np.float32), rng.uniform(0.3, 0.8)
    order = 0
    while covered.mean() < 0.995:  # the last specks of the plane would cost most of the disks
        radii = _radii(rng, 256, r_min, r_max)
        for r, cy, cx in zip(radii, rng.uniform(-r_max / 4, h + r_max / 4, 256), rng.uniform(-r_max / 4, w + r_max / 4, 256)):
            y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
            x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            ys, xs = np.mgrid[y0:y1, x0:x1]
            inside = ((ys - cy) ** 2 + (xs - cx) ** 2 <= r * r) & ~covered[y0:y1, x0:x1]
            if not inside.any():
                continue
            ly, lx = ys[inside], xs[inside]
            colour = tint + contrast * (colours[rng.integers(len(colours))].astype(np.float32) - tint)
            amplitude = rng.uniform(0.0, 0.35) * 255.0 * contrast
            shade = _texture(rng, ly, lx, noise)[:, None] * amplitude
            image[ly, lx] = colour + shade * (0.5 + colour / 510.0)
            depth[ly, lx] = order / (order + 400.0)  # later leaves lie beneath: deeper
            covered[ly, lx] = True
            order += 1
    nearest = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    image, depth = image[nearest[0], nearest[1]], depth[nearest[0], nearest[1]]  # specks: the leaf beside
    out = _defocus(np.clip(image, 0, 255), depth, focus, rng.uniform(0.0, defocus))
    return np.round(out).astype(np.uint8)


def _defocus(image: np.ndarray, depth: np.ndarray, focus: float, strength: float) -> np.ndarray:
    """Blur every pixel deeper than ``focus`` by a Gaussian whose sigma grows with the distance (3 levels)."""
    out = image.copy()
    distance = np.clip((depth - focus) / max(1 - focus, 1e-6), 0, 1)
    for level in (1, 2, 3):
        mask = distance > (level - 1) / 3
        if strength <= 0 or not mask.any():
            break
        out[mask] = ndimage.gaussian_filter(image, (strength * level / 3,) * 2 + (0,))[mask]
    return out
