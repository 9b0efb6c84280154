"""How the SR models, trained on SDR (gamma-coded) pictures, do on PQ and HLG code values.

The pipeline runs them on whatever code values a source carries: an HDR10 or HLG source's frames
are decoded to 16-bit R'G'B' of its own transfer, and the stage takes BT.601 studio-swing luma of
those (:func:`restora.color.rgb_to_y`), as for SDR. This measures what that gives, on Set5:

* each HR image is taken as scene content at BT.2408's reference level (SDR white -> 203 cd/m2 in
  PQ, 75 % HLG signal) and coded three ways: the image's own sRGB code values (SDR, the models'
  training domain), PQ and HLG;
* luma of each (studio swing, as the stage computes it), quantised to 10 bits, downscaled by
  bicubic (PIL, float), upscaled by the model and by bicubic;
* PSNR-Y on the coded values (peak 1.0, ``scale`` pixels of border cropped), and the model's gain
  over bicubic per transfer. A gain that holds on PQ/HLG says the model's prior carries over to
  those code values; PSNR in a coded domain is not a perceptual HDR metric.

Primaries are left as the image's: only the transfer changes, the part that moves code values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from restora.color import HLG_REFERENCE_WHITE, REFERENCE_WHITE_NITS, hlg_oetf, pq_encode, rgb_to_y, srgb_to_linear
from restora.inference import InferenceBackend
from restora.metrics import crop_border, psnr
from restora.stages.base import StageContext
from restora.stages.sr import SuperResolution

TRANSFERS = ("sdr", "pq", "hlg")


def coded_luma(rgb: npt.NDArray[np.uint8], transfer: str) -> npt.NDArray[np.float32]:
    """``(H, W, 3)`` uint8 sRGB picture -> ``(H, W)`` float32 studio-swing luma of its R'G'B' coded
    with ``transfer`` ("sdr": as it is; "pq": linear light at 203 cd/m2 for white; "hlg": white at
    75 % signal), quantised to 10 bits."""
    code = rgb.astype(np.float64) / 255.0
    if transfer == "pq":
        code = pq_encode(srgb_to_linear(code) * REFERENCE_WHITE_NITS)
    elif transfer == "hlg":
        code = hlg_oetf(srgb_to_linear(code) * HLG_REFERENCE_WHITE)
    elif transfer != "sdr":
        raise ValueError(f"unknown transfer {transfer!r}")
    y = rgb_to_y(code.astype(np.float32))
    out: npt.NDArray[np.float32] = (np.rint(y * 1023.0) / 1023.0).astype(np.float32)
    return out


def _resize(y: npt.NDArray[np.float32], size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """PIL bicubic resize of a float plane to ``size`` = (width, height), quantised to 10 bits."""
    out = np.asarray(Image.fromarray(y, mode="F").resize(size, Image.Resampling.BICUBIC), np.float32)
    q: npt.NDArray[np.float32] = (np.rint(np.clip(out, 0.0, 1.0) * 1023.0) / 1023.0).astype(np.float32)
    return q


def evaluate_sr_transfers(backend: InferenceBackend, data: Path, scales: tuple[int, ...] = (2, 4)) -> dict[str, Any]:
    """Mean PSNR-Y of ``sr_x{scale}`` and of bicubic on Set5 coded SDR / PQ / HLG (module docstring).

    Returns:
        ``{"rows": [{"scale", "transfer", "model_psnr", "bicubic_psnr", "gain_db"}], "images": 5}``.
    """
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((data / "images/Set5/HR").glob("*.png"))]
    rows = []
    for scale in scales:
        sr = SuperResolution(StageContext(backend=backend), scale=scale, model=f"sr_x{scale}")
        for transfer in TRANSFERS:
            model_scores, bicubic_scores = [], []
            for rgb in images:
                h, w = (rgb.shape[0] // scale) * scale, (rgb.shape[1] // scale) * scale
                hr = coded_luma(rgb[:h, :w], transfer)
                lr = _resize(hr, (w // scale, h // scale))
                up = sr.upscale_luma(lr[None])[0]
                bic = _resize(lr, (w, h))
                truth = crop_border(hr, scale).astype(np.float64)
                model_scores.append(psnr(crop_border(up, scale).astype(np.float64), truth))
                bicubic_scores.append(psnr(crop_border(bic, scale).astype(np.float64), truth))
            m, b = float(np.mean(model_scores)), float(np.mean(bicubic_scores))
            rows.append({"scale": scale, "transfer": transfer, "model_psnr": m, "bicubic_psnr": b, "gain_db": m - b})
    return {"rows": rows, "images": len(images)}


def format_transfer_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_sr_transfers`."""
    lines = [
        f"SR on HDR code values: Set5 ({result['images']} images) luma coded SDR / PQ / HLG, PSNR-Y (dB)",
        f"{'scale':>5} {'transfer':>8} {'model':>8} {'bicubic':>8} {'gain':>7}",
    ]
    for r in result["rows"]:
        lines.append(
            f"{'x' + str(r['scale']):>5} {r['transfer']:>8} {r['model_psnr']:8.2f} {r['bicubic_psnr']:8.2f} "
            f"{r['gain_db']:+7.2f}"
        )
    return "\n".join(lines)
