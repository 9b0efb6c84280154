"""Degradation operators that turn clean training images into realistic low-quality inputs.

Fixed operators (``add_noise(img, sigma)``) are separate from random ones
(``random_degradation(img, rng)``); every random function takes a ``numpy.random.Generator``,
never the global RNG (reproducible recipes).

Images are ``(H, W, 3)`` uint8 RGB unless stated otherwise.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

U8 = npt.NDArray[np.uint8]


def bicubic_resize(img: U8, width: int, height: int) -> U8:
    """Antialiased bicubic resize (PIL, a = -0.5, close to MATLAB ``imresize``)."""
    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC))


def downscale(img: U8, scale: int) -> U8:
    """Bicubic downscale by an integer factor; ``img`` must be a multiple of ``scale`` in size."""
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"{w}x{h} is not a multiple of {scale}")
    return bicubic_resize(img, w // scale, h // scale)


def gaussian_blur(img: U8, sigma: float) -> U8:
    """Isotropic Gaussian blur with standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return img
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))


def add_noise(img: U8, sigma: float, rng: np.random.Generator) -> U8:
    """Additive white Gaussian noise, ``sigma`` on the 8-bit scale, quantized back to uint8."""
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img: U8, quality: int) -> U8:
    """JPEG round trip at ``quality`` (1-95), 4:2:0 chroma as most encoders use."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def mild_sr_degradation(hr: U8, scale: int, rng: np.random.Generator) -> U8:
    """Random mild degradation for SR robustness: slight blur, bicubic downscale, noise, JPEG.

    Args:
        hr: ``(H, W, 3)`` uint8, a multiple of ``scale`` in size.
        scale: integer downscale factor.
        rng: the generator all randomness comes from.

    Returns:
        ``(H/scale, W/scale, 3)`` uint8 low-resolution image.
    """
    img = gaussian_blur(hr, float(rng.uniform(0.2, 0.8))) if rng.random() < 0.5 else hr
    lr = downscale(img, scale)
    if rng.random() < 0.5:
        lr = add_noise(lr, float(rng.uniform(0.5, 3.0)), rng)
    if rng.random() < 0.5:
        lr = jpeg(lr, int(rng.integers(75, 96)))
    return lr
