"""Same-size luma restoration through a 1x luma model (``deblock``, ``denoise``), chroma untouched.

The models (``training/train_deblock.py``, ``training/train_denoise.py``) restore Y only: they have
no view of chroma, which 4:2:0 sources carry at half resolution and whose artifacts and noise the
eye resolves far less.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.color import Frames, quantize, rgb_to_ycbcr, ycbcr_to_rgb
from restora.errors import ConfigError
from restora.inference import infer_images
from restora.stages.base import Stage, StageContext, check_strength


class LumaRestoreStage(Stage):
    """Restore luma at the same size with a 1x luma model; subclasses set ``type`` and ``default_model``.

    ``strength`` blends the restored luma with the input's: 0 = untouched, 1 = the model (default).
    """

    default_model: ClassVar[str]

    def __init__(self, ctx: StageContext, model: str | None = None, strength: float = 1.0) -> None:
        super().__init__(ctx)
        self.model, self.strength = model or self.default_model, check_strength(self.type, strength)
        info = ctx.backend.model_info(self.model)
        if info.scale != 1 or info.channels != 1:
            raise ConfigError(f"model {self.model} is x{info.scale} with {info.channels} channels; need x1 luma")

    def process(self, frames: Frames) -> Frames:
        """``(T, H, W, 3)`` uint8 or uint16 RGB -> the same shape and dtype."""
        ycc = rgb_to_ycbcr(frames)  # (T, H, W, 3) float32 in [0, 1]
        ycc[..., 0] = self.restore_luma(ycc[..., 0])
        return quantize(ycbcr_to_rgb(ycc), frames.dtype)

    def restore_luma(self, y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(T, H, W)`` float32 luma in [0, 1] (studio swing, as decoded) -> restored, same shape, clipped."""
        ctx = self.ctx
        out = infer_images(ctx.backend, self.model or "", y[:, None], tile=ctx.tile, overlap=ctx.overlap)[:, 0]
        return np.clip(y + self.strength * (out - y), 0.0, 1.0)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "strength": self.strength}
