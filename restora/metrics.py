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


def box_sum(x: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.float64]:
    """Sum over a ``size`` x ``size`` window centred on each pixel (edge-padded), same shape."""
    r = size // 2
    c = np.pad(x, r, mode="edge").cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0)))
    out: npt.NDArray[np.float64] = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    return out


def block_flow(
    prev: npt.NDArray[np.generic], cur: npt.NDArray[np.generic], radius: int = 8, window: int = 9
) -> npt.NDArray[np.int64]:
    """Dense integer backward flow by block matching: for every pixel ``p`` of ``cur`` the shift
    ``d`` (``|dy|, |dx| <= radius``) minimising the squared difference between the ``window`` x
    ``window`` neighbourhoods of ``cur`` at ``p`` and ``prev`` at ``p + d``.

    ``(H, W)`` planes (any numeric dtype) -> ``(H, W, 2)`` int64 ``(dy, dx)``; ties go to the
    smallest shift.
    """
    a = np.asarray(prev, np.float64)
    b = np.asarray(cur, np.float64)
    h, w = b.shape
    pad = np.pad(a, radius, mode="edge")
    best = np.full((h, w), np.inf)
    flow = np.zeros((h, w, 2), np.int64)
    shifts = sorted(((dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)),
                    key=lambda d: d[0] ** 2 + d[1] ** 2)  # fmt: skip
    for dy, dx in shifts:
        cost = box_sum((b - pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w]) ** 2, window)
        better = cost < best - 1e-9
        best[better] = cost[better]
        flow[better] = (dy, dx)
    return flow


def warp(
    prev: npt.NDArray[np.generic], flow: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """``prev`` sampled at ``p + flow[p]`` (``(H, W)`` -> ``(H, W)`` float64) and the mask of pixels
    whose source lies inside the frame."""
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    sy, sx = yy + flow[..., 0], xx + flow[..., 1]
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    out = np.asarray(prev, np.float64)[np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)]
    return out, inside


MotionPairs = list[tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]]


def reference_motion(reference: npt.NDArray[np.generic], tolerance: float = 10.0) -> MotionPairs:
    """Motion between consecutive ground-truth frames for :func:`temporal_warp_error`: for each
    ``t >= 1`` the :func:`block_flow` from frame ``t - 1`` to ``t`` and the mask of pixels where it
    holds (source inside the frame, warped reference within ``tolerance`` of the reference: no
    occlusion or failed match).

    ``(T, H, W)`` luma on the 8-bit scale -> ``T - 1`` pairs of ``(H, W, 2)`` flow and ``(H, W)`` mask.
    """
    pairs = []
    for t in range(1, len(reference)):
        flow = block_flow(reference[t - 1], reference[t])
        ref_w, inside = warp(reference[t - 1], flow)
        pairs.append((flow, inside & (np.abs(ref_w - np.asarray(reference[t], np.float64)) <= tolerance)))
    return pairs


def temporal_warp_error(frames: npt.NDArray[np.generic], motion: MotionPairs, border: int = 0) -> float:
    """Flicker metric: mean squared difference between each output frame and the previous output
    frame motion-compensated to it (the warping error E_warp of Lai et al., ECCV 2018).

    Motion comes from the ground truth (:func:`reference_motion`), never from the output being
    judged; occluded or unmatched pixels and ``border`` pixels at each edge are left out. The
    reference scored against its own motion gives the floor of the measure (integer-pixel motion).

    Args:
        frames: ``(T, H, W)`` output luma on the 8-bit scale.
        motion: :func:`reference_motion` of the ground truth, ``T - 1`` pairs.

    Returns:
        Mean over frame pairs of the mean squared warped difference over valid pixels (8-bit scale).
    """
    if len(motion) != len(frames) - 1:
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} motion pairs, got {len(motion)}")
    errs = []
    for t, (flow, valid) in enumerate(motion, start=1):
        out_w, _ = warp(frames[t - 1], flow)
        diff = (np.asarray(frames[t], np.float64) - out_w) ** 2
        errs.append(float(crop_border(diff, border)[crop_border(valid, border)].mean()))
    return float(np.mean(errs))
