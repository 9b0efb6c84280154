"""Compression-artifact removal stage: luma through the ``deblock`` model, chroma untouched.

The model (trained by ``training/train_deblock.py`` on grayscale JPEG and real H.264/HEVC
re-encodes of video, see ``triton_models/deblock/README.md``) removes blocking, ringing and
mosquito noise from Y.
"""

from __future__ import annotations

from typing import ClassVar

from restora.stages.luma import LumaRestoreStage


class Deblock(LumaRestoreStage):
    """Remove compression artifacts at the same size with the ``deblock`` model (``strength`` in [0, 1])."""

    type: ClassVar[str] = "deblock"
    default_model: ClassVar[str] = "deblock"
