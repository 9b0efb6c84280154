"""Grain re-synthesis after SR: put back grain like the grain ``degrain`` took out (generative).

Archives restore film with its grain: removed before SR (``degrain``), so the network does not
sharpen grain into artifacts, and synthesized again afterwards at the new size. Linked by
:func:`restora.stages.link` to the ``degrain`` before it, this stage takes that stage's measurement
of each frame, in order (:class:`~restora.stages.degrain.GrainMeasure`):

- the grain's standard deviation at six gray levels, interpolated at each pixel's gray level;
- its correlation between neighbouring pixels. Grain made by a Gaussian filter of width ``g`` has
  correlation ``exp(-1 / (4 g^2))`` at one pixel, which gives ``g``. The new grain is white noise
  through a Gaussian of width ``g`` times the upscaling factor, so it has the same size on the
  picture.

The grain is the same on R, G and B (monochrome, as black-and-white film's and most scans'). Its
random pattern is seeded by a hash of the frame it is added to: a re-render, or a chunk restored
again, gets the same grain. Without a ``degrain`` before it, ``sigma`` (the standard deviation at
every level, a fraction of full scale) and ``size`` (``g`` in output pixels) give the grain.

Every pixel it touches is synthesized: the report says ``synthesizes: true``, and the ``forensic``
preset refuses the stage.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray, Frames, quantize, to_unit
from restora.errors import ConfigError
from restora.stages.base import Stage, StageContext, check_strength
from restora.stages.degrain import GRAIN_LEVELS, Degrain, GrainMeasure
from restora.stages.temporal import GRAY_WEIGHTS

WHITE = 0.3  # Gaussian width (pixels) standing for uncorrelated grain


def grain_width(correlation: float) -> float:
    """Gaussian filter width (pixels) whose filtered white noise has ``correlation`` at one pixel."""
    if not 0.0 < correlation < 0.98:
        return WHITE if correlation <= 0.0 else 3.5
    return max(WHITE, float(np.sqrt(-1.0 / (4.0 * np.log(correlation)))))


def shaped_noise(shape: tuple[int, int], width: float, rng: np.random.Generator) -> FloatArray:
    """``(H, W)`` float32 white noise through a Gaussian of ``width`` pixels (by FFT), unit std."""
    n = rng.standard_normal(shape).astype(np.float32)
    if width > WHITE:
        u, v = np.fft.rfftfreq(shape[1])[None, :], np.fft.fftfreq(shape[0])[:, None]
        shaped = np.fft.irfft2(np.fft.rfft2(n) * np.exp(-2 * np.pi**2 * width**2 * (u * u + v * v)), s=shape)
        n = shaped.astype(np.float32)
    out: FloatArray = n / np.float32(max(float(n.std()), 1e-6))
    return out


class Regrain(Stage):
    """Add grain matched to the preceding ``degrain``'s measurement (or given by ``sigma`` and
    ``size``), ``strength`` in [0, 1] scaling it."""

    type: ClassVar[str] = "regrain"
    method_version: ClassVar[int] = 2  # 2: a grainless measurement reads as uncorrelated grain, not the widest
    synthesizes: ClassVar[bool] = True

    def __init__(self, ctx: StageContext, strength: float = 1.0, sigma: float | None = None, size: float = 0.7) -> None:
        super().__init__(ctx)
        self.strength = check_strength(self.type, strength)
        if sigma is not None and (
            isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma <= 0.2
        ):
            raise ConfigError(f"regrain sigma must be a fraction of full scale in (0, 0.2], not {sigma!r}")
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size <= 8:
            raise ConfigError(f"regrain size must be a Gaussian width in pixels in (0, 8], not {size!r}")
        self.sigma, self.size = (None if sigma is None else float(sigma)), float(size)
        self.source: Degrain | None = None  # set by restora.stages.link

    def grain_for(self, width: int) -> tuple[npt.NDArray[np.float64], float]:
        """The next frame's grain: standard deviation at each of ``GRAIN_LEVELS`` (NaN: unknown) and
        Gaussian width in this frame's pixels (``width`` wide)."""
        if self.source is None or self.source.measured is None:
            if self.sigma is None:
                raise ConfigError("regrain needs a degrain stage before it, or sigma=...")
            return np.full(len(GRAIN_LEVELS), self.sigma), self.size
        if not self.source.measured:
            raise RuntimeError("regrain got a frame degrain has not measured (the stages are out of step)")
        m: GrainMeasure = self.source.measured.popleft()
        sigma = m.sigma if self.sigma is None else np.full(len(GRAIN_LEVELS), self.sigma)
        return sigma, grain_width(m.correlation) * width / m.width

    def process(self, frames: Frames) -> Frames:
        """``(T, H, W, 3)`` uint8 or uint16 RGB -> same shape and dtype, with grain."""
        out = np.empty_like(frames)
        for t, frame in enumerate(frames):
            sigma, width = self.grain_for(frame.shape[1])
            known = ~np.isnan(sigma)
            if not known.any() or self.strength == 0.0:
                out[t] = frame
                continue
            x = to_unit(frame)
            amp = np.interp(x @ GRAY_WEIGHTS, GRAIN_LEVELS[known], sigma[known]).astype(np.float32)
            seed = int.from_bytes(hashlib.blake2b(frame.tobytes(), digest_size=8).digest(), "little")
            noise = shaped_noise(frame.shape[:2], width, np.random.default_rng(seed))
            out[t] = quantize(x + (np.float32(self.strength) * amp * noise)[..., None], frames.dtype)
        return out

    def describe(self) -> dict[str, object]:
        d = {**super().describe(), "strength": self.strength}
        d["method"] = "grain matched to degrain's measurement" if self.source else "grain of given sigma and size"
        if self.sigma is not None:  # given: the level at every gray level (and, alone, the size)
            d["sigma"] = self.sigma
        if self.source is None:
            d["size"] = self.size
        return d
