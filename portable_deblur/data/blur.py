"""Synthetic camera-shake blur: sub-frames of a sharp image along a random hand-shake path, averaged.

Two camera pipelines make the real datasets, and a network trained on one loses up to 1 dB on the other:
- ``srgb``: GoPro's standard ``blur`` set (Nah, Kim, Lee, CVPR 2017) averages 7-13 consecutive 240-fps frames
  *in the camera's sRGB values*; brightness is kept (sharp -> blurry within +-0.001 on real pairs).
- ``linear``: the physical one. A sensor integrates light, so REDS (Nah et al., CVPRW 2019) averaged its
  (interpolated) frames in linear signal through an estimated inverse camera response, as GoPro's
  ``blur_gamma`` set did through a gamma curve. Concave responses make the average brighter: real REDS pairs
  brighten by +0.018..+0.034. We use a gamma response ``signal = value ** camera_gamma``, its exponent
  calibrated so rendered pairs brighten as REDS's do (``benchmarks/embedded_data.py`` prints both).

Per sub-frame one homography (translation, in-plane rotation about the frame centre, slight zoom), resampled
bilinearly (sub-pixel accurate, reflected at the borders), then shot + read noise and 8-bit quantisation.
Rotation and zoom make the blur vary across the frame, as real shake does. The middle sub-frame is the
identity, so the sharp image is the sharp frame (GoPro uses the middle frame).
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

MAX_SUBFRAME_STEP = 2.0  # pixels a pixel moves between sub-frames, frame average (bilinear fills the gaps)


@dataclass(frozen=True)
class ShakePath:
    """Per sub-frame: translation (x, y) in pixels, rotation (radians) and zoom about the frame centre."""

    shift: np.ndarray  # [n, 2]
    angle: np.ndarray  # [n]
    scale: np.ndarray  # [n]


def _smooth_curve(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """A smooth random curve (integrated random-walk velocity), zero at its middle sample, unit arc length."""
    velocity = rng.normal(0, 1, dims) + np.cumsum(rng.normal(0, rng.uniform(0.1, 0.6), (n, dims)), 0)
    curve = np.cumsum(velocity, 0)
    curve -= curve[n // 2]
    arc = np.sum(np.linalg.norm(np.diff(curve, axis=0), axis=1)) if n > 1 else 0.0
    return curve / arc if arc > 0 else curve * 0.0


def shake_path(rng: np.random.Generator, length: float, size: Tuple[int, int], rotation: float = 0.5,
               zoom: float = 0.1) -> ShakePath:
    """A random hand-shake path along which a pixel travels ``length`` pixels, averaged over the frame.

    Besides translation, in-plane rotation about the frame centre (up to ``rotation`` times the translation's
    displacement at the corners) and zoom (up to ``zoom`` times) move pixels by amounts that grow with their
    distance from the centre, so the blur varies across the frame. The sub-frame count keeps each pixel's
    step at most ``MAX_SUBFRAME_STEP`` pixels on average (at least 7 sub-frames, as GoPro's 7-13).
    """
    n = max(7, int(np.ceil(length / MAX_SUBFRAME_STEP)) + 1) | 1  # odd: the middle sub-frame is the identity
    radius = 0.5 * float(np.hypot(*size))  # corner distance from the centre
    shift = _smooth_curve(rng, n, 2)
    angle = _smooth_curve(rng, n, 1)[:, 0] * rng.uniform(0, rotation) / radius
    scale = _smooth_curve(rng, n, 1)[:, 0] * rng.uniform(0, zoom) / radius
    unit = ShakePath(shift, angle, 1.0 + scale)
    k = length / max(mean_arc(unit, size), 1e-9)  # small angles: displacements scale linearly with k
    return ShakePath(shift * k, angle * k, 1.0 + scale * k)


def mean_arc(path: ShakePath, size: Tuple[int, int]) -> float:
    """The trajectory length in pixels of a 5x5 grid of frame points (corners included), averaged."""
    cy, cx = (size[0] - 1) / 2.0, (size[1] - 1) / 2.0
    gy, gx = np.meshgrid(np.linspace(-cy, cy, 5), np.linspace(-cx, cx, 5), indexing="ij")
    cos, sin = np.cos(path.angle)[:, None, None], np.sin(path.angle)[:, None, None]
    s = path.scale[:, None, None]
    x = s * (cos * gx - sin * gy) + path.shift[:, 0, None, None]
    y = s * (sin * gx + cos * gy) + path.shift[:, 1, None, None]
    return float(np.hypot(np.diff(x, axis=0), np.diff(y, axis=0)).sum(0).mean())


def inverse_homographies(path: ShakePath, size: Tuple[int, int]) -> np.ndarray:
    """``[n, 8]`` output->input maps (TF's projective-transform layout) for each sub-frame of ``path``.

    Sub-frame k maps a sharp-frame point p to ``c + s_k R_k (p - c) + t_k``; sampling needs the inverse.
    """
    cy, cx = (size[0] - 1) / 2.0, (size[1] - 1) / 2.0
    out = np.zeros((len(path.angle), 8), np.float64)
    for k, ((tx, ty), a, s) in enumerate(zip(path.shift, path.angle, path.scale)):
        cos, sin = np.cos(a) / s, np.sin(a) / s  # inverse of s R(a) is R(-a) / s
        # p = c + R(-a)/s (q - c - t)
        out[k, :6] = (cos, sin, cx - cos * (cx + tx) - sin * (cy + ty),
                      -sin, cos, cy + sin * (cx + tx) - cos * (cy + ty))
    return out.astype(np.float32)


def to_signal(image: np.ndarray, space: str, gamma: float) -> np.ndarray:
    """A uint8 HxWx3 image as the float32 signal its sub-frames are averaged in: the value / 255 (``srgb``) or
    linear light through the gamma camera response (``linear``). Training scenes convert each frame once."""
    values = np.arange(256, dtype=np.float64) / 255.0
    table = (values ** gamma if space == "linear" else values).astype(np.float32)
    return table[image]


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Integer sample positions reflected into ``[0, size)`` (half-sample symmetric: d c b a | a b c d)."""
    index = np.mod(index, 2 * size)
    return np.where(index >= size, 2 * size - 1 - index, index)


# Where sub-frames are resampled and summed (``data.renderer``): numpy on the CPU, or TensorFlow ops on the
# device TensorFlow places them on (a GPU when it sees one; ``auto`` picks tensorflow exactly then). Both give
# the same crops within float rounding; everything random (paths, windows, noise) is drawn by numpy either way.
RENDERERS = ("auto", "numpy", "tensorflow")


def render_subframes(signal: np.ndarray, path: ShakePath, window: Optional[Tuple[int, int, int, int]] = None,
                     renderer: str = "numpy") -> np.ndarray:
    """The mean of float ``signal`` (HxWxC) resampled along ``path`` (bilinear, reflected at the borders).

    ``window=(y, x, h, w)`` renders only that part of the frame, at the cost of its own pixels; the path still
    moves the whole frame, so the window gets the blur of its place in it. Sub-frames are summed in float:
    8-bit sub-frames truncate, which darkened every blurry image by half a level (and networks learned to
    darken).
    """
    y0, x0, h, w = window or (0, 0, *signal.shape[:2])
    height, width, channels = signal.shape
    if resolved_renderer(renderer) == "tensorflow":
        return _render_tf(signal, inverse_homographies(path, (height, width)), (y0, x0, h, w)).numpy()
    flat = signal.reshape(-1, channels)
    ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32)
    total = np.zeros((h * w, channels), np.float32)
    for a0, a1, a2, b0, b1, b2, _, _ in inverse_homographies(path, (height, width)):
        sx, sy = a0 * xs + a1 * ys + a2, b0 * xs + b1 * ys + b2
        fx, fy = np.floor(sx), np.floor(sy)
        wx, wy = (sx - fx).reshape(-1, 1), (sy - fy).reshape(-1, 1)
        ix, iy = fx.astype(np.int32), fy.astype(np.int32)
        c0, c1 = _reflect(ix, width).ravel(), _reflect(ix + 1, width).ravel()
        r0, r1 = _reflect(iy, height).ravel() * width, _reflect(iy + 1, height).ravel() * width
        top = flat[r0 + c0] * (1 - wx) + flat[r0 + c1] * wx
        bottom = flat[r1 + c0] * (1 - wx) + flat[r1 + c1] * wx
        total += top + (bottom - top) * wy
    return (total / len(path.angle)).reshape(h, w, channels)


def resolved_renderer(renderer: str) -> str:
    """``auto``: ``tensorflow`` when TensorFlow sees a GPU, else ``numpy`` (the CPU renders faster in numpy)."""
    if renderer != "auto":
        return renderer
    return "tensorflow" if _gpu_visible() else "numpy"


@lru_cache(maxsize=1)
def _gpu_visible() -> bool:
    from portable_deblur.backend import tf

    return bool(tf.config.list_physical_devices("GPU"))


def _render_tf(signal: np.ndarray, maps: np.ndarray, window: Tuple[int, int, int, int]):
    """``render_subframes`` in TensorFlow ops: the same bilinear taps, reflected indices and sum, batched over
    the sub-frames (one gather per corner for all of them)."""
    from portable_deblur.backend import tf

    y0, x0, h, w = window
    height, width, channels = signal.shape
    flat = tf.reshape(tf.convert_to_tensor(signal, tf.float32), (-1, channels))
    ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32)
    m = tf.convert_to_tensor(maps, tf.float32)[:, :6, None, None]  # [n, 6, 1, 1]
    sx = m[:, 0] * xs + m[:, 1] * ys + m[:, 2]
    sy = m[:, 3] * xs + m[:, 4] * ys + m[:, 5]
    fx, fy = tf.floor(sx), tf.floor(sy)
    wx, wy = (sx - fx)[..., None], (sy - fy)[..., None]
    ix, iy = tf.cast(fx, tf.int32), tf.cast(fy, tf.int32)

    def reflect(index, size):
        index = tf.math.floormod(index, 2 * size)
        return tf.where(index >= size, 2 * size - 1 - index, index)

    c0, c1 = reflect(ix, width), reflect(ix + 1, width)
    r0, r1 = reflect(iy, height) * width, reflect(iy + 1, height) * width
    top = tf.gather(flat, r0 + c0) * (1 - wx) + tf.gather(flat, r0 + c1) * wx
    bottom = tf.gather(flat, r1 + c0) * (1 - wx) + tf.gather(flat, r1 + c1) * wx
    return tf.reduce_sum(top + (bottom - top) * wy, axis=0) / float(len(maps))


