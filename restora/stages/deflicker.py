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

Not corrected: flicker that differs across the frame (uneven gate illumination) and per-channel
color flicker. No pixel is synthesized.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import Frames, quantize, to_unit
from restora.stages.base import StageContext, check_strength
from restora.stages.temporal import TemporalStage, check_window, gray, smooth_at

QUANTILES = np.arange(5, 100, 5, dtype=np.float64)  # percent
GAIN_LIMITS = (0.5, 2.0)  # a correction outside these is not flicker; clamped
FLAT = 0.02  # quantile spread (5 % to 95 %) below which a frame has no contrast to fit a gain on
MEASURE_PIXELS = 64_000  # about this many pixels are sampled per frame for the quantiles


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


class Deflicker(TemporalStage):
    """Steady each frame's tone on the shot's smoothed tone (``window`` frames each side, ``strength``
    in [0, 1] blends the correction)."""

    type: ClassVar[str] = "deflicker"
    method_version: ClassVar[int] = 1

    def __init__(self, ctx: StageContext, window: int = 12, strength: float = 1.0) -> None:
        """``window``: frames on each side the tone is smoothed over (Gaussian sigma ``window / 2``);
        at 25 fps the default 12 averages about half a second, longer than flicker, shorter than a fade."""
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window), check_strength(self.type, strength)

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` corrected, ``(stop - start, H, W, 3)``, same dtype; the other frames of
        ``(T, H, W, 3)`` are the tone context."""
        lo, hi = max(0, start - self.window), min(len(frames), stop + self.window)
        _, h, w, _ = frames.shape
        step = max(1, int(np.sqrt(h * w / MEASURE_PIXELS)))
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

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "method": "tone quantiles, local linear smoothing",
            "window": self.window,
            "strength": self.strength,
        }
