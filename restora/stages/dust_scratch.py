"""Dust and scratch repair (classical, no model): single-frame spots from dirt on the film, and
vertical line scratches.

**Dust** is on one frame only. The previous and next frames are brought onto the current one
(``restora.stages.motion``: the global shift, then with ``motion=local``, the default, a local motion
field measured coarse to fine on tiles, so that moving parts of the picture line up too). A pixel is a
spot when the current frame differs from both compensated neighbours by more than ``threshold``, in
the same direction, while the neighbours agree with each other: the spike detection index of the
film-restoration literature (Kokaram). To keep moving things out:

- candidates with more than ``max_size`` squared others within ``max_size`` pixels are a region,
  not a spot, and are dropped;
- spots are repaired only where, within :data:`GUARD` pixels around them, the current frame and both
  compensated neighbours agree with each other (on all but :data:`GUARD_SHARE` of the window: noise
  and slightly misaligned edges): motion the compensation did not follow (a deforming face, an
  object smaller than a tile) differs from its neighbours around itself, and a small object moving
  through a still background is found in different places in the previous and next frames, so
  either is left alone.

Repaired pixels, with a one-pixel margin, take the mean of the compensated neighbours. Dust where the
motion was not followed is missed rather than risked. At the first and last frame of a shot (one
neighbour) nothing is repaired. Dust also spoils the motion measurement itself; the measurement is
made robust to it (``restora.stages.motion``).

**Scratches** are thin vertical lines that run through most of the frame's height. On every row,
each pixel is compared with the pixels :data:`SCRATCH_REACH` columns to its left and to its right.
A column is a scratch when it is brighter than both (or darker than both) by at least
``threshold / 2`` on :data:`SCRATCH_ROWS` of the rows, and the run of such columns is at most 3
pixels wide. An edge is brighter than one side only, so it does not count. The scratch's pixels on
those rows are interpolated across from the columns outside the run. A thin, straight, full-height
object (a mast, a rope) looks the same and is removed too: turn ``scratches`` off for such shots.

The pixels in the repaired places come from the neighbouring frames or the neighbouring columns (the
report records ``synthesizes: false``; nothing is invented beyond that interpolation).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, quantize, to_unit
from restora.errors import ConfigError
from restora.metrics import box_sum
from restora.stages.base import StageContext, check_motion
from restora.stages.motion import aligned_to, compensated_to
from restora.stages.temporal import GRAY_WEIGHTS, TemporalStage

GUARD = 7  # the neighbours must agree this far around a spot (pixels)
GUARD_SHARE = 0.05  # ... except for at most this share of the window (misaligned edges, noise)
SCRATCH_REACH = 3  # a scratch column is compared with the columns this far to each side
SCRATCH_ROWS = 0.6  # the share of rows a scratch must cross
Mask = npt.NDArray[np.bool_]


def _box_any(mask: Mask, size: int) -> Mask:
    """True where a ``size`` x ``size`` window around the pixel holds any True (dilation)."""
    out: Mask = box_sum(mask.astype(np.float64), size) > 0.5
    return out


def spot_mask(cur: FloatArray, prev: FloatArray, nxt: FloatArray, threshold: float, max_size: int) -> Mask:
    """Dust spots on ``cur``: ``(H, W)`` gray planes in [0, 1], the neighbours already aligned to
    ``cur`` -> ``(H, W)`` bool, the pixels to repair (spots plus a one-pixel margin)."""
    dp, dn = cur - prev, cur - nxt
    spike = (np.sign(dp) == np.sign(dn)) & (np.minimum(np.abs(dp), np.abs(dn)) > threshold)
    agree = np.abs(prev - nxt) < threshold / 2
    cand: Mask = spike & agree
    if not cand.any():
        return cand
    size = 2 * max_size + 1
    cand &= box_sum(cand.astype(np.float64), size) <= max_size * max_size  # more is a region, not a spot
    # Around a spot the current frame matches both neighbours; any other difference nearby (the
    # neighbours disagreeing, or the current frame differing from one of them) is motion the global
    # alignment did not follow.
    other = (~agree | (np.abs(dp) > threshold / 2) | (np.abs(dn) > threshold / 2)) & ~_box_any(cand, 3)
    moving = box_sum(other.astype(np.float64), 2 * GUARD + 1) > GUARD_SHARE * (2 * GUARD + 1) ** 2
    return _box_any(cand & ~moving, 3)


def runs(flags: Mask) -> list[tuple[int, int]]:
    """``(first, last)`` indices of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def scratch_mask(g: FloatArray, threshold: float) -> Mask:
    """Vertical line scratches on ``(H, W)`` gray in [0, 1] -> ``(H, W)`` bool, the pixels to repair."""
    w = g.shape[1]
    r = SCRATCH_REACH
    if w <= 2 * r + 1:
        return np.zeros_like(g, dtype=bool)
    padded = np.pad(g, ((0, 0), (r, r)), mode="edge")
    left, right = g - padded[:, :w], g - padded[:, 2 * r :]  # the column against each reach
    t = threshold / 2
    bright, dark = (left > t) & (right > t), (left < -t) & (right < -t)  # a line: both sides, same way
    share_pos, share_neg = bright.mean(axis=0), dark.mean(axis=0)
    cols = (share_pos >= SCRATCH_ROWS) | (share_neg >= SCRATCH_ROWS)
    out = np.zeros_like(g, dtype=bool)
    for x, end in runs(cols):
        if end - x < 3:  # a run of at most 3 columns: a line, not an edge of something wide
            line = bright if share_pos[x : end + 1].sum() >= share_neg[x : end + 1].sum() else dark
            rows = line[:, x : end + 1].any(axis=1)
            out[rows, max(0, x - 1) : end + 2] = True  # one column of margin each side
    return out


