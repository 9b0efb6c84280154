"""Stabilize stage: remove frame-to-frame jitter (film gate weave, camera shake) while keeping
intentional camera moves (classical, no model).

Translation only. The stage measures the global shift between consecutive frames by phase
correlation of their gray level (Hann-windowed, on a copy at most :data:`MEASURE_WIDTH` pixels
wide, sub-pixel from the phase slope of the cross-power spectrum, or from the median of tiles' slopes
where a second motion bends it), chains the shifts into a camera path, smooths the
path over ``window`` frames on each side with a local linear fit (``restora.stages.temporal``: a
steady pan passes through; the window stops at cuts), and moves each frame by the difference
between the smoothed and the measured path with a Keys cubic (a = -0.5) resampler. Corrections
are capped at ``max_shift`` of the frame's width and height; the strip uncovered at an edge repeats
the edge pixels (the frame keeps its size; crop afterwards if the strip shows).

Not corrected: rotation, zoom and rolling-shutter wobble. A moving object smaller than about half
the frame does not move the measured shift (the motion that matches most of the picture is taken,
its fraction, where the object bends it, the median of the tiles that moved with it); parallax and
objects covering most of the frame do. A correction under :data:`MIN_MOVE` is not made. No pixel is
synthesized beyond the repeated edge strip, which the report's ``max_shift`` bounds.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, quantize, to_unit
from restora.errors import ConfigError
from restora.stages.base import StageContext, check_strength
from restora.stages.motion import block_mean, measure_factor, measure_shift, shift_image
from restora.stages.temporal import TemporalStage, check_window, gray, smooth_at

FILL_RADIUS = 2  # a failed step takes the median of the measured ones this many steps around it
# pixels: a smaller correction is not made. The shift is measured to about a hundredth of a pixel on
# a real picture; resampling a frame by less would only soften it.
MIN_MOVE = 0.01


def fill_failed(steps: npt.NDArray[np.float64], radius: int = FILL_RADIUS) -> npt.NDArray[np.float64]:
    """``(n, 2)`` frame-to-frame shifts with the failed ones (NaN) replaced by the median of the measured
    ones within ``radius`` steps (0 if none): a blurred frame mid-pan keeps the pan's speed instead of
    reading as a jerk the stabilizer would then undo."""
    out = steps.copy()
    for i in np.flatnonzero(np.isnan(steps[:, 0])):
        near = steps[max(0, i - radius) : i + radius + 1]
        near = near[~np.isnan(near[:, 0])]
        out[i] = np.median(near, axis=0) if len(near) else 0.0
    return out


class Stabilize(TemporalStage):
    """Move each frame onto the shot's smoothed camera path (``window`` frames each side; corrections
    capped at ``max_shift`` of the frame size; ``strength`` in [0, 1] scales them)."""

    type: ClassVar[str] = "stabilize"
    method_version: ClassVar[int] = 4  # 2: motion robust to dust, grain, a second motion; 3, 4: fraction from tiles

    def __init__(self, ctx: StageContext, window: int = 15, max_shift: float = 0.05, strength: float = 1.0) -> None:
        """``window``: frames on each side of the path smoothing (Gaussian sigma ``window / 2``); the
        default 15 averages over about a second at 25 fps: shake and weave go, pans stay."""
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window), check_strength(self.type, strength)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)) or not 0.0 < max_shift <= 0.25:
            raise ConfigError(f"stabilize max_shift must be a fraction of the frame in (0, 0.25], not {max_shift!r}")
        self.max_shift = float(max_shift)
        self._planes: dict[bytes, FloatArray] = {}  # reduced gray plane by frame hash (see path)
        self._steps: dict[tuple[bytes, bytes], tuple[float, float] | None] = {}

    @property
    def context(self) -> int:
        """``window`` frames, plus :data:`FILL_RADIUS` so that every step inside the smoothing window
        has its whole neighbourhood for :func:`fill_failed`, however the frames come in batches."""
        return self.window + FILL_RADIUS

    def path(self, frames: Frames) -> npt.NDArray[np.float64]:
        """Camera path of ``(T, H, W, 3)`` frames: ``(T, 2)`` cumulative ``(x, y)`` shift in pixels, 0 at the first."""
        f = measure_factor(frames.shape[2])
        # The pipeline hands each frame in again as context of the next spans: measurements are kept
        # by the frame's content (a 128-bit hash), for the frames of the latest span only.
        keys = [hashlib.blake2b(fr.tobytes(), digest_size=16).digest() for fr in frames]
        planes: dict[bytes, FloatArray] = {}
        for k, fr in zip(keys, frames, strict=True):
            if k not in planes:
                known = self._planes.get(k)
                planes[k] = known if known is not None else block_mean(gray(fr[None])[0], f)
        pairs = list(itertools.pairwise(keys))
        found = {p: self._steps[p] if p in self._steps else measure_shift(planes[p[0]], planes[p[1]]) for p in pairs}
        self._planes, self._steps = planes, found
        steps = np.asarray([(np.nan, np.nan) if (m := found[p]) is None else m for p in pairs], np.float64)
        steps = steps.reshape(-1, 2)
        return np.concatenate([np.zeros((1, 2)), np.cumsum(fill_failed(steps * f), 0)])

    def corrections(self, frames: Frames, start: int, stop: int) -> npt.NDArray[np.float64]:
        """``(stop - start, 2)`` ``(dx, dy)`` moves in pixels that put ``frames[start:stop]`` on the
        smoothed path (capped and scaled by strength); the rest of ``frames`` is context."""
        lo, hi = max(0, start - self.context), min(len(frames), stop + self.context)
        p = self.path(frames[lo:hi])
        _, h, w, _ = frames.shape
        cap = self.max_shift * np.array([w, h], dtype=np.float64)
        c = np.array([smooth_at(p, t - lo, self.window, degree=1) - p[t - lo] for t in range(start, stop)])
        return np.clip(c.reshape(-1, 2) * self.strength, -cap, cap)

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` stabilized, ``(stop - start, H, W, 3)``, same dtype; the other frames
        of ``(T, H, W, 3)`` are the path context."""
        moves = self.corrections(frames, start, stop)
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        for i, (dx, dy) in enumerate(moves):
            if abs(dx) < MIN_MOVE and abs(dy) < MIN_MOVE:
                out[i] = frames[start + i]
            else:
                out[i] = quantize(shift_image(to_unit(frames[start + i]), dx, dy), frames.dtype)
        return out

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "method": "phase correlation, local linear path smoothing, cubic shift",
            "window": self.window,
            "max_shift": self.max_shift,
            "strength": self.strength,
        }
