"""Model evaluation, scored as the literature does, through the production stages.

* SR on Set5 (:func:`evaluate_sr_set5`): PSNR-Y and SSIM-Y (BT.601, border = scale) of
  ``SuperResolution.process`` on RGB frames (luma through the model, chroma bicubic, quantized to
  8-bit RGB), so the numbers are what a user gets. It agrees with the black-box protocol
  ``../shared/tools/sr_eval.py`` (CLI + lossless video) within a few hundredths of a dB.
* Artifact removal (:func:`evaluate_deblock`): ``classic5`` grayscale JPEG at q=10/20/30/40 (the
  ARCNN/DnCNN protocol) and the ``cars`` clip (raw I420 truth) encoded by libx264 at CRF 35/40/45,
  PSNR/SSIM of the luma before and after ``Deblock.restore_luma``, and the best of three Gaussian
  blurs as the trivial baseline.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageFilter

from restora.inference import InferenceBackend
from restora.metrics import psnr, psnr_y, ssim, ssim_y
from restora.stages.base import StageContext
from restora.stages.deblock import Deblock
from restora.stages.sr import SuperResolution

PUBLISHED = {  # Set5 PSNR-Y (dB) from the papers, for the table
    2: {"bicubic": 33.66, "SRCNN": 36.66, "FSRCNN": 37.00, "EDSR": 38.11},
    4: {"bicubic": 28.42, "SRCNN": 30.48, "FSRCNN": 30.72, "ESPCN": 30.90, "EDSR": 32.46},
}


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def evaluate_sr_set5(backend: InferenceBackend, scale: int, data: Path, model: str | None = None) -> dict[str, Any]:
    """Per-image and mean PSNR-Y of ``model`` (default ``sr_x{scale}``) and of bicubic (PIL) on
    Set5's MATLAB-bicubic LR images."""
    base = data / "images" / "Set5"
    stage = SuperResolution(StageContext(backend=backend), scale=scale, model=model)
    rows = []
    for hr_p in sorted((base / "HR").glob("*.png")):
        lr = _rgb(base / f"LR_bicubic/X{scale}/{hr_p.stem}x{scale}.png")
        h, w = lr.shape[0] * scale, lr.shape[1] * scale
        hr = _rgb(hr_p)[:h, :w]
        sr = stage.process(lr[None])[0]
        bic = np.asarray(Image.fromarray(lr).resize((w, h), Image.Resampling.BICUBIC))
        rows.append(
            {
                "image": hr_p.stem,
                "model": psnr_y(sr, hr, scale),
                "bicubic": psnr_y(bic, hr, scale),
                "ssim_model": ssim_y(sr, hr, scale),
                "ssim_bicubic": ssim_y(bic, hr, scale),
            }
        )
    info = backend.model_info(stage.model or "")
    return {
        "set": "Set5",
        "scale": scale,
        "model": stage.model,
        "model_version": info.version,
        "backend": backend.name,
        "images": rows,
        "mean_model": float(np.mean([r["model"] for r in rows])),
        "mean_bicubic": float(np.mean([r["bicubic"] for r in rows])),
        "mean_ssim_model": float(np.mean([r["ssim_model"] for r in rows])),
        "mean_ssim_bicubic": float(np.mean([r["ssim_bicubic"] for r in rows])),
        "published": PUBLISHED.get(scale, {}),
    }


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table of :func:`evaluate_sr_set5` results."""
    lines = []
    for r in results:
        lines.append(f"Set5 x{r['scale']}  ({r['model']} v{r['model_version']}, {r['backend']})")
        lines.append(f"  {'image':12s} {'restora':>8s} {'bicubic':>8s} {'gain':>6s}")
        for row in r["images"]:
            lines.append(
                f"  {row['image']:12s} {row['model']:8.2f} {row['bicubic']:8.2f} {row['model'] - row['bicubic']:6.2f}"
            )
        lines.append(
            f"  {'mean':12s} {r['mean_model']:8.2f} {r['mean_bicubic']:8.2f} {r['mean_model'] - r['mean_bicubic']:6.2f}"
        )
        lines.append(f"  {'SSIM-Y':12s} {r['mean_ssim_model']:8.4f} {r['mean_ssim_bicubic']:8.4f}")
        pub = ", ".join(f"{k} {v:.2f}" for k, v in r["published"].items())
        lines.append(f"  published: {pub}")
    return "\n".join(lines)


# classic5 grayscale JPEG PSNR (dB): the JPEG itself and published models (ARCNN, ICCV 2015;
# DnCNN-3, TIP 2017, its Table on Classic5)
PUBLISHED_JPEG = {
    10: {"JPEG": 27.82, "ARCNN": 29.03, "DnCNN-3": 29.40},
    20: {"JPEG": 30.12, "ARCNN": 31.15, "DnCNN-3": 31.63},
    30: {"JPEG": 31.48, "ARCNN": 32.51, "DnCNN-3": 32.91},
    40: {"JPEG": 32.43, "ARCNN": 33.34, "DnCNN-3": 33.77},
}


def jpeg_gray(y: np.ndarray, quality: int) -> np.ndarray:
    """Grayscale JPEG round trip of an ``(H, W)`` uint8 image at ``quality`` (PIL/libjpeg)."""
    buf = io.BytesIO()
    Image.fromarray(y, mode="L").save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def cars_i420(data: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The 30 raw I420 frames of ``video/cars/cars_320x240.i420`` as (Y, U, V) uint8 planes."""
    w, h = 320, 240
    raw = np.fromfile(data / "video/cars/cars_320x240.i420", dtype=np.uint8).reshape(-1, w * h * 3 // 2)
    n, c = w * h, (h // 2, w // 2)
    return [(b[:n].reshape(h, w), b[n : n * 5 // 4].reshape(c), b[n * 5 // 4 :].reshape(c)) for b in raw]


def encode_i420(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], crf: int) -> list[np.ndarray]:
    """libx264 (preset medium, 25 fps) at ``crf`` straight from I420 planes; the decoded Y planes."""
    h, w = frames[0][0].shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, 25)
        vs.codec_context.options = {"crf": str(crf), "preset": "medium"}
        for i, (y, u, v) in enumerate(frames):
            planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
            f = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf, mode="r", format="h264") as inp:
        return [f.to_ndarray(format="yuv420p")[:h] for f in inp.decode(video=0)]


def _score(pairs: list[tuple[np.ndarray, np.ndarray]], restore: Any) -> dict[str, float]:
    """Mean PSNR/SSIM of input, best Gaussian blur and ``restore`` over (clean, degraded) uint8 pairs."""

    def blurred(d: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(sigma)), np.float64)

    out = [np.rint(restore(d)) for _, d in pairs]
    r = {
        "input": float(np.mean([psnr(c.astype(np.float64), d.astype(np.float64), peak=255.0) for c, d in pairs])),
        "best_blur": max(
            float(np.mean([psnr(c.astype(np.float64), blurred(d, s), peak=255.0) for c, d in pairs]))
            for s in (0.5, 0.7, 1.0)
        ),
        "model": float(
            np.mean([psnr(c.astype(np.float64), o, peak=255.0) for (c, _), o in zip(pairs, out, strict=True)])
        ),
        "ssim_input": float(np.mean([ssim(c, d) for c, d in pairs])),
        "ssim_model": float(np.mean([ssim(c, o) for (c, _), o in zip(pairs, out, strict=True)])),
    }
    r["gain"] = r["model"] - r["input"]
    return r


def artifact_rows(
    restore: Any, data: Path, qualities: tuple[int, ...] = (10, 20, 30, 40), crfs: tuple[int, ...] = (35, 40, 45)
) -> list[dict[str, Any]]:
    """classic5 grayscale JPEG at ``qualities`` and the cars clip by libx264 at ``crfs``, scored for
    ``restore`` (``(H, W)`` uint8 luma -> ``(H, W)`` float luma on the 8-bit scale); one row each."""
    classic5 = [np.asarray(Image.open(p).convert("L")) for p in sorted((data / "images/classic5").glob("*.bmp"))]
    rows = []
    for q in qualities:
        r = _score([(c, jpeg_gray(c, q)) for c in classic5], restore)
        rows.append({"set": "classic5", "degradation": f"JPEG q={q}", **r, "published": PUBLISHED_JPEG.get(q, {})})
    frames = cars_i420(data)
    for crf in crfs:
        pairs = [(t[0], d) for t, d in zip(frames, encode_i420(frames, crf), strict=True)]
        rows.append(
            {"set": "cars 320x240", "degradation": f"H.264 CRF {crf}", **_score(pairs, restore), "published": {}}
        )
    return rows


def evaluate_deblock(backend: InferenceBackend, data: Path, model: str = "deblock") -> dict[str, Any]:
    """:func:`artifact_rows` through ``Deblock.restore_luma`` (the production stage minus color conversion)."""
    stage = Deblock(StageContext(backend=backend), model=model)

    def restore(d: np.ndarray) -> np.ndarray:
        y: np.ndarray = stage.restore_luma(d[None].astype(np.float32) / 255.0)[0]
        return y * 255.0

    info = backend.model_info(model)
    return {
        "model": model,
        "model_version": info.version,
        "backend": backend.name,
        "rows": artifact_rows(restore, data),
    }


def format_deblock_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_deblock` results."""
    lines = [
        f"Artifact removal ({result['model']} v{result['model_version']}, {result['backend']}), PSNR / SSIM of luma",
        f"  {'set':13s} {'degradation':13s} {'input':>6s} {'blur':>6s} {'model':>6s} {'gain':>6s} "
        f"{'SSIM in':>8s} {'SSIM out':>8s}  published",
    ]
    for r in result["rows"]:
        pub = ", ".join(f"{k} {v:.2f}" for k, v in r["published"].items())
        lines.append(
            f"  {r['set']:13s} {r['degradation']:13s} {r['input']:6.2f} {r['best_blur']:6.2f} {r['model']:6.2f} "
            f"{r['gain']:+6.2f} {r['ssim_input']:8.4f} {r['ssim_model']:8.4f}  {pub}"
        )
    return "\n".join(lines)
