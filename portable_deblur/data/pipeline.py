"""Training input: random aligned crops -- cut from blurry/sharp pairs, or rendered fresh by the embedded
source's ``ShakeScenes`` -- streamed through ``tf.data``.

Batch ``b`` is a pure function of (seed, b). For pairs: which pairs it reads (its slice of a seeded permutation of the
whole pair list, a new one every epoch: a full shuffle, not a buffer), where it crops, how it flips and
rotates. Batches are made in parallel (PNG decoding releases the GIL) and prefetched, so memory is bounded by
that queue, never by the dataset, and a run resumed at step ``s`` sees exactly the batches an uninterrupted
run would (warm starts, continued training). ``crops_per_pair`` crops share one decoded pair, which keeps a
GPU fed from 1280x720 PNGs without reading each file once per crop.
"""
import os
from typing import Tuple

import numpy as np

from portable_deblur.data.scenes import ShakeScenes
from portable_deblur.registry import ConfigError


def _pair_indices(n: int, seed: int, first: int, count: int) -> np.ndarray:
    """Positions ``first .. first+count`` of the endless sequence of per-epoch permutations of ``n`` pairs."""
    positions = np.arange(first, first + count)
    out = np.empty(count, np.int64)
    for epoch in np.unique(positions // n):
        order = np.random.default_rng([seed, 1, int(epoch)]).permutation(n)
        mask = positions // n == epoch
        out[mask] = order[positions[mask] % n]
    return out


def crop_batch(train, index: int, batch_size: int, crop: int, crops_per_pair: int = 1,
               seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Batch ``index``: ``batch_size`` aligned crops with flips and 90-degree rotations, float32 in [0, 1];
    rendered fresh from ``ShakeScenes``, or cut from ``train``'s pairs."""
    if isinstance(train, ShakeScenes):
        return train.batch(int(index), batch_size, crop, seed)
    pairs = train
    groups = -(-batch_size // crops_per_pair)
    rng = np.random.default_rng([seed, 0, int(index)])
    blurry = np.empty((groups * crops_per_pair, crop, crop, 3), np.float32)
    sharp = np.empty_like(blurry)
    i = 0
    for p in _pair_indices(len(pairs), seed, int(index) * groups, groups):
        pair = pairs[p]
        b_img, s_img = pair.blurry, pair.sharp  # a file pair decodes here, once for all its crops
        h, w = s_img.shape[:2]
        for _ in range(crops_per_pair):
            y, x = rng.integers(h - crop + 1), rng.integers(w - crop + 1)
            b, s = b_img[y:y + crop, x:x + crop], s_img[y:y + crop, x:x + crop]
            k, flip = rng.integers(4), rng.integers(2)
            b, s = np.rot90(b, k), np.rot90(s, k)
            if flip:
                b, s = b[:, ::-1], s[:, ::-1]
            blurry[i], sharp[i] = b / 255.0, s / 255.0
            i += 1
    keep = rng.permutation(len(blurry))[:batch_size]  # crops of one pair spread over the batch
    return blurry[keep], sharp[keep]


def check_crop(train, crop: int) -> None:
    """Every training image must hold a ``crop`` x ``crop`` window."""
    smallest = train.smallest_side if isinstance(train, ShakeScenes) else min(min(p.shape) for p in train)
    if crop > smallest:
        raise ConfigError(f"train.crop={crop} is larger than the smallest training image ({smallest} px)")


def calibration_images(train, shape: Tuple[int, int], count: int, seed: int = 0) -> list:
    """``count`` blurry uint8 training images of at most ``shape``: fresh renders, or crops of random pairs."""
    if isinstance(train, ShakeScenes):
        return train.samples(shape, count, seed)
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = train[rng.integers(len(train))].blurry
        h, w = min(shape[0], image.shape[0]), min(shape[1], image.shape[1])
        y, x = rng.integers(image.shape[0] - h + 1), rng.integers(image.shape[1] - w + 1)
        images.append(image[y:y + h, x:x + w])
    return images


def batches(train, batch_size: int, crop: int, crops_per_pair: int = 1, seed: int = 0,
            start: int = 0, count: int = 1):
    """A ``tf.data.Dataset`` of batches ``start .. start+count`` as ``(blurry, sharp)`` float32 tensors."""
    from portable_deblur.backend import tf

    check_crop(train, crop)

    def make(index):
        return crop_batch(train, int(index), batch_size, crop, crops_per_pair, seed)

    def load(index):
        blurry, sharp = tf.numpy_function(make, [index], (tf.float32, tf.float32), stateful=False)
        shape = (batch_size, crop, crop, 3)
        return tf.ensure_shape(blurry, shape), tf.ensure_shape(sharp, shape)

    # Fixed parallelism (a batch per core, at most 8, and 2 ready ones), without tf.data's autotuner: with it,
    # a fit often returned only 20.5 s or 41.0 s after it started whatever its steps took (a 100-step fit of
    # 21 s of steps took 41 s; benchmarks/input_teardown.py) -- sums of periods doubling from 10 ms, so we
    # take it for the autotuner's background thread, which dropping the iterator waited for.
    parallel = min(os.cpu_count() or 1, 8)
    ds = tf.data.Dataset.range(start, start + count)
    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
