"""Before/after stills: bicubic upscaling of the input next to Restora's output, same frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from restora import media
from restora.metrics import psnr_y


def before_after(source: Path, restored: Path, out_png: Path, frame: int = 0, crop: int = 360) -> dict[str, float]:
    """Write a side-by-side PNG (left: bicubic-upscaled source, right: restored) of a center crop.

    Args:
        source: the original video.
        restored: Restora's output (an integer multiple of the source size).
        out_png: where to write the still.
        frame: frame number to compare.
        crop: edge of the square center crop in output pixels (the whole frame if larger).

    Returns:
        PSNR-Y between the two halves (how far the restoration moved away from plain bicubic).
    """
    a = media.frame_at(source, frame)
    b = media.frame_at(restored, frame)
    h, w = b.shape[:2]
    bic = np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BICUBIC))
    ch, cw = min(crop, h), min(crop, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    left, right = bic[y0 : y0 + ch, x0 : x0 + cw], b[y0 : y0 + ch, x0 : x0 + cw]
    gap = np.full((ch, 8, 3), 255, dtype=np.uint8)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    media.write_still(np.concatenate([left, gap, right], axis=1), out_png)
    return {"psnr_y_vs_bicubic": psnr_y(right, left)}
