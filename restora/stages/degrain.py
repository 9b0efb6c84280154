"""Grain removal (classical, no model): motion-guarded temporal averaging.

Film grain and sensor noise change from frame to frame, and the picture mostly does not. For each
frame, the ``window`` frames on each side (within the shot) are brought onto it
(``restora.stages.motion``: the global shift, then with ``motion=local``, the default, a local motion
field, so that moving parts line up too). Each compensated neighbour is averaged in with a
per-pixel weight that falls off as the neighbour departs from the frame by more than grain explains.
The test is made on the difference of 3x3 means of the gray level, scaled by that difference's
robust spread (median absolute deviation) against the nearest neighbour, measured every frame: the
grain's level and grain size set the tolerance, not a constant.
Where the picture moves in a way the compensation does not follow, the neighbours differ, their
weights fall to nothing, and the grain there is left. Nothing is blurred within a frame.

This removes grain; ``regrain`` after SR puts grain back, matched to what this stage measured on
every frame (:class:`GrainMeasure`: its level at six gray levels and its grain size). For grain
that should stay as it is, use ``strength`` below 1 instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import Frames, quantize, to_unit
from restora.metrics import box_sum
from restora.stages.base import StageContext, check_motion, check_strength
from restora.stages.motion import MAD_TO_STD, aligned_to, compensated_to, mean3
from restora.stages.temporal import GRAY_WEIGHTS, TemporalStage, check_window

TOLERANCE = 2.5  # a neighbour's 3x3-mean difference of this many grain spreads weighs exp(-1/2)
MIN_GRAIN = 0.5 / 255  # grain level floor (a clean or synthetic frame measures ~0)
GRAIN_LEVELS = np.linspace(1 / 12, 11 / 12, 6)  # gray levels the grain is measured at (bins of 1/6)
MIN_PIXELS = 400  # still pixels a gray-level bin needs for a measurement
NO_GRAIN_VAR = (0.01 / 255) ** 2  # residual variance below a hundredth of a code squared: no grain to correlate


@dataclass(frozen=True)
class GrainMeasure:
    """The grain ``degrain`` found in one frame, for ``regrain`` to put back after SR.

    ``sigma[i]``: the grain's standard deviation (fraction of full scale) at gray level
    ``GRAIN_LEVELS[i]``, NaN where the frame has fewer than :data:`MIN_PIXELS` still pixels there;
    ``correlation``: between horizontally neighbouring pixels; ``width``: of the frame measured.
    """

    sigma: npt.NDArray[np.float64]
    correlation: float
    width: int


def measure_grain(
    residual: npt.NDArray[np.floating], level: npt.NDArray[np.floating], still: npt.NDArray[np.bool_]
) -> GrainMeasure:
    """The grain of a frame from ``residual``, the frame minus its temporal average rescaled to the
    grain's own spread (gray, ``(H, W)``), on the ``still`` pixels (where the neighbours took part),
    at the gray ``level`` of the average; the spreads are medians of absolute deviations, so pixels
    that moved do not count much."""
    bins = np.clip((level * len(GRAIN_LEVELS)).astype(np.int64), 0, len(GRAIN_LEVELS) - 1)
    sigma = np.full(len(GRAIN_LEVELS), np.nan)
    for i in range(len(GRAIN_LEVELS)):
        r = residual[still & (bins == i)]
        if r.size >= MIN_PIXELS:
            sigma[i] = MAD_TO_STD * float(np.median(np.abs(r - np.median(r))))
    both = still[:, 1:] & still[:, :-1]
    a, b = residual[:, 1:][both], residual[:, :-1][both]
    # no grain at all (a clean synthetic picture: residuals are rounding, whose variance can be 0 or
    # below it): no correlation, rather than NaN (which read as the widest grain)
    corr = float(np.corrcoef(a, b)[0, 1]) if a.size >= MIN_PIXELS and min(a.var(), b.var()) > NO_GRAIN_VAR else 0.0
    return GrainMeasure(sigma=sigma, correlation=corr, width=residual.shape[1])


def spread(d: npt.NDArray[np.float64]) -> float:
    """Robust standard deviation of a difference plane (median absolute deviation: the moving parts,
    where the difference is large, do not count), at least :data:`MIN_GRAIN`."""
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(MIN_GRAIN, MAD_TO_STD * mad)


class Degrain(TemporalStage):
    """Average each frame with its compensated neighbours where they agree (``window`` frames each
    side; ``strength`` in [0, 1] blends the result with the input; ``motion``: ``local`` or
    ``global`` compensation)."""

    type: ClassVar[str] = "degrain"
    method_version: ClassVar[int] = 4  # 2: robust global motion, local motion field; 3, 4: its fraction from tiles

    def __init__(self, ctx: StageContext, window: int = 2, strength: float = 1.0, motion: str = "local") -> None:
        super().__init__(ctx)
        self.window, self.strength = check_window(self.type, window, most=8), check_strength(self.type, strength)
        self.motion = check_motion(self.type, motion)
        self.onto = compensated_to if self.motion == "local" else aligned_to
        # Set by restora.stages.link when a regrain stage follows: every frame's GrainMeasure, in
        # output order, for it to take.
        self.measured: deque[GrainMeasure] | None = None

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` degrained, ``(stop - start, H, W, 3)``, same dtype; the other frames of
        ``(T, H, W, 3)`` within ``window`` of each are its neighbours."""
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        for t in range(start, stop):
            out[t - start] = self._one(frames, t)
        return out

    def _one(self, frames: Frames, t: int) -> Frames:
        """``frames[t]`` averaged with its compensated neighbours: ``(H, W, 3)``, same dtype."""
        cur = to_unit(frames[t])
        g = cur @ GRAY_WEIGHTS
        near = [n for n in range(t - self.window, t + self.window + 1) if n != t and 0 <= n < len(frames)]
        near.sort(key=lambda n: abs(n - t))
        if not near:
            if self.measured is not None:
                self.measured.append(GrainMeasure(np.full(len(GRAIN_LEVELS), np.nan), 0.0, g.shape[1]))
            single: Frames = frames[t]
            return single
        aligned = [self.onto(to_unit(frames[n]), g) for n in near]
        m = mean3(g)
        diffs = [mean3(nb @ GRAY_WEIGHTS) - m for nb in aligned]
        scale = TOLERANCE * spread(diffs[0])  # what grain alone makes of the nearest neighbour's difference
        total = np.ones(g.shape, dtype=np.float32)
        squares = np.zeros(g.shape, dtype=np.float32)
        acc = cur.copy()
        for nb, d in zip(aligned, diffs, strict=True):
            w = np.exp(-0.5 * (d / scale) ** 2).astype(np.float32)
            acc += w[..., None] * nb
            total += w
            squares += w * w
        avg = acc / total[..., None]
        if self.measured is not None:
            # still: where the neighbours took part over a whole 15x15 neighbourhood, so that the pixels
            # measured are not picked by their own grain (which would bias the spread low)
            still = box_sum(total.astype(np.float64), 15) / 225 > 1 + 0.9 * len(near)
            # the frame's grain g, averaged with weights w_i (sum W) with independent grains, leaves a
            # residual of std s * sqrt(W^2 + sum w_i^2) / (1 + W): undone here pixel by pixel
            weight = total - 1
            unbias = (1 + weight) / np.sqrt(np.maximum(weight * weight + squares, 1e-6))
            self.measured.append(measure_grain((g - avg @ GRAY_WEIGHTS) * unbias, avg @ GRAY_WEIGHTS, still))
        return quantize(cur + np.float32(self.strength) * (avg - cur), frames.dtype)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "method": f"motion-guarded temporal average ({self.motion} motion compensation)",
            "window": self.window,
            "strength": self.strength,
            "motion": self.motion,
        }
