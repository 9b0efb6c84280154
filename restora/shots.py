"""Shot boundary detection on already-decoded luma thumbnails.

Why our own detector and not PySceneDetect: PySceneDetect 0.7 requires ``opencv-python`` (the GUI
build), which conflicts with the headless OpenCV a server image wants, and it would decode the
video a second time. Ingest already decodes every frame once (``media.scan``) and keeps a
``64x36`` luma thumbnail per frame; detecting on those costs microseconds per frame and keeps one
decoder in the project.

The method, in the spirit of PySceneDetect's AdaptiveDetector:

* ``d[t]`` = mean absolute luma difference between thumbnails ``t-1`` and ``t`` (0-255 scale).
* A **hard cut** at ``t`` needs ``d[t] >= min_jump`` *and* ``d[t] >= ratio x`` the median of ``d``
  in a window around ``t`` (``t`` itself excluded), so steady motion or a running counter, whose
  differences are large but uniform, never cuts.
* A **fade** is a run of at least ``min_fade`` frames whose mean luma moves monotonically between
  near-black and picture; its ends are shot boundaries (never several cuts).
* Boundaries closer than ``min_shot`` frames to the previous one are merged (the stronger wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Fade:
    """A fade: ``kind`` is ``"in"`` (from black) or ``"out"`` (to black); frames inclusive."""

    kind: str
    first: int
    last: int


@dataclass
class ShotList:
    """Detection result. ``cuts`` are hard-cut frame numbers (first frame of the new shot)."""

    frames: int
    cuts: list[int]
    fades: list[Fade] = field(default_factory=list)

    @property
    def boundaries(self) -> list[int]:
        """Frames that start a shot: 0, every cut, and the frame after each fade's last frame."""
        b = {0, *self.cuts}
        for f in self.fades:
            if f.kind == "in":
                b.add(f.first)
            else:
                b.add(min(f.last + 1, self.frames - 1) if f.last + 1 < self.frames else f.first)
        return sorted(x for x in b if 0 <= x < self.frames)

    def shots(self) -> list[tuple[int, int]]:
        """``[(start, stop), ...]`` half-open frame ranges covering every frame once."""
        b = self.boundaries
        return [(s, e) for s, e in zip(b, [*b[1:], self.frames], strict=True) if e > s]

    def at_field_rate(self) -> ShotList:
        """The same cuts and fades counted in fields (frame ``k`` is fields ``2k`` and ``2k + 1``),
        for a source restored at field rate (``media.at_field_rate``): a cut falls between frames."""
        fades = [Fade(f.kind, 2 * f.first, 2 * f.last + 1) for f in self.fades]
        return ShotList(frames=2 * self.frames, cuts=[2 * c for c in self.cuts], fades=fades)


def frame_differences(thumbs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``(T, h, w)`` uint8 luma -> ``(T,)`` float32 mean absolute difference to the previous frame (d[0] = 0)."""
    x = thumbs.astype(np.float32)
    d = np.zeros(len(x), dtype=np.float32)
    if len(x) > 1:
        d[1:] = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2))
    return d


def _fades(means: npt.NDArray[np.float32], black: float, min_fade: int) -> list[Fade]:
    """Monotonic luma ramps of at least ``min_fade`` frames that start or end near black."""
    out: list[Fade] = []
    n = len(means)
    dm = np.diff(means)
    t = 0
    while t < n - 1:
        sign = np.sign(dm[t]) if abs(dm[t]) > 0.15 else 0
        if sign == 0:
            t += 1
            continue
        u = t
        while u < n - 1 and np.sign(dm[u]) == sign and abs(dm[u]) > 0.15:
            u += 1
        first, last = t, u  # frames first..last ramp
        length = last - first + 1
        lo, hi = min(means[first], means[last]), max(means[first], means[last])
        if length >= min_fade and lo <= black and hi - lo >= 3 * black:
            out.append(Fade("in" if sign > 0 else "out", first + (1 if sign > 0 else 0), last - (0 if sign > 0 else 1)))
        t = u
    return out


def detect_shots(
    thumbs: npt.NDArray[np.uint8],
    min_jump: float = 12.0,
    ratio: float = 4.0,
    window: int = 8,
    min_shot: int = 8,
    min_fade: int = 8,
    black: float = 20.0,
) -> ShotList:
    """Find hard cuts and fades.

    Args:
        thumbs: ``(T, h, w)`` uint8 luma thumbnails, one per frame, in presentation order.
        min_jump: smallest mean absolute luma difference (0-255) that can be a cut.
        ratio: how many times the local median difference a cut must exceed.
        window: frames on each side used for the local median.
        min_shot: shortest shot in frames; closer boundaries are merged.
        min_fade: shortest fade in frames.
        black: mean luma (0-255) at or below which a frame counts as black.

    Returns:
        The :class:`ShotList`.
    """
    n = len(thumbs)
    if n == 0:
        return ShotList(frames=0, cuts=[])
    d = frame_differences(thumbs)
    means = thumbs.reshape(n, -1).mean(axis=1).astype(np.float32)
    fades = _fades(means, black, min_fade)
    in_fade = np.zeros(n, dtype=bool)
    for f in fades:
        in_fade[max(f.first - 1, 0) : f.last + 2] = True
    candidates: list[tuple[int, float]] = []
    for t in range(1, n):
        if d[t] < min_jump or in_fade[t]:
            continue
        ctx = np.concatenate([d[max(1, t - window) : t], d[t + 1 : t + 1 + window]])
        base = float(np.median(ctx)) if ctx.size else 0.0
        if d[t] >= ratio * max(base, 1.0):
            candidates.append((t, float(d[t])))
    cuts: list[tuple[int, float]] = []
    for t, s in candidates:
        if cuts and t - cuts[-1][0] < min_shot:
            if s > cuts[-1][1]:
                cuts[-1] = (t, s)
            continue
        cuts.append((t, s))
    return ShotList(frames=n, cuts=[t for t, _ in cuts], fades=fades)
