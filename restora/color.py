"""Color conversions used by the luma-only models and by the SR evaluation protocol.

The super-resolution networks see only luma, as in the SR literature (SRCNN, FSRCNN, ESPCN):
``Y`` is ITU-R BT.601 "studio swing" as computed by MATLAB's ``rgb2ycbcr``, which is also how
published Set5/Set14 PSNR-Y tables are scored. Chroma is resampled conventionally and recombined.
The same formulas are used in training (``training/``) and at inference, so the network sees the
same signal in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
# Frames as the pipeline carries them: ``(..., 3)`` RGB, uint8 for 8-bit sources, uint16 (full
# 16-bit scale, 0-65535) for sources of more than 8 bits, so a 10-bit or HDR source keeps its precision.
Frames = npt.NDArray[np.unsignedinteger[Any]]


def unit_scale(dtype: np.dtype[Any]) -> float:
    """The value of full scale (1.0) for integer frames of ``dtype``: 255 for uint8, 65535 for uint16."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise TypeError(f"frames must be uint8 or uint16, not {dtype}")


def to_unit(x: Frames | FloatArray) -> FloatArray:
    """Integer frames (uint8/uint16) -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    out: FloatArray = x.astype(np.float32) / np.float32(unit_scale(x.dtype))
    return out


def quantize(x: FloatArray, dtype: np.dtype[Any]) -> Frames:
    """Round and clip float data in [0, 1] to integer frames of ``dtype`` (uint8 or uint16)."""
    top = unit_scale(dtype)
    out: Frames = np.clip(np.rint(x * np.float32(top)), 0, top).astype(dtype)
    return out


# MATLAB rgb2ycbcr (BT.601, studio range) for RGB in [0, 1]; outputs in [0, 1] (i.e. /255).
_RGB2YCBCR = (
    np.array(
        [
            [65.481, 128.553, 24.966],
            [-37.797, -74.203, 112.0],
            [112.0, -93.786, -18.214],
        ],
        dtype=np.float64,
    )
    / 255.0
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64) / 255.0
_YCBCR2RGB = np.linalg.inv(_RGB2YCBCR)


def rgb_to_ycbcr(rgb: Frames | FloatArray) -> FloatArray:
    """Convert RGB to BT.601 studio-swing YCbCr (MATLAB ``rgb2ycbcr``).

    Args:
        rgb: ``(..., 3)`` RGB, uint8 in [0, 255], uint16 in [0, 65535] or float in [0, 1].

    Returns:
        ``(..., 3)`` float32 YCbCr scaled to [0, 1] (Y in [16/255, 235/255] for in-gamut input).
    """
    x = to_unit(rgb)
    return (x @ _RGB2YCBCR.T.astype(np.float32) + _OFFSET.astype(np.float32)).astype(np.float32)


def ycbcr_to_rgb(ycc: FloatArray) -> FloatArray:
    """Inverse of :func:`rgb_to_ycbcr`.

    Args:
        ycc: ``(..., 3)`` float YCbCr in [0, 1].

    Returns:
        ``(..., 3)`` float32 RGB, not clipped (callers quantize with :func:`quantize` or :func:`to_uint8`).
    """
    x = ycc.astype(np.float32) - _OFFSET.astype(np.float32)
    return (x @ _YCBCR2RGB.T.astype(np.float32)).astype(np.float32)


def rgb_to_y(rgb: Frames | FloatArray) -> FloatArray:
    """Luma only: ``(..., 3)`` RGB (uint8, uint16 or float [0, 1]) -> ``(...)`` float32 Y in [0, 1]."""
    x = to_unit(rgb)
    w = _RGB2YCBCR[0].astype(np.float32)
    y: FloatArray = (x @ w + np.float32(_OFFSET[0])).astype(np.float32)
    return y


def to_uint8(x: FloatArray) -> npt.NDArray[np.uint8]:
    """Round and clip float data in [0, 1] to uint8 [0, 255]."""
    out: npt.NDArray[np.uint8] = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return out
