"""Shared pieces of the classical temporal stages (``deflicker``, ``stabilize``): per-frame
measurements smoothed along time within a shot, and the gray level they are measured on.

Both stages measure something per frame (tone quantiles, camera position), smooth that signal over
a window of neighbouring frames and move each frame onto the smoothed signal. The smoother is a
Gaussian-weighted *local polynomial* fit (a line for the camera path, a parabola for the tone): a
steady trend (a pan, a fade, a fade's curve for the parabola) passes through it unchanged, including
in the frames next to a cut where the window is one-sided, while the frame-to-frame wobble around
the trend is averaged out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, to_unit
from restora.stages.base import Stage

# Gray level for measurements: weights summing to 1, so that a gain ``a`` and offset ``b`` applied
# equally to R, G and B act on it as ``a * gray + b`` (BT.601 luma weights, full range).
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def gray(frames: Frames | FloatArray, step: int = 1) -> FloatArray:
    """``(T, H, W, 3)`` RGB (uint8, uint16 or float [0, 1]) -> ``(T, H', W')`` float32 gray in [0, 1],
    every ``step``-th pixel in each direction (``H' = ceil(H / step)``)."""
    return to_unit(frames[:, ::step, ::step]) @ GRAY_WEIGHTS


def check_window(stage: str, window: object, most: int = 250) -> int:
    """A temporal stage's ``window`` option (frames on each side, 1 to ``most``)."""
    from restora.errors import ConfigError

    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= most:
        raise ConfigError(f"{stage} window must be a whole number of frames in [1, {most}], not {window!r}")
    return window


class TemporalStage(Stage):
    """A classical stage that restores a frame from the ``window`` frames on each side of it (its
    ``context``): subclasses set ``window`` and implement :meth:`Stage.process_span`."""

    window: int = 0

    @property
    def context(self) -> int:
        return self.window

    def process(self, frames: Frames) -> Frames:
        """``(T, H, W, 3)`` uint8 or uint16 RGB -> same shape and dtype (the frames are one shot)."""
        return self.process_span(frames, 0, len(frames))


def local_poly_weights(offsets: npt.ArrayLike, sigma: float, degree: int = 1) -> npt.NDArray[np.float64]:
    """Weights ``k`` such that ``sum(k * v)`` is the value at offset 0 of the Gaussian-weighted
    (``sigma`` frames) least-squares polynomial of ``degree`` through samples ``v`` taken at
    ``offsets`` (frames relative to the one being smoothed, which need not be centred: one-sided at
    the ends of a shot).

    The weights sum to 1 and reproduce any polynomial signal of that degree exactly. With too few
    distinct samples the degree drops (to the weighted mean with one sample).

    Args:
        offsets: ``(n,)`` sample positions in frames, 0 being the frame smoothed.
        sigma: Gaussian width in frames (> 0).
        degree: 1 (a line: fades, steady pans) or 2 (also a steady acceleration).

    Returns:
        ``(n,)`` float64 weights.
    """
    d = np.asarray(offsets, dtype=np.float64)
    g = np.exp(-0.5 * (d / sigma) ** 2)
    for deg in range(min(degree, len(np.unique(d)) - 1), -1, -1):
        v = d[:, None] ** np.arange(deg + 1)[None, :]  # (n, deg + 1) Vandermonde
        m = v.T @ (g[:, None] * v)
        if np.linalg.cond(m) < 1e12:
            k: npt.NDArray[np.float64] = (g[:, None] * v) @ np.linalg.solve(m, np.eye(deg + 1)[:, 0])
            return k
    mean: npt.NDArray[np.float64] = g / g.sum()
    return mean


def smooth_at(values: npt.NDArray[np.floating], t: int, window: int, degree: int = 1) -> npt.NDArray[np.float64]:
    """The local polynomial fit (:func:`local_poly_weights`, sigma ``window / 2``) of ``values``
    (``(n, ...)``, one row per frame) at row ``t``, from the rows within ``window`` frames of it that
    exist (clamped to ``[0, n)``): ``(...)`` float64."""
    lo, hi = max(0, t - window), min(len(values), t + window + 1)
    k = local_poly_weights(np.arange(lo - t, hi - t), window / 2.0, degree)
    return np.tensordot(k, np.asarray(values[lo:hi], dtype=np.float64), axes=1)
