"""Blind denoising stage: luma through the ``denoise`` model, chroma untouched.

The model (trained by ``training/train_denoise.py``, see ``triton_models/denoise/README.md``)
removes Gaussian and Poisson (shot) noise of unknown level from Y; it estimates the level itself.
Film grain is another matter: it is correlated in space, and the model, trained on white noise,
barely touches it; the classical ``degrain`` stage averages it out over time. ``strength`` below 1
keeps part of the texture.
"""

from __future__ import annotations

from typing import ClassVar

from restora.stages.luma import LumaRestoreStage


class Denoise(LumaRestoreStage):
    """Remove noise at the same size with the ``denoise`` model (``strength`` in [0, 1])."""

    type: ClassVar[str] = "denoise"
    default_model: ClassVar[str] = "denoise"
