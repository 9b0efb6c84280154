"""Stabilize stage: remove frame-to-frame jitter (film gate weave, camera shake) while keeping
intentional camera moves (classical, no model).

The stage measures the global shift between consecutive frames by phase correlation of their gray
level (Hann-windowed, on a copy at most :data:`MEASURE_WIDTH` pixels wide, sub-pixel from the phase
slope of the cross-power spectrum, or from the median of tiles' slopes where a second motion bends
it) and, unless ``rotation=false``, the turn about the frame's centre
(:func:`restora.stages.motion.measure_turn`: a turn, shift and scale fitted to tiles' own shifts,
robust to a second motion; turns of up to 1.5 degrees a frame are measured (3 are not), a failed one counts
as the neighbours' median). It chains the shifts and turns into a camera path, smooths the path over
``window`` frames on each side with a local linear fit (``restora.stages.temporal``: a steady pan or
roll passes through; the window stops at cuts), and turns each frame about its centre (three
cubic shears) and moves it (Keys cubic, a = -0.5) by the difference between the smoothed and the
measured path. Corrections are capped at ``max_shift`` of the frame's width and height and at
:data:`MAX_TURN`; the strips and corners uncovered at the edges repeat the edge pixels (the frame
keeps its size; crop afterwards if they show).

Not corrected: zoom and rolling-shutter wobble. A moving object smaller than about half the frame
does not move the measured shift or turn (the motion that matches most of the picture is taken);
parallax and objects covering most of the frame do. A move under :data:`MIN_MOVE`, or a turn that
moves the corners by less than :data:`MIN_TURN`, is not made. No pixel is synthesized beyond the
repeated edge strips, which the report's ``max_shift`` bounds.
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
from restora.stages.motion import (
    block_mean,
    measure_factor,
    measure_shift,
    measure_turn,
    rotate_image,
    shift_image,
)
from restora.stages.temporal import TemporalStage, check_window, gray, smooth_at

FILL_RADIUS = 2  # a failed step takes the median of the measured ones this many steps around it
# pixels: a smaller correction is not made. The shift is measured to about a hundredth of a pixel on
# a real picture; resampling a frame by less would only soften it.
MIN_MOVE = 0.01
MAX_TURN = np.deg2rad(2.0)  # a larger turn correction is not jitter; capped
# pixels a turn moves the frame's corners: a smaller one is not made (known turns of a clean real
# picture are measured within 3e-4 degree, 0.002 px at the corners of 560x480; resampling for less
# than this only softens)
MIN_TURN = 0.05


def fill_failed(steps: npt.NDArray[np.float64], radius: int = FILL_RADIUS) -> npt.NDArray[np.float64]:
    """``(n, k)`` frame-to-frame steps (shifts, turns) with the failed ones (NaN, column by column)
    replaced by the median of the measured ones within ``radius`` steps (0 if none): a blurred frame
    mid-pan keeps the pan's speed instead of reading as a jerk the stabilizer would then undo."""
    out = steps.copy()
    for i, col in zip(*np.nonzero(np.isnan(steps)), strict=True):
        near = steps[max(0, i - radius) : i + radius + 1, col]
        near = near[~np.isnan(near)]
        out[i, col] = np.median(near) if len(near) else 0.0
    return out


