"""Super-resolution stage: luma through the network, chroma resampled bicubically.

As in the SR literature (and the seed article's advice), only luma carries the detail the eye
resolves; the network (``sr_x2`` / ``sr_x4``, trained by ``training/train_sr.py``) restores Y and
Cb/Cr are upsampled with a bicubic filter, then recombined. Color conversion uses the same BT.601
studio-swing YCbCr the model was trained on (``restora.color``), losslessly invertible in float.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from restora.color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb
from restora.errors import ConfigError
from restora.inference import infer_images
from restora.stages.base import Stage, StageContext, check_strength


def resize_plane(plane: npt.NDArray[np.float32], width: int, height: int) -> npt.NDArray[np.float32]:
    """Bicubic resize of one ``(H, W)`` float32 plane (PIL, float precision)."""
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    return np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


class SuperResolution(Stage):
    """Upscale by 2 or 4 with the ``sr_x{scale}`` model (fidelity-trained, synthesizes nothing)."""

    type: ClassVar[str] = "sr"

    def __init__(self, ctx: StageContext, scale: int = 2, model: str | None = None, strength: float = 1.0) -> None:
        """``strength`` blends the restored luma with plain bicubic: 0 = bicubic, 1 = the model (default);
        an archivist's per-shot control for footage where the model's detail is unwelcome."""
        super().__init__(ctx)
        if scale not in (2, 4):
            raise ConfigError(f"sr scale must be 2 or 4, not {scale}")
        self.scale, self.strength = scale, check_strength("sr", strength)
        self.model = model or f"sr_x{scale}"
        info = ctx.backend.model_info(self.model)
        if info.scale != scale or info.channels != 1:
            raise ConfigError(f"model {self.model} is x{info.scale} with {info.channels} channels; need x{scale} luma")

    def process(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """``(T, H, W, 3)`` uint8 RGB -> ``(T, H*s, W*s, 3)`` uint8 RGB."""
        t, h, w, _ = frames.shape
        s = self.scale
        ycc = rgb_to_ycbcr(frames)  # (T, H, W, 3) float32 in [0, 1]
        y = infer_images(
            self.ctx.backend, self.model or "", ycc[..., 0][:, None], tile=self.ctx.tile, overlap=self.ctx.overlap
        )[:, 0]
        out = np.empty((t, h * s, w * s, 3), dtype=np.float32)
        for i in range(t):
            for c in (1, 2):
                out[i, ..., c] = resize_plane(ycc[i, ..., c], w * s, h * s)
            if self.strength < 1.0:
                base = resize_plane(ycc[i, ..., 0], w * s, h * s)
                y[i] = base + self.strength * (y[i] - base)
        out[..., 0] = np.clip(y, 0.0, 1.0)
        return to_uint8(ycbcr_to_rgb(out))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "strength": self.strength}
