"""Color conversions used by the luma-only models and by the SR evaluation protocol.

The super-resolution networks see only luma, as in the SR literature (SRCNN, FSRCNN, ESPCN):
``Y`` is ITU-R BT.601 "studio swing" as computed by MATLAB's ``rgb2ycbcr``, which is also how
published Set5/Set14 PSNR-Y tables are scored. Chroma is resampled conventionally and recombined.
The same formulas are used in training (``training/``) and at inference, so the network sees the
same signal in both.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

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


def rgb_to_ycbcr(rgb: npt.NDArray[np.uint8] | FloatArray) -> FloatArray:
    """Convert RGB to BT.601 studio-swing YCbCr (MATLAB ``rgb2ycbcr``).

    Args:
        rgb: ``(..., 3)`` RGB, either uint8 in [0, 255] or float in [0, 1].

    Returns:
        ``(..., 3)`` float32 YCbCr scaled to [0, 1] (Y in [16/255, 235/255] for in-gamut input).
    """
    x = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return (x @ _RGB2YCBCR.T.astype(np.float32) + _OFFSET.astype(np.float32)).astype(np.float32)


def ycbcr_to_rgb(ycc: FloatArray) -> FloatArray:
    """Inverse of :func:`rgb_to_ycbcr`.

    Args:
        ycc: ``(..., 3)`` float YCbCr in [0, 1].

    Returns:
        ``(..., 3)`` float32 RGB, not clipped (callers quantize with :func:`to_uint8`).
    """
    x = ycc.astype(np.float32) - _OFFSET.astype(np.float32)
    return (x @ _YCBCR2RGB.T.astype(np.float32)).astype(np.float32)


def rgb_to_y(rgb: npt.NDArray[np.uint8] | FloatArray) -> FloatArray:
    """Luma only: ``(..., 3)`` RGB (uint8 or float [0, 1]) -> ``(...)`` float32 Y in [0, 1]."""
    x = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    w = _RGB2YCBCR[0].astype(np.float32)
    y: FloatArray = (x @ w + np.float32(_OFFSET[0])).astype(np.float32)
    return y


def to_uint8(x: FloatArray) -> npt.NDArray[np.uint8]:
    """Round and clip float data in [0, 1] to uint8 [0, 255]."""
    out: npt.NDArray[np.uint8] = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return out
