"""GoPro-style synthetic motion blur: sub-frames of a sharp photo along a random hand-shake path, averaged.

GoPro (Nah et al. 2017) made its standard ``blur`` set by averaging 7-13 consecutive 240-fps frames *in the
camera's sRGB values*; the gamma-corrected (linear-light) average is its separate ``blur_gamma`` set. Real GoPro
test frames sit at roughly 24-28 dB. We render the same way: one homography per sub-frame (translation,
in-plane rotation about the frame centre, slight zoom), each sub-frame resampled bilinearly (sub-pixel
accurate), the sub-frames averaged in sRGB (``blur_space=srgb``, default) or linear light (``linear``, the
``blur_gamma`` variant), then shot + read noise and 8-bit quantisation. Rotation and zoom make the blur vary
across the frame, as real shake does. Networks trained on linear-light averages learned to darken textures
and made real frames worse in this project's measurements (../shared/REFERENCES.md); sRGB transferred.

The middle sub-frame is the identity, so the sharp photo is the sharp frame (GoPro uses the middle frame).
"""
from dataclasses import dataclass
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


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB encoding."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def render_subframes(image: np.ndarray, path: ShakePath, window: Optional[Tuple[int, int, int, int]] = None
                     ) -> np.ndarray:
    """The mean of ``image`` (HxWx3) resampled along ``path`` (bilinear, reflected at the borders), as
    float32. Sub-frames stay float: the op's uint8 output truncates, which darkened every blurry image by
    half a level on average (and networks learned to darken).

    ``window=(y, x, h, w)`` renders only that part of the frame, at the cost of its own pixels; the path
    still moves the whole frame, so the window gets the blur of its place in it.
    """
    from portable_deblur.backend import tf

    y0, x0, h, w = window or (0, 0, *image.shape[:2])
    transforms = inverse_homographies(path, image.shape[:2])
    transforms[:, 2] += transforms[:, 0] * x0 + transforms[:, 1] * y0  # window pixel -> frame pixel
    transforms[:, 5] += transforms[:, 3] * x0 + transforms[:, 4] * y0
    size = (h, w)
    source = tf.constant(image[None], tf.float32)
    total = tf.zeros((h, w, image.shape[2]), tf.float32)
    for start in range(0, len(transforms), 8):  # chunks bound memory for large photos
        chunk = transforms[start:start + 8]
        frames = tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.repeat(source, len(chunk), axis=0), transforms=tf.constant(chunk),
            output_shape=tf.constant(size, tf.int32), fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
        total += tf.reduce_sum(frames, 0)
    return total.numpy() / len(transforms)


def blur_image(sharp: np.ndarray, path: ShakePath, rng: np.random.Generator, noise_sigma: float,
               space: str = "srgb", window: Optional[Tuple[int, int, int, int]] = None) -> np.ndarray:
    """Blur a uint8 HxWx3 image (or its ``window``) along ``path``, averaging in ``space``; add noise;
    return uint8."""
    if space == "linear":
        linear = srgb_to_linear(sharp.astype(np.float32) / 255.0).astype(np.float32)
        srgb = linear_to_srgb(render_subframes(linear, path, window))
    else:
        srgb = render_subframes(sharp, path, window) / 255.0
    # Sensor noise: signal-dependent (shot) plus read noise, std up to noise_sigma at mid grey.
    sigma = rng.uniform(0, noise_sigma)
    noise = rng.standard_normal(srgb.shape, dtype=np.float32)
    srgb = srgb + noise * sigma * np.sqrt(0.5 * np.clip(srgb, 0, 1) + 0.125)
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
