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


# Transfer functions, for measuring the SDR-trained models on HDR code values (restora.eval_transfer).
REFERENCE_WHITE_NITS = 203.0  # ITU-R BT.2408: an SDR picture's white in an HDR programme
_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * float(np.log(4 * _HLG_A))


def srgb_to_linear(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    """IEC 61966-2-1 sRGB decoding: code values in [0, 1] -> linear light in [0, 1]."""
    x = np.asarray(x, np.float64)
    out: npt.NDArray[np.float64] = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return out


def pq_encode(nits: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    """SMPTE ST 2084 (PQ) inverse EOTF: display light in cd/m2 (0-10000) -> code values in [0, 1]."""
    y = np.clip(np.asarray(nits, np.float64) / 10000.0, 0.0, 1.0) ** _PQ_M1
    out: npt.NDArray[np.float64] = ((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y)) ** _PQ_M2
    return out


def hlg_oetf(e: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    """ARIB STD-B67 / BT.2100 HLG OETF: scene light in [0, 1] -> code values in [0, 1]."""
    e = np.clip(np.asarray(e, np.float64), 0.0, 1.0)
    log = _HLG_A * np.log(np.maximum(12 * e - _HLG_B, 1e-12)) + _HLG_C
    out: npt.NDArray[np.float64] = np.where(e <= 1 / 12, np.sqrt(3 * e), log)
    return out


# scene light that HLG codes at 75 %, BT.2408's reference white (the inverse of hlg_oetf at 0.75)
HLG_REFERENCE_WHITE = float((np.exp((0.75 - _HLG_C) / _HLG_A) + _HLG_B) / 12)
