"""Super-resolution stage: luma through the network, chroma resampled bicubically.

As in the SR literature (and the seed article's advice), only luma carries the detail the eye
resolves; the network (``sr_x2`` / ``sr_x4``, trained by ``training/train_sr.py``) restores Y and
Cb/Cr are upsampled with a bicubic filter, then recombined. Color conversion uses the same BT.601
studio-swing YCbCr the model was trained on (``restora.color``), losslessly invertible in float.

A multi-frame model (``vsr_x4``, ``restora.frames`` = F > 1) gets, for every frame, the window of
F consecutive frames centred on it: the stage's ``context`` is F // 2, and the pipeline streams
frames to it with that many neighbours on each side across decode batches and chunk boundaries
(``restora.pipeline.stream_stage``). Windows are clamped only at the ends of a shot (never across a
cut), where the first and last F // 2 frames see their edge frame repeated instead of neighbours.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from restora.color import Frames, quantize, rgb_to_ycbcr, ycbcr_to_rgb
from restora.errors import ConfigError
from restora.inference import infer_images
from restora.stages.base import Stage, StageContext, check_strength


def resize_plane(plane: npt.NDArray[np.float32], width: int, height: int) -> npt.NDArray[np.float32]:
    """Bicubic resize of one ``(H, W)`` float32 plane (PIL, float precision)."""
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    return np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def temporal_windows(y: npt.NDArray[np.float32], frames: int, start: int, stop: int) -> npt.NDArray[np.float32]:
    """Windows of ``frames`` consecutive planes centred on ``start..stop-1``, indices clamped to the
    sequence: ``(T, h, w)`` -> ``(stop - start, frames, h, w)`` float32, oldest first."""
    k = frames // 2
    idx = np.clip(np.arange(start, stop)[:, None] + np.arange(-k, k + 1)[None, :], 0, len(y) - 1)
    return np.ascontiguousarray(y[idx])


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

    @property
    def context(self) -> int:
        """``restora.frames // 2`` of the model: 2 for the 5-frame ``vsr_x4``, 0 for single-frame models."""
        return self.ctx.backend.model_info(self.model or "").frames // 2

    def process(self, frames: Frames) -> Frames:
        """``(T, H, W, 3)`` uint8 or uint16 RGB -> ``(T, H*s, W*s, 3)``, same dtype."""
        return self.process_span(frames, 0, len(frames))

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """``frames[start:stop]`` upscaled, ``(stop - start, H*s, W*s, 3)``, same dtype; a multi-frame model
        reads the other frames of ``(T, H, W, 3)`` as the neighbours of the first and last ones."""
        k = self.context
        lo, hi = max(0, start - k), min(len(frames), stop + k)  # only the frames the windows can reach
        _, h, w, _ = frames.shape
        s = self.scale
        ycc = rgb_to_ycbcr(frames[lo:hi])  # (T', H, W, 3) float32 in [0, 1]
        out = np.empty((stop - start, h * s, w * s, 3), dtype=np.float32)
        out[..., 0] = self.upscale_luma(ycc[..., 0], start - lo, stop - lo)
        for i in range(stop - start):
            for c in (1, 2):
                out[i, ..., c] = resize_plane(ycc[start - lo + i, ..., c], w * s, h * s)
        return quantize(ycbcr_to_rgb(out), frames.dtype)

    def upscale_luma(
        self, y: npt.NDArray[np.float32], start: int = 0, stop: int | None = None
    ) -> npt.NDArray[np.float32]:
        """``(T, h, w)`` float32 luma in [0, 1] (studio swing) -> planes ``start..stop-1`` (default all)
        upscaled, ``(stop - start, h*s, w*s)`` float32, clipped; windows of a multi-frame model are
        clamped to ``y``."""
        stop = len(y) if stop is None else stop
        _, h, w = y.shape
        s = self.scale
        info = self.ctx.backend.model_info(self.model or "")
        if info.frames == 1:
            out = self._infer(y[start:stop, None])
        else:  # windows built one request (max_batch) at a time: all at once would take F times the memory
            n = max(1, info.max_batch)
            parts = [self._infer(temporal_windows(y, info.frames, i, min(stop, i + n))) for i in range(start, stop, n)]
            out = np.concatenate(parts)
        if self.strength < 1.0:
            for i in range(stop - start):
                base = resize_plane(y[start + i], w * s, h * s)
                out[i] = base + self.strength * (out[i] - base)
        return np.clip(out, 0.0, 1.0)

    def _infer(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(N, F, h, w)`` -> ``(N, h*s, w*s)`` through the model (tiled as configured)."""
        up = infer_images(self.ctx.backend, self.model or "", x, tile=self.ctx.tile, overlap=self.ctx.overlap)
        return up[:, 0]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "strength": self.strength}
