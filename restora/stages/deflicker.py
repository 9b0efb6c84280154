"""Deflicker stage: remove frame-to-frame exposure and contrast fluctuation (classical, no model).

Flicker in scanned film and in footage shot under mains lighting is a change of the whole frame's
tone from one frame to the next: each frame is roughly ``a_t * x + b_t`` of what a steady exposure
would give, with ``a_t``, ``b_t`` wobbling around 1 and 0. The stage measures each frame's tone as
19 quantiles (5 %, 10 %, ..., 95 %) of its gray level, smooths each quantile over ``window``
frames on each side with a local quadratic fit (``restora.stages.temporal``: fades and other
smooth changes pass through; the window never crosses a cut, the pipeline clamps it at shot ends), and
maps the frame with the gain and offset that best carry its quantiles onto the smoothed ones
(least squares), the same on R, G and B. Quantiles rather than means keep a moving object's
change of the histogram from being read as flicker as much as possible; a gain and offset rather
than a free tone curve keep the correction from reshaping the picture's contrast.

``mode=local`` also corrects flicker that differs across the frame (uneven or breathing gate
illumination, a lamp lighting one side) and from channel to channel (colour breathing). The frame's
correction is then the global gain and offset above plus, per channel, a change of gain and offset,
and a spatial gain field ``s . (x, y, x^2 + y^2)`` shared by the channels (``x``, ``y`` in [-1, 1]
across the frame: a tilt of the light, the corners against the middle). These are fitted on the
19 quantiles per channel of each of :data:`GRID` x :data:`GRID` regions, smoothed along time as
above, in one linear least-squares problem per frame (:func:`fit_fields`). Region histograms are
far more disturbed by motion than the whole frame's, so three guards keep a moving picture from
being read as flicker: a region whose tone changed in a way no smooth field explains is weighted
down (iteratively reweighted, Tukey's bisquare on each region's misfit); the terms are kept only in
the measure that they explain the regions' tone better than one gain and offset do
(:data:`GATE`); and the overall gain and offset stay those of the whole frame. On clean footage and
on uniform flicker ``mode=local`` therefore gives what ``mode=global`` gives (within 0.4 dB on the
clips measured, mostly bit for bit). A field is a smooth illumination change and nothing sharper:
light that changes region by region, or flicker on a shot too short to smooth over, stays.

Not corrected in the default ``mode=global``: flicker that differs across the frame and per-channel
colour flicker. No pixel is synthesized in either mode.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, quantize, to_unit
from restora.errors import ConfigError
from restora.stages.base import StageContext, check_strength
from restora.stages.motion import BISQUARE, MAD_TO_STD
from restora.stages.temporal import TemporalStage, check_window, gray, smooth_at

QUANTILES = np.arange(5, 100, 5, dtype=np.float64)  # percent
GAIN_LIMITS = (0.5, 2.0)  # a correction outside these is not flicker; clamped
FLAT = 0.02  # quantile spread (5 % to 95 %) below which a frame has no contrast to fit a gain on
MEASURE_PIXELS = 64_000  # about this many pixels are sampled per frame for the quantiles
MODES = ("global", "local")
GRID = 4  # local mode: regions per side the tone is measured in (16 regions)
REWEIGHTS = 4  # local mode: iterations of the reweighted fit
MIN_SCALE = 0.5 / 255  # the robust misfit scale never goes below half an 8-bit code
RIDGE = 1e-3  # pull towards no correction, so that flat frames and regions leave the fit well posed
# local mode: the per-channel and spatial terms are kept in full where they take away this share of
# the misfit one gain and offset leave over the regions, not at all below the first (set on bikes and
# cockatoo: they took 2-21 % on clean frames, 19-74 % with uneven flicker)
GATE = (0.15, 0.4)
MIN_TONES = 5  # local mode: quantiles of a region's channel that must be unclipped for it to count ...
MIN_REGIONS = 8  # ... and regions that must count for anything beyond one gain and offset


def tone_quantiles(frames: Frames, step: int = 1) -> npt.NDArray[np.float64]:
    """``(T, H, W, 3)`` RGB -> ``(T, 19)`` float64 gray-level quantiles in [0, 1], every ``step``-th pixel."""
    g = gray(frames, step).reshape(len(frames), -1)
    q: npt.NDArray[np.float64] = np.percentile(g.astype(np.float64), QUANTILES, axis=1).T
    return q


def fit_gain_offset(q: npt.NDArray[np.float64], target: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Gain ``a`` and offset ``b`` minimising ``|a * q + b - target|``; offset only for a flat frame,
    gain clamped to :data:`GAIN_LIMITS` (the offset refitted for the clamped gain)."""
    if q[-1] - q[0] < FLAT:
        return 1.0, float(np.mean(target - q))
    a, _ = np.polyfit(q, target, 1)
    a = float(np.clip(a, *GAIN_LIMITS))
    return a, float(np.mean(target - a * q))


