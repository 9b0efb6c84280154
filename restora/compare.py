"""Before/after stills: bicubic upscaling of the input next to Restora's output, same frame."""

from __future__ import annotations

from fractions import Fraction
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
        frame: frame number of the source to compare; the restored frame is the one at the same
            instant (frame ``2 * frame`` of a field-rate restore, whose frame rate is twice the source's).
        crop: edge of the square center crop in output pixels (the whole frame if larger).

    Returns:
        PSNR-Y between the two halves (how far the restoration moved away from plain bicubic).
    """
    src_info, out_info = media.probe(source), media.probe(restored)
    a = media.frame_at(source, frame, src_info)
    per_frame = Fraction(out_info.video.frame_rate) / Fraction(src_info.video.frame_rate)
    b = media.frame_at(restored, frame * round(per_frame) if per_frame >= 1 else frame, out_info)
    h, w = b.shape[:2]
    bic = np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BICUBIC))
    ch, cw = min(crop, h), min(crop, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    left, right = bic[y0 : y0 + ch, x0 : x0 + cw], b[y0 : y0 + ch, x0 : x0 + cw]
    gap = np.full((ch, 8, 3), 255, dtype=np.uint8)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    media.write_still(np.concatenate([left, gap, right], axis=1), out_png)
    return {"psnr_y_vs_bicubic": psnr_y(right, left)}
