"""GoPro-style synthetic motion blur: random camera-shake trajectories applied in linear light.

GoPro (Nah et al. 2017) averages consecutive high-speed frames, i.e. integrates the scene *radiance* along
the camera path. We mimic that: undo the sRGB gamma, convolve with a kernel rasterised from a smooth random
walk, redo the gamma, add mild sensor noise and quantise to 8 bits.
"""
import numpy as np
from scipy.signal import fftconvolve


def shake_kernel(rng: np.random.Generator, length: float) -> np.ndarray:
    """A normalised blur kernel from a smooth random camera trajectory of arc length ``length`` pixels."""
    n = 256
    turn = np.cumsum(rng.normal(0.0, rng.uniform(0.02, 0.12), n))  # smoothly wandering direction
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(turn) / n * rng.uniform(1, 6)
    speed = np.clip(1.0 + np.cumsum(rng.normal(0.0, 0.05, n)), 0.2, None)  # hand speeds up / slows down
    steps = np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)])
    arc = np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))
    path = (path - path.mean(0)) * (length / max(arc, 1e-6))
    half = int(np.ceil(np.abs(path).max())) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    xy = path + half
    x0, y0 = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)  # bilinear splat of each trajectory sample
    return (kernel / kernel.sum()).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB encoding."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def blur_image(sharp: np.ndarray, kernel: np.ndarray, rng: np.random.Generator, noise_sigma: float) -> np.ndarray:
    """Blur a uint8 HxWx3 image with ``kernel`` in linear light, add noise, return uint8."""
    lin = srgb_to_linear(sharp.astype(np.float64) / 255.0)
    pad = kernel.shape[0] // 2
    padded = np.pad(lin, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([fftconvolve(padded[..., c], kernel, mode="valid") for c in range(lin.shape[2])], -1)
    srgb = linear_to_srgb(out)
    # Mild sensor noise: signal-dependent (shot) plus read noise, std up to noise_sigma at mid grey.
    sigma = rng.uniform(0, noise_sigma)
    srgb = srgb + rng.normal(0, 1, srgb.shape) * sigma * np.sqrt(0.5 * srgb + 0.5 * 0.25)
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