def region_quantiles(frames: Frames, step: int, grid: int = GRID) -> tuple[npt.NDArray[np.float64], FloatArray]:
    """Per-region, per-channel tone of ``(T, H, W, 3)`` RGB, every ``step``-th pixel: ``(T, grid * grid,
    3, 19)`` float64 quantiles in [0, 1] (regions row by row), and the ``(grid * grid, 2)`` region
    centres as ``(x, y)`` in [-1, 1] (-1 and 1 being the frame's outer pixel edges)."""
    t, h, w, _ = frames.shape
    rows, cols = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    q = np.empty((t, grid * grid, 3, len(QUANTILES)), dtype=np.float64)
    centres = np.empty((grid * grid, 2), dtype=np.float32)
    for i, j in np.ndindex(grid, grid):
        r = i * grid + j
        y0, y1, x0, x1 = rows[i], rows[i + 1], cols[j], cols[j + 1]
        part = to_unit(frames[:, y0:y1:step, x0:x1:step]).reshape(t, -1, 3).astype(np.float64)
        q[:, r] = np.moveaxis(np.percentile(part, QUANTILES, axis=1), 0, -1)
        centres[r] = ((x0 + x1) / w - 1, (y0 + y1) / h - 1)
    return q, centres


def field_terms(x: FloatArray, y: FloatArray) -> FloatArray:
    """``(..., 3)`` spatial terms ``x, y, x^2 + y^2`` of the gain field at positions ``x``, ``y``
    (same shape, [-1, 1] across the frame): light brighter towards one side, and the corners
    darkening or brightening against the middle."""
    return np.stack([x, y, x * x + y * y], -1)


def _tone_design(q: npt.NDArray[np.float64], centres: FloatArray) -> npt.NDArray[np.float64]:
    """``(R, 3, 19, 9)`` columns of :func:`fit_fields`'s least squares: per-channel gains, per-channel
    offsets, the spatial gain terms."""
    n_r, n_c, n_k = q.shape
    design = np.zeros((n_r, n_c, n_k, 9))
    for c in range(n_c):
        design[:, c, :, c] = q[:, c]
        design[:, c, :, 3 + c] = 1.0
    design[..., 6:] = field_terms(centres[:, 0], centres[:, 1]).astype(np.float64)[:, None, None, :] * q[..., None]
    return design


def _solve(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], w: npt.NDArray[np.float64],
           prior: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # fmt: skip
    """Weighted least squares ``x @ c ~ y`` (rows weighted ``w``), with :data:`RIDGE` per unit of
    weight pulling ``c`` towards ``prior``."""
    ridge = np.sqrt(RIDGE * max(float(w.sum()), 1.0))
    sw = np.sqrt(w)
    lhs = np.concatenate([x * sw[:, None], ridge * np.eye(x.shape[1])])
    coef: npt.NDArray[np.float64] = np.linalg.lstsq(lhs, np.concatenate([y * sw, ridge * prior]), rcond=None)[0]
    return coef