def fill_columns(img: FloatArray, mask: Mask) -> FloatArray:
    """``(H, W, C)`` with each row's masked runs replaced by linear interpolation between the pixels
    just outside the run (edge runs take the one outside pixel)."""
    out = img.copy()
    w = img.shape[1]
    for y in np.flatnonzero(mask.any(axis=1)):
        for x, end in runs(mask[y]):
            left, right = x - 1, end + 1
            if left < 0 and right >= w:
                break
            a = img[y, left] if left >= 0 else img[y, right]
            b = img[y, right] if right < w else img[y, left]
            t = ((np.arange(x, end + 1) - left) / (right - left))[:, None].astype(np.float32)
            out[y, x : end + 1] = a[None] * (1 - t) + b[None] * t
    return out


class DustScratch(TemporalStage):
    """Repair single-frame dust spots and vertical line scratches (``threshold`` of full scale;
    ``dust`` / ``scratches`` switch either part off; spots up to ``max_size`` pixels across;
    ``motion``: ``local`` or ``global`` compensation of the neighbours)."""

    type: ClassVar[str] = "dust_scratch"
    method_version: ClassVar[int] = 4  # 2: robust global motion, local motion field; 3, 4: its fraction from tiles

    def __init__(
        self,
        ctx: StageContext,
        threshold: float = 0.08,
        max_size: int = 12,
        dust: bool = True,
        scratches: bool = True,
        motion: str = "local",
    ) -> None:
        super().__init__(ctx)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.01 <= threshold <= 0.5:
            raise ConfigError(
                f"dust_scratch threshold must be a fraction of full scale in [0.01, 0.5], not {threshold!r}"
            )
        if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= 64:
            raise ConfigError(f"dust_scratch max_size must be a whole number of pixels in [1, 64], not {max_size!r}")
        if not isinstance(dust, bool) or not isinstance(scratches, bool):
            raise ConfigError("dust_scratch dust and scratches must be true or false")
        self.threshold, self.max_size, self.dust, self.scratches = float(threshold), max_size, dust, scratches
        self.window = 1 if dust else 0  # dust needs the previous and next frame
        self.motion = check_motion(self.type, motion)
        self.onto = compensated_to if self.motion == "local" else aligned_to

    def masks(self, frames: Frames, t: int) -> tuple[Mask, Mask, tuple[FloatArray, FloatArray] | None]:
        """Spot and scratch masks of ``frames[t]`` (``(H, W)`` bool each) and, where there are spots,
        its two neighbours compensated onto it (``(H, W, 3)`` float32)."""
        cur = to_unit(frames[t])
        g = cur @ GRAY_WEIGHTS
        spots = np.zeros(g.shape, dtype=bool)
        aligned = None
        if self.dust and 0 < t < len(frames) - 1:
            side = [self.onto(to_unit(frames[n]), g) for n in (t - 1, t + 1)]
            spots = spot_mask(g, side[0] @ GRAY_WEIGHTS, side[1] @ GRAY_WEIGHTS, self.threshold, self.max_size)
            aligned = (side[0], side[1])
        scratches = scratch_mask(g, self.threshold) if self.scratches else np.zeros_like(spots)
        return spots, scratches, aligned

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` repaired, ``(stop - start, H, W, 3)``, same dtype; the frames either
        side of each (within ``frames``) are its neighbours."""
        out = np.empty((stop - start, *frames.shape[1:]), dtype=frames.dtype)
        for t in range(start, stop):
            spots, scratches, aligned = self.masks(frames, t)
            if not spots.any() and not scratches.any():
                out[t - start] = frames[t]
                continue
            img = to_unit(frames[t])
            if aligned is not None and spots.any():
                img = img.copy()
                img[spots] = 0.5 * (aligned[0][spots] + aligned[1][spots])
            if scratches.any():
                img = fill_columns(img, scratches & ~spots)
            out[t - start] = quantize(img, frames.dtype)
        return out

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "method": f"3-frame spike detection ({self.motion} motion compensation), vertical line detection",
            "threshold": self.threshold,
            "max_size": self.max_size,
            "dust": self.dust,
            "scratches": self.scratches,
            "motion": self.motion,
        }
