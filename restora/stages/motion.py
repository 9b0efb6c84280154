"""Global motion between frames: measure a translation, and apply one.

Shared by ``stabilize`` (the camera path), and ``dust_scratch`` and ``degrain`` (aligning the
neighbours of a frame).
Translation only: phase correlation finds the whole-pixel shift and a fit of the cross-power
spectrum's phase slope the fraction; a Keys cubic resampler moves a frame by a sub-pixel amount.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray

MEASURE_WIDTH = 480  # frames are block-averaged to at most this width for motion measurement
SLOPE_BAND = 0.15  # cycles per pixel: the sub-pixel phase fit uses frequencies below this
MIN_PEAK = 0.06  # phase-correlation peak below this (no common structure: blur, flat or faded frames): failed


def measure_factor(width: int) -> int:
    """The block size that brings a frame ``width`` pixels wide to at most :data:`MEASURE_WIDTH`."""
    return max(1, -(-width // MEASURE_WIDTH))


def block_mean(g: FloatArray, f: int) -> FloatArray:
    """``(H, W)`` -> ``(H // f, W // f)`` means of ``f x f`` blocks."""
    h, w = g.shape[0] // f * f, g.shape[1] // f * f
    out: FloatArray = g[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3), dtype=np.float32)
    return out


def measure_shift(a: FloatArray, b: FloatArray) -> tuple[float, float] | None:
    """Global translation ``(dx, dy)`` in pixels of picture ``b`` relative to ``a`` (content at ``p``
    in ``a`` is at ``p + (dx, dy)`` in ``b``), both ``(H, W)`` float32; None (no reliable match)
    when the phase-correlation peak is weaker than :data:`MIN_PEAK`.

    Whole pixels from the phase-correlation peak (Hann-windowed); the fraction from a weighted
    least-squares fit of the remaining phase slope of the cross-power spectrum over the low
    frequencies (below :data:`SLOPE_BAND` cycles per pixel, weighted by magnitude): within 0.05 pixel
    on a real picture (``tests/test_temporal_stages.py``), where a parabola through the peak is biased
    towards whole pixels.
    """
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    cross = np.fft.rfft2((b - b.mean()) * win) * np.conj(np.fft.rfft2((a - a.mean()) * win))
    mag = np.abs(cross)
    r = np.fft.irfft2(cross / np.maximum(mag, 1e-12), s=(h, w))
    py, px = np.unravel_index(int(np.argmax(r)), r.shape)
    if r[py, px] < MIN_PEAK:
        return None
    ix, iy = (px - w if px > w / 2 else px), (py - h if py > h / 2 else py)
    u, v = np.fft.rfftfreq(w)[None, :], np.fft.fftfreq(h)[:, None]
    rest = cross * np.exp(2j * np.pi * (u * ix + v * iy))  # phase left: -2 pi (u fx + v fy)
    sel = (u < SLOPE_BAND) & (np.abs(v) < SLOPE_BAND) & (mag > 0)
    sw = np.sqrt(mag[sel])
    design = np.stack([np.broadcast_to(u, sel.shape)[sel], np.broadcast_to(v, sel.shape)[sel]], 1) * (2 * np.pi)
    if len(sw) < 3:
        return float(ix), float(iy)
    (fx, fy), *_ = np.linalg.lstsq(design * sw[:, None], np.angle(rest[sel]) * sw, rcond=None)
    return float(ix - np.clip(fx, -1, 1)), float(iy - np.clip(fy, -1, 1))


def frame_shift(a: FloatArray, b: FloatArray) -> tuple[float, float] | None:
    """:func:`measure_shift` of two full-size ``(H, W)`` gray planes, measured on copies reduced to
    at most :data:`MEASURE_WIDTH` pixels wide, in full-size pixels."""
    f = measure_factor(a.shape[1])
    s = measure_shift(block_mean(a, f), block_mean(b, f)) if f > 1 else measure_shift(a, b)
    return None if s is None else (s[0] * f, s[1] * f)


def aligned_to(frame: FloatArray, ref_gray: FloatArray) -> FloatArray:
    """``(H, W, 3)`` float32 RGB ``frame`` moved onto the picture whose gray level is ``ref_gray``
    (``(H, W)``) by the global shift between them (:func:`frame_shift`); unchanged when the shift is
    under 0.05 pixel or cannot be measured."""
    from restora.stages.temporal import GRAY_WEIGHTS

    shift = frame_shift(frame @ GRAY_WEIGHTS, ref_gray)
    dx, dy = shift if shift is not None else (0.0, 0.0)
    return shift_image(frame, dx, dy) if abs(dx) >= 0.05 or abs(dy) >= 0.05 else frame


def _keys(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Keys cubic convolution kernel (a = -0.5) at distances ``x``."""
    x = np.abs(x)
    return np.where(x <= 1, (1.5 * x - 2.5) * x * x + 1, np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0.0))


def _shift_axis(img: FloatArray, d: float, axis: int) -> FloatArray:
    """``img`` moved by ``d`` pixels along ``axis`` (output ``p`` reads input ``p - d``), cubic, edges repeated.

    The fraction of the move is the same for every pixel, so the four taps are four slices of the
    edge-padded image (no gathers)."""
    n = img.shape[axis]
    d = float(np.clip(d, -(n + 3), n + 3))  # beyond the frame every tap reads the edge anyway
    b0 = int(np.floor(-d))  # output p reads p + b0 + frac
    wts = _keys(np.asarray(-d - b0 - np.arange(-1, 3), dtype=np.float64))
    pad_lo, pad_hi = max(0, 1 - b0), max(0, b0 + 2)
    widths = [(pad_lo, pad_hi) if ax == axis else (0, 0) for ax in range(img.ndim)]
    padded = np.pad(img, widths, mode="edge")
    out = np.zeros_like(img)
    for k, wk in enumerate(wts):
        start = b0 - 1 + k + pad_lo
        view = padded[(slice(None),) * axis + (slice(start, start + n),)]
        out += np.float32(wk) * view
    return out


def shift_image(img: FloatArray, dx: float, dy: float) -> FloatArray:
    """``(H, W, C)`` float32 moved by ``(dx, dy)`` pixels (content at ``p`` goes to ``p + (dx, dy)``),
    Keys cubic, the uncovered edge strip repeating the edge; not clipped."""
    out = img
    if abs(dx) >= 1e-3:
        out = _shift_axis(out, dx, axis=1)
    if abs(dy) >= 1e-3:
        out = _shift_axis(out, dy, axis=0)
    return out
