"""Grain removal (classical, no model): motion-guarded temporal averaging.

Film grain and sensor noise change from frame to frame, and the picture mostly does not. For each
frame, the ``window`` frames on each side (within the shot) are aligned to it by a global shift
(``restora.stages.motion``). Each aligned neighbour is averaged in with a per-pixel weight that
falls off as the neighbour departs from the frame by more than grain explains. The test is made on
the difference of 3x3 means of the gray level, scaled by that difference's robust spread (median
absolute deviation) against the nearest neighbour, measured every frame: the grain's level and
grain size set the tolerance, not a constant.
Where the picture moves in a way the global alignment does not follow, the neighbours differ, their
weights fall to nothing, and the grain there is left. Nothing is blurred within a frame.

This removes grain; it does not put any back. Matched grain re-synthesis after SR (``regrain``, the
archival-film preset) is declared but not implemented. For grain that should stay, use
``strength`` below 1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, quantize, to_unit
from restora.metrics import box_sum
from restora.stages.base import StageContext, check_strength
from restora.stages.motion import aligned_to
from restora.stages.temporal import GRAY_WEIGHTS, TemporalStage, check_window

MAD_TO_STD = 1.4826  # the std of normal data per median absolute deviation
TOLERANCE = 2.5  # a neighbour's 3x3-mean difference of this many grain spreads weighs exp(-1/2)
MIN_GRAIN = 0.5 / 255  # grain level floor (a clean or synthetic frame measures ~0)


def spread(d: npt.NDArray[np.float64]) -> float:
    """Robust standard deviation of a difference plane (median absolute deviation: the moving parts,
    where the difference is large, do not count), at least :data:`MIN_GRAIN`."""
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(MIN_GRAIN, MAD_TO_STD * mad)


def _mean3(g: FloatArray) -> npt.NDArray[np.float64]:
    """3x3 mean of an ``(H, W)`` plane (edges repeated)."""
    out: npt.NDArray[np.float64] = box_sum(g.astype(np.float64), 3) / 9.0
    return out


class Degrain(TemporalStage):
    """Average each frame with its aligned neighbours where they agree (``window`` frames each side;
    ``strength`` in [0, 1] blends the result with the input)."""

    type: ClassVar[str] = "degrain"

    def __init__(self, ctx: StageContext, window: int = 2, strength: float = 1.0) -> None:
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window, most=8), check_strength(self.type, strength)

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` degrained, ``(stop - start, H, W, 3)``, same dtype; the other frames of
        ``(T, H, W, 3)`` within ``window`` of each are its neighbours."""
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        for t in range(start, stop):
            out[t - start] = self._one(frames, t)
        return out

    def _one(self, frames: Frames, t: int) -> Frames:
        """``frames[t]`` averaged with its aligned neighbours: ``(H, W, 3)``, same dtype."""
        cur = to_unit(frames[t])
        g = cur @ GRAY_WEIGHTS
        near = [n for n in range(t - self.window, t + self.window + 1) if n != t and 0 <= n < len(frames)]
        near.sort(key=lambda n: abs(n - t))
        if not near:
            single: Frames = frames[t]
            return single
        aligned = [aligned_to(to_unit(frames[n]), g) for n in near]
        m = _mean3(g)
        diffs = [_mean3(nb @ GRAY_WEIGHTS) - m for nb in aligned]
        scale = TOLERANCE * spread(diffs[0])  # what grain alone makes of the nearest neighbour's difference
        total = np.ones(g.shape, dtype=np.float32)
        acc = cur.copy()
        for nb, d in zip(aligned, diffs, strict=True):
            w = np.exp(-0.5 * (d / scale) ** 2).astype(np.float32)
            acc += w[..., None] * nb
            total += w
        avg = acc / total[..., None]
        return quantize(cur + np.float32(self.strength) * (avg - cur), frames.dtype)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "method": "motion-guarded temporal average (global alignment)",
            "window": self.window,
            "strength": self.strength,
        }