def blur_signal(signal: np.ndarray, path: ShakePath, rng: np.random.Generator, noise_sigma: float, space: str,
                window: Optional[Tuple[int, int, int, int]] = None, camera_gamma: float = 2.2,
                renderer: str = "numpy") -> np.ndarray:
    """The blurry uint8 image of a frame given as its ``to_signal`` (or its ``window``): sub-frames averaged
    along ``path`` (by ``renderer``), encoded back to 8-bit values through the camera response, with sensor
    noise."""
    mean = render_subframes(signal, path, window, renderer)
    values = np.clip(mean, 0.0, 1.0) ** (1.0 / camera_gamma) if space == "linear" else mean
    # Sensor noise: signal-dependent (shot) plus read noise, std up to noise_sigma at mid grey.
    sigma = rng.uniform(0, noise_sigma)
    noise = rng.standard_normal(values.shape, dtype=np.float32)
    values = values + noise * sigma * np.sqrt(0.5 * np.clip(values, 0, 1) + 0.125)
    return np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)


def blur_image(sharp: np.ndarray, path: ShakePath, rng: np.random.Generator, noise_sigma: float,
               space: str = "srgb", window: Optional[Tuple[int, int, int, int]] = None,
               camera_gamma: float = 2.2) -> np.ndarray:
    """Blur a uint8 HxWx3 image (or its ``window``) along ``path``, averaging in ``space`` (``srgb`` or
    ``linear`` through the gamma camera response); add sensor noise; return uint8."""
    return blur_signal(to_signal(sharp, space, camera_gamma), path, rng, noise_sigma, space, window, camera_gamma)