class Stabilize(TemporalStage):
    """Move (and turn) each frame onto the shot's smoothed camera path (``window`` frames each side;
    moves capped at ``max_shift`` of the frame size, turns at :data:`MAX_TURN`; ``strength`` in
    [0, 1] scales them; ``rotation=false`` corrects translation only)."""

    type: ClassVar[str] = "stabilize"
    # 2: motion robust to dust, grain, a second motion; 3, 4: fraction from tiles; 5: rotation
    method_version: ClassVar[int] = 5

    def __init__(
        self, ctx: StageContext, window: int = 15, max_shift: float = 0.05, strength: float = 1.0, rotation: bool = True
    ) -> None:
        """``window``: frames on each side of the path smoothing (Gaussian sigma ``window / 2``); the
        default 15 averages over about a second at 25 fps: shake and weave go, pans stay."""
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window), check_strength(self.type, strength)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)) or not 0.0 < max_shift <= 0.25:
            raise ConfigError(f"stabilize max_shift must be a fraction of the frame in (0, 0.25], not {max_shift!r}")
        if not isinstance(rotation, bool):
            raise ConfigError(f"stabilize rotation must be true or false, not {rotation!r}")
        self.max_shift, self.rotation = float(max_shift), rotation
        self._planes: dict[bytes, FloatArray] = {}  # reduced gray plane by frame hash (see path)
        self._steps: dict[tuple[bytes, bytes], tuple[float, float, float] | None] = {}

    @property
    def context(self) -> int:
        """``window`` frames, plus :data:`FILL_RADIUS` so that every step inside the smoothing window
        has its whole neighbourhood for :func:`fill_failed`, however the frames come in batches."""
        return self.window + FILL_RADIUS

    def _step(self, a: FloatArray, b: FloatArray) -> tuple[float, float, float] | None:
        """``(dx, dy, angle)`` of measuring plane ``b`` relative to ``a`` (angle NaN where it cannot
        be measured, 0 without ``rotation``); None where the shift cannot be measured."""
        shift = measure_shift(a, b)
        if shift is None:
            return None
        if not self.rotation:
            return shift[0], shift[1], 0.0
        turn = measure_turn(a, b, shift)
        return (shift[0], shift[1], np.nan) if turn is None else turn

    def path(self, frames: Frames) -> npt.NDArray[np.float64]:
        """Camera path of ``(T, H, W, 3)`` frames: ``(T, 3)`` cumulative ``(x, y)`` shift in pixels and
        turn in radians (as :func:`restora.stages.motion.rotate_image` turns), 0 at the first."""
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
        found = {p: self._steps[p] if p in self._steps else self._step(planes[p[0]], planes[p[1]]) for p in pairs}
        self._planes, self._steps = planes, found
        steps = np.asarray([(np.nan,) * 3 if (m := found[p]) is None else m for p in pairs], np.float64)
        steps = fill_failed(steps.reshape(-1, 3)) * np.array([f, f, 1.0])
        return np.concatenate([np.zeros((1, 3)), np.cumsum(steps, 0)])

    def corrections(self, frames: Frames, start: int, stop: int) -> npt.NDArray[np.float64]:
        """``(stop - start, 3)`` ``(dx, dy, angle)`` moves in pixels and turns in radians that put
        ``frames[start:stop]`` on the smoothed path (capped and scaled by strength); the rest of
        ``frames`` is context."""
        lo, hi = max(0, start - self.context), min(len(frames), stop + self.context)
        p = self.path(frames[lo:hi])
        _, h, w, _ = frames.shape
        cap = np.array([self.max_shift * w, self.max_shift * h, MAX_TURN])
        c = np.array([smooth_at(p, t - lo, self.window, degree=1) - p[t - lo] for t in range(start, stop)])
        return np.clip(c.reshape(-1, 3) * self.strength, -cap, cap)

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` stabilized, ``(stop - start, H, W, 3)``, same dtype; the other frames
        of ``(T, H, W, 3)`` are the path context."""
        moves = self.corrections(frames, start, stop)
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        reach = float(np.hypot(*frames.shape[1:3])) / 2  # centre to corner: how far a turn moves a pixel
        for i, (dx, dy, angle) in enumerate(moves):
            turn, move = abs(angle) * reach >= MIN_TURN, abs(dx) >= MIN_MOVE or abs(dy) >= MIN_MOVE
            if not (turn or move):
                out[i] = frames[start + i]
                continue
            img = to_unit(frames[start + i])
            img = rotate_image(img, angle) if turn else img
            out[i] = quantize(shift_image(img, dx, dy) if move else img, frames.dtype)
        return out

    def describe(self) -> dict[str, object]:
        method = "phase correlation, local linear path smoothing, cubic shift"
        if self.rotation:
            method += "; turn from tiles' phase slopes, three-shear cubic rotation"
        return {
            **super().describe(),
            "method": method,
            "window": self.window,
            "max_shift": self.max_shift,
            "rotation": self.rotation,
            "strength": self.strength,
        }
