"""Image quality metrics, scored as in the SR literature.

PSNR-Y: luma of BT.601 studio swing (MATLAB ``rgb2ycbcr``), ``crop`` pixels removed at each
border (the scale factor, for SR), peak 255 on the 8-bit scale.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from restora.color import rgb_to_y


def psnr(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating], peak: float = 1.0) -> float:
    """PSNR in dB between two arrays of equal shape (same scale, ``peak`` is the max value)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(peak * peak / mse))


def crop_border(x: npt.NDArray[np.generic], crop: int) -> npt.NDArray[np.generic]:
    """Remove ``crop`` pixels on each side of the two leading spatial axes ``(H, W, ...)``."""
    if crop <= 0:
        return x
    return x[crop:-crop, crop:-crop]


def psnr_y(
    test: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    ref: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    crop: int = 0,
) -> float:
    """PSNR on the Y channel.

    Args:
        test: ``(H, W, 3)`` RGB (uint8, or float in [0, 1]) or ``(H, W)`` float32 Y in [0, 1].
        ref: same layout as ``test``.
        crop: pixels removed at each border before scoring (the SR scale factor).

    Returns:
        PSNR-Y in dB (peak 1.0 on the [0, 1] Y scale, equal to 255 on the 8-bit scale).
    """
    yt = rgb_to_y(test) if test.ndim == 3 else test.astype(np.float32)
    yr = rgb_to_y(ref) if ref.ndim == 3 else ref.astype(np.float32)
    return psnr(crop_border(yt, crop).astype(np.float32), crop_border(yr, crop).astype(np.float32), peak=1.0)


def _gaussian_filter_valid(x: npt.NDArray[np.float64], size: int = 11, sigma: float = 1.5) -> npt.NDArray[np.float64]:
    """Separable Gaussian filtering of a 2-D array, 'valid' region only (as the reference SSIM code)."""
    r = size // 2
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g /= g.sum()
    rows = np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 1, x)
    return np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 0, rows)


def ssim(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic], peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of two 2-D arrays."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two equal 2-D arrays, got {a.shape} and {b.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = _gaussian_filter_valid(x), _gaussian_filter_valid(y)
    sxx = _gaussian_filter_valid(x * x) - mx * mx
    syy = _gaussian_filter_valid(y * y) - my * my
    sxy = _gaussian_filter_valid(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def ssim_y(
    test: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    ref: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    crop: int = 0,
) -> float:
    """SSIM on the Y channel (same layouts and border rule as :func:`psnr_y`), on the 8-bit scale."""
    yt = rgb_to_y(test) if test.ndim == 3 else test.astype(np.float32)
    yr = rgb_to_y(ref) if ref.ndim == 3 else ref.astype(np.float32)
    a = crop_border(yt, crop).astype(np.float64) * 255.0
    b = crop_border(yr, crop).astype(np.float64) * 255.0
    return ssim(a, b, peak=255.0)