def fit_fields(
    q: npt.NDArray[np.float64], target: npt.NDArray[np.float64], centres: FloatArray
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """What per-channel gains and offsets and a spatial gain field add to one gain and offset for the
    whole frame: ``(da, db, s)``, ``(3,)`` each, the changes of the channels' gains and offsets and
    the spatial gain terms (of :func:`field_terms`, shared by the channels).

    The fit carries every region's quantiles ``q`` onto ``target`` (both ``(R, 3, 19)`` for the
    ``(R, 2)`` ``centres``): least squares of ``(a_c + s . field_terms(c_r)) q_rck + b_c - target_rck``.
    What is returned is its difference from the best single gain and offset over the same regions;
    the caller adds it to the whole frame's gain and offset (:func:`fit_gain_offset`), which a
    moving picture disturbs less than it does any region's.

    Quantiles at either end of the range (clipped, they follow no gain) do not count. The fit is
    reweighted :data:`REWEIGHTS` times by Tukey's bisquare of each region's RMS misfit (a region whose
    picture changed drops out), with a small ridge towards no correction so that flat frames leave it
    well posed. Then it is compared with the best single gain and offset (what ``mode=global``
    applies) on the same weights: the share of the misfit the per-channel and spatial terms take
    away decides how much of them is kept (:data:`GATE`), none where they explain the tone no better
    than a picture's own motion does."""
    design = _tone_design(q, centres).reshape(-1, 9)
    lo, hi = 0.5 / 255, 1 - 0.5 / 255
    valid = (q > lo) & (q < hi) & (target > lo) & (target < hi)  # (R, 3, K)
    valid &= valid.sum(axis=2, keepdims=True) >= MIN_TONES  # a region and channel nearly all clipped says little
    zero = np.zeros(3)
    if (valid.sum(axis=(1, 2)) > 0).sum() < MIN_REGIONS:
        return zero, zero, zero
    valid = valid.astype(np.float64)
    y = target.reshape(-1)
    prior = np.array([1.0, 1.0, 1.0, 0, 0, 0, 0, 0, 0])
    region_w = np.ones(len(q))
    for _ in range(REWEIGHTS + 1):
        w = (region_w[:, None, None] * valid).reshape(-1)
        coef = _solve(design, y, w, prior)
        err = ((design @ coef - y) ** 2).reshape(valid.shape) * valid
        misfit = np.sqrt(err.sum(axis=(1, 2)) / np.maximum(valid.sum(axis=(1, 2)), 1))  # (R,)
        scale = max(MAD_TO_STD * float(np.median(misfit)), MIN_SCALE)
        region_w = np.clip(1 - (misfit / (BISQUARE * scale)) ** 2, 0, None) ** 2
    one = np.stack([design[:, :3].sum(1), design[:, 3:6].sum(1)], 1)  # one gain and offset for all channels
    ab = _solve(one, y, w, np.array([1.0, 0.0]))
    single = np.array([ab[0]] * 3 + [ab[1]] * 3 + [0.0] * 3)
    rss_full, rss_single = float((w * (design @ coef - y) ** 2).sum()), float((w * (one @ ab - y) ** 2).sum())
    share = 1.0 - rss_full / rss_single if rss_single > 0 else 0.0
    keep = float(np.clip((share - GATE[0]) / (GATE[1] - GATE[0]), 0.0, 1.0))
    d = keep * (coef - single)
    return d[:3], d[3:6], d[6:]


class Deflicker(TemporalStage):
    """Steady each frame's tone on the shot's smoothed tone (``window`` frames each side, ``strength``
    in [0, 1] blends the correction; ``mode`` ``global``: one gain and offset for the whole frame,
    ``local``: per channel, as smooth fields over the frame)."""

    type: ClassVar[str] = "deflicker"
    method_version: ClassVar[int] = 1

    def __init__(self, ctx: StageContext, window: int = 12, strength: float = 1.0, mode: str = "global") -> None:
        """``window``: frames on each side the tone is smoothed over (Gaussian sigma ``window / 2``);
        at 25 fps the default 12 averages about half a second, longer than flicker, shorter than a fade."""
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window), check_strength(self.type, strength)
        if mode not in MODES:
            raise ConfigError(f"deflicker mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = str(mode)

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` corrected, ``(stop - start, H, W, 3)``, same dtype; the other frames of
        ``(T, H, W, 3)`` are the tone context."""
        lo, hi = max(0, start - self.window), min(len(frames), stop + self.window)
        _, h, w, _ = frames.shape
        step = max(1, int(np.sqrt(h * w / MEASURE_PIXELS)))
        if self.mode == "local":
            return self._local(frames, start, stop, lo, hi, step)
        q = tone_quantiles(frames[lo:hi], step)  # (hi - lo, 19)
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        for t in range(start, stop):
            a, b = fit_gain_offset(q[t - lo], smooth_at(q, t - lo, self.window, degree=2))
            a, b = 1.0 + self.strength * (a - 1.0), self.strength * b
            if abs(a - 1.0) < 1e-4 and abs(b) < 1e-5:
                out[t - start] = frames[t]
            else:
                out[t - start] = quantize(to_unit(frames[t]) * np.float32(a) + np.float32(b), frames.dtype)
        return out

    def _local(self, frames: Frames, start: int, stop: int, lo: int, hi: int, step: int) -> Frames:
        """:meth:`process_span` in ``local`` mode (``lo:hi``: the frames the tone is smoothed over)."""
        _, h, w, _ = frames.shape
        q, centres = region_quantiles(frames[lo:hi], step)  # (hi - lo, R, 3, 19)
        terms = field_terms(*np.meshgrid((np.arange(w, dtype=np.float32) + 0.5) * 2 / w - 1,
                                         (np.arange(h, dtype=np.float32) + 0.5) * 2 / h - 1))  # fmt: skip
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        tone = tone_quantiles(frames[lo:hi], step)  # (hi - lo, 19)
        for t in range(start, stop):
            ga, gb = fit_gain_offset(tone[t - lo], smooth_at(tone, t - lo, self.window, degree=2))
            da, db, sp = fit_fields(q[t - lo], smooth_at(q, t - lo, self.window, degree=2), centres)
            a, b, sp = 1.0 + self.strength * (ga + da - 1.0), self.strength * (gb + db), self.strength * sp
            if max(np.abs(a - 1.0).max(), np.abs(sp).max()) < 1e-4 and np.abs(b).max() < 1e-5:
                out[t - start] = frames[t]
                continue
            gain = np.clip((terms @ sp.astype(np.float32))[..., None] + a.astype(np.float32), *GAIN_LIMITS)
            out[t - start] = quantize(to_unit(frames[t]) * gain + b.astype(np.float32), frames.dtype)
        return out

    def describe(self) -> dict[str, object]:
        method = "tone quantiles, local linear smoothing"
        if self.mode == "local":
            method += ", per-channel gains and offsets and a spatial gain field from 4x4 regions' quantiles"
        return {
            **super().describe(),
            "method": method,
            "mode": self.mode,
            "window": self.window,
            "strength": self.strength,
        }
