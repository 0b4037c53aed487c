"""Training pairs rendered fresh for every crop: the embedded source's training set.

Each crop is cut from a sharp frame -- one of the training photographs, or a dead-leaves image made from the
seed (``content.py``) -- and gets its own shake path over that frame and the blur of its place in it, rendered
sub-pixel (``blur.py``) in the camera pipeline of ``data.blur_space`` (``mixed``: either, per crop). Nothing is
drawn from a fixed pool, so there is nothing to memorise: a network sees new content and new blur at every
step. Crop ``i`` of batch ``b`` is a pure function of (data seed, training seed, b, i), so a resumed run sees
exactly the batches an uninterrupted one would.

Rendering one 96-px crop costs ~5-8 ms of numpy here, which on 2 cores doubled the default U-Net's training
step (``benchmarks/embedded_data.py``). So the crops flow through a ring: rendered crop ``t`` is rendered once
(from the seeds and ``t``), and each batch draws its crops without replacement from the newest
``RING_BATCHES * batch_size`` rendered crops, in one of 8 random flips/rotations, while ``batch_size /
render_reuse`` new crops enter the ring per batch: every rendered crop is used ``render_reuse`` times on
average, over ~``RING_BATCHES * render_reuse`` consecutive steps, and the stream of new content and new blur
never ends. ``render_reuse=1`` renders every crop of every batch afresh. Likewise a dead-leaves frame (~0.1 s
at 256 px) serves ``leaves_reuse`` consecutive rendered crops, each at its own place with its own path.

Five photographs are little content: trained long, a network learns them (new blurs of the training photos
kept gaining while the held-out ones fell). ``colour_shuffle`` permutes each use's colour channels: both
pipelines blur each channel alike, so a permuted pair is the pair of the permuted frame, and natural images
look alike across hues while their pixels do not.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple

import numpy as np

from portable_deblur.data.blur import blur_signal, shake_path, to_signal
from portable_deblur.data.content import dead_leaves, palette, photo

PIPELINES = ("srgb", "linear")  # the camera pipelines (``mixed`` draws one per crop)
RING_BATCHES = 4  # the ring holds this many batches' worth of rendered crops
CALIBRATION = 2 ** 40  # crop numbers of calibration samples: dead-leaves frames no training batch reaches


@lru_cache(maxsize=64)
def _photo_signal(name: str, max_side: int, space: str, gamma: float) -> np.ndarray:
    return to_signal(photo(name, max_side), space, gamma)


@lru_cache(maxsize=8)
def _leaves(seed: int, frame: int, size: int, colour_photos: Tuple[str, ...], max_side: int, defocus: float
            ) -> np.ndarray:
    return dead_leaves((seed, 3, frame), (size, size), palette(colour_photos, max_side), defocus=defocus)


@dataclass(frozen=True)
class ShakeScenes:
    """The embedded training set: photographs and endless dead leaves, blurred afresh for every crop."""

    photos: Tuple[str, ...]
    max_side: int
    leaves_share: float  # fraction of crops cut from dead-leaves frames
    leaves_size: int
    leaves_reuse: int
    blur_space: str  # srgb | linear | mixed
    camera_gamma: float
    blur_length: Tuple[float, float]
    rotation: float
    zoom: float
    noise_sigma: float
    seed: int
    render_reuse: int = 1  # rendered crops used this many times on average (the ring above)
    linear_share: float = 0.5  # blur_space=mixed: the share of crops averaged in linear light
    colour_shuffle: bool = False  # permute each use's colour channels
    leaves_defocus: float = 3.0  # the strongest depth-of-field blur of a dead-leaves frame (sigma, pixels)
    renderer: str = "numpy"  # where sub-frames are resampled and summed (blur.RENDERERS)

    @property
    def smallest_side(self) -> int:
        sides = [min(photo(n, self.max_side).shape[:2]) for n in self.photos]
        return min(sides + ([self.leaves_size] if self.leaves_share > 0 else []))

    def frame(self, rng: np.random.Generator, crop_number: int, space: str) -> Tuple[np.ndarray, np.ndarray]:
        """The sharp frame a crop is cut from (uint8) and its signal in ``space``: a dead-leaves frame or a
        training photo (whose signals are kept: converting a 768-px photo costs more than the crop)."""
        if not self.photos or rng.random() < self.leaves_share:
            frame = _leaves(self.seed, crop_number // self.leaves_reuse, self.leaves_size, self.photos, self.max_side,
                            self.leaves_defocus)
            return frame, to_signal(frame, space, self.camera_gamma)
        name = self.photos[rng.integers(len(self.photos))]
        return photo(name, self.max_side), _photo_signal(name, self.max_side, space, self.camera_gamma)

    def render(self, rng: np.random.Generator, crop_number: int, size: Tuple[int, int]
               ) -> Tuple[np.ndarray, np.ndarray]:
        """One fresh (blurry, sharp) uint8 pair of ``size`` (clipped to the frame it is cut from)."""
        space = (("linear" if rng.random() < self.linear_share else "srgb") if self.blur_space == "mixed"
                 else self.blur_space)
        frame, signal = self.frame(rng, crop_number, space)
        lo, hi = np.log(self.blur_length)
        # Log-uniform lengths: hand shake is mostly small with a long tail of large motions.
        path = shake_path(rng, float(np.exp(rng.uniform(lo, hi))), frame.shape[:2], self.rotation, self.zoom)
        h, w = min(size[0], frame.shape[0]), min(size[1], frame.shape[1])
        y, x = rng.integers(frame.shape[0] - h + 1), rng.integers(frame.shape[1] - w + 1)
        blurry = blur_signal(signal, path, rng, self.noise_sigma, space, (y, x, h, w), self.camera_gamma,
                             self.renderer)
        return blurry, frame[y:y + h, x:x + w]

    def ring(self, index: int, batch_size: int) -> np.ndarray:
        """The rendered-crop numbers batch ``index`` uses: ``batch_size`` distinct ones from the ring's window
        after ``index + 1`` batches have each added ``batch_size / render_reuse`` new ones."""
        window = batch_size * min(self.render_reuse, RING_BATCHES)
        newest = int((index + 1) * batch_size / self.render_reuse) + window - batch_size
        rng = np.random.default_rng([self.seed, 5, int(index)])
        return newest - window + rng.permutation(window)[:batch_size] + window  # shifted: never negative

    def batch(self, index: int, batch_size: int, crop: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
        """Batch ``index``: ``batch_size`` aligned crops from the ring, float32 in [0, 1], each in a random
        flip/90-degree rotation and, with ``colour_shuffle``, channel order (drawn per use, so a crop's uses
        differ)."""
        blurry = np.empty((batch_size, crop, crop, 3), np.float32)
        sharp = np.empty_like(blurry)
        rng = np.random.default_rng([self.seed, seed, 6, int(index)])
        colours = np.random.default_rng([self.seed, seed, 7, int(index)])  # its own stream: flips unchanged
        for i, number in enumerate(self.ring(index, batch_size)):
            b, s = _rendered(self, int(number), crop, seed)
            k, flip = rng.integers(4), rng.integers(2)
            b, s = np.rot90(b, k), np.rot90(s, k)
            if flip:
                b, s = b[:, ::-1], s[:, ::-1]
            if self.colour_shuffle:
                order = colours.permutation(3)
                b, s = b[..., order], s[..., order]
            blurry[i], sharp[i] = b / 255.0, s / 255.0
        return blurry, sharp

    def samples(self, shape: Tuple[int, int], count: int, seed: int) -> list:
        """``count`` fresh blurry uint8 images of ``shape`` (clipped to their frame): calibration inputs."""
        rng = np.random.default_rng([self.seed, seed, 4])
        return [self.render(rng, CALIBRATION + i, shape)[0] for i in range(count)]


@lru_cache(maxsize=512)
def _rendered(scenes: ShakeScenes, number: int, crop: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Rendered crop ``number`` of ``scenes`` (kept while the ring may still draw it)."""
    pair = scenes.render(np.random.default_rng([scenes.seed, seed, 2, number]), number, (crop, crop))
    for image in pair:
        image.setflags(write=False)
    return pair


def scenes(cfg) -> ShakeScenes:
    """The ``ShakeScenes`` a ``DataConfig`` describes (``data.renderer=auto`` resolved for this machine)."""
    from portable_deblur.data.blur import resolved_renderer

    return ShakeScenes(tuple(cfg.train_images), cfg.max_side, cfg.leaves_share, cfg.leaves_size, cfg.leaves_reuse,
                       cfg.blur_space, cfg.camera_gamma, tuple(cfg.blur_length), cfg.rotation, cfg.zoom,
                       cfg.noise_sigma, cfg.seed, cfg.render_reuse, cfg.linear_share, cfg.colour_shuffle, cfg.leaves_defocus,
                       resolved_renderer(cfg.renderer))
