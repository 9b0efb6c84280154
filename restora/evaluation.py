"""Model evaluation, scored as the literature does, through the production stages.

* SR on Set5 (:func:`evaluate_sr_set5`): PSNR-Y and SSIM-Y (BT.601, border = scale) of
  ``SuperResolution.process`` on RGB frames (luma through the model, chroma bicubic, quantized to
  8-bit RGB), so the numbers are what a user gets. It agrees with the black-box protocol
  ``../shared/tools/sr_eval.py`` (CLI + lossless video) within a few hundredths of a dB.
* Artifact removal (:func:`evaluate_deblock`): ``classic5`` grayscale JPEG at q=10/20/30/40 (the
  ARCNN/DnCNN protocol) and the ``cars`` clip (raw I420 truth) encoded by libx264 at CRF
  20/25/30/35/40/45 (at 20-30 little is left to remove: a good model does no harm there) and by
  MPEG-2 and MPEG-4 Part 2 at quantiser scales 2-31, and the same for the raw QCIF ``foreman`` frames (a second
  held-out clip), PSNR/SSIM of the luma before and after ``Deblock.restore_luma`` at full strength
  and, on the video rows, with ``strength="auto"``, and the best of five Gaussian blurs as the
  trivial baseline.
* Denoising (:func:`evaluate_denoise`): ``classic5`` with seeded Gaussian noise (sigma 15/25/50) and
  Poisson noise, the ``cars`` luma at sigma 25, through ``Denoise.restore_luma``, same baselines.
* Video SR x4 (:func:`evaluate_vsr`): the held-out ``cars`` clip (raw truth), bicubic x4 LR,
  the multi-frame model against the single-frame ``sr_x4`` per frame: PSNR/SSIM-Y and the
  flow-warped temporal error (:func:`restora.metrics.temporal_warp_error`).
* Joint restoration x2 (:func:`evaluate_joint_x2`): noisy, compressed x2 LR luma (Set5 with JPEG,
  cars with real H.264) through one model and through the chain ``denoise -> deblock -> sr_x2``,
  PSNR/SSIM-Y and wall time of both on the same inputs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from restora.color import rgb_to_y
from restora.inference import InferenceBackend
from restora.media import codec_roundtrip, frame_qp, qp_series
from restora.metrics import crop_border, psnr, psnr_y, reference_motion, ssim, ssim_y, temporal_warp_error
from restora.stages.base import StageContext
from restora.stages.deblock import Deblock
from restora.stages.denoise import Denoise
from restora.stages.luma import LumaRestoreStage
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


# Raw I420 clips of ../shared/data held out from every training recipe: name -> (path, width, height)
RAW_CLIPS = {
    "cars": ("video/cars/cars_320x240.i420", 320, 240),
    "foreman": ("video/foreman_qcif/foreman_part_qcif.yuv", 176, 144),
}


def raw_i420(data: Path, clip: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Frames of the raw clip ``clip`` of :data:`RAW_CLIPS` as (Y ``(H, W)``, U, V ``(H/2, W/2)``) uint8 planes."""
    rel, w, h = RAW_CLIPS[clip]
    raw = np.fromfile(data / rel, dtype=np.uint8).reshape(-1, w * h * 3 // 2)
    n, c = w * h, (h // 2, w // 2)
    return [(b[:n].reshape(h, w), b[n : n * 5 // 4].reshape(c), b[n * 5 // 4 :].reshape(c)) for b in raw]


def raw_rgb(data: Path, clip: str) -> np.ndarray:
    """Frames of the raw clip ``clip`` of :data:`RAW_CLIPS` as ``(T, H, W, 3)`` uint8 RGB (BT.601 studio
    range, chroma repeated to full size)."""
    from restora.color import quantize, ycbcr_to_rgb

    out = []
    for y, u, v in raw_i420(data, clip):
        planes = np.stack([y, u.repeat(2, 0).repeat(2, 1), v.repeat(2, 0).repeat(2, 1)], -1)
        ycc: npt.NDArray[np.float32] = planes.astype(np.float32) / np.float32(255)
        out.append(quantize(ycbcr_to_rgb(ycc), np.dtype(np.uint8)))
    return np.stack(out)


def cars_i420(data: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The 30 raw I420 frames of ``video/cars/cars_320x240.i420`` as (Y, U, V) uint8 planes."""
    return raw_i420(data, "cars")


def coded_i420(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], level: int, codec: str = "libx264"
) -> list[tuple[np.ndarray, float]]:
    """``codec`` at ``level`` (libx264: CRF, preset medium; mpeg2video: the fixed quantiser scale)
    at 25 fps straight from I420 planes: each decoded Y plane ``(H, W)`` uint8 with the frame's mean
    quantiser (:func:`restora.media.frame_qp`, gaps filled by :func:`restora.media.qp_series`)."""
    h, w = frames[0][0].shape
    yuv = [av.VideoFrame.from_ndarray(np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w),
                                      format="yuv420p") for y, u, v in frames]  # fmt: skip
    dec = codec_roundtrip(yuv, codec, level)
    series = qp_series([frame_qp(f) for f in dec])
    if series is None:
        raise RuntimeError(f"the {codec} decoder exported no quantiser")
    return [(f.to_ndarray(format="yuv420p")[:h], q) for f, q in zip(dec, series[1], strict=True)]


def _model_score(pairs: list[tuple[np.ndarray, np.ndarray]], restore: Any) -> tuple[float, float]:
    """Mean PSNR and SSIM of ``restore`` (output rounded to 8 bits) over (clean, degraded) uint8 pairs."""
    out = [np.rint(restore(d)) for _, d in pairs]
    return (
        float(np.mean([psnr(c.astype(np.float64), o, peak=255.0) for (c, _), o in zip(pairs, out, strict=True)])),
        float(np.mean([ssim(c, o) for (c, _), o in zip(pairs, out, strict=True)])),
    )


def _score(pairs: list[tuple[np.ndarray, np.ndarray]], restore: Any) -> dict[str, float]:
    """Mean PSNR/SSIM of input, best Gaussian blur and ``restore`` over (clean, degraded) uint8 pairs."""

    def blurred(d: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(sigma)), np.float64)

    model, ssim_model = _model_score(pairs, restore)
    r = {
        "input": float(np.mean([psnr(c.astype(np.float64), d.astype(np.float64), peak=255.0) for c, d in pairs])),
        "best_blur": max(
            float(np.mean([psnr(c.astype(np.float64), blurred(d, s), peak=255.0) for c, d in pairs]))
            for s in (0.5, 0.7, 1.0, 1.5, 2.0)
        ),
        "model": model,
        "ssim_input": float(np.mean([ssim(c, d) for c, d in pairs])),
        "ssim_model": ssim_model,
    }
    r["gain"] = r["model"] - r["input"]
    return r


ARTIFACT_CRFS = (25, 30, 35, 40, 45)  # libx264 CRFs of the video rows: light (no harm expected) to heavy
ARCHIVE_QSCALES = (2, 4, 8, 16, 31)  # fixed quantiser scales of the MPEG-2 / MPEG-4 Part 2 rows: near-lossless to worst


def artifact_pairs(
    data: Path, qualities: tuple[int, ...] = (10, 20, 30, 40), crfs: tuple[int, ...] = ARTIFACT_CRFS,
    clips: tuple[str, ...] = tuple(RAW_CLIPS), mpeg2: tuple[int, ...] = (), mpeg4: tuple[int, ...] = (),
) -> Iterator[tuple[str, str, list[tuple[np.ndarray, np.ndarray]], float | None, str | None]]:  # fmt: skip
    """``(set, degradation, [(clean, degraded) (H, W) uint8 luma], mean quantiser, its codec)``:
    classic5 grayscale JPEG at ``qualities`` (no quantiser), then the raw ``clips``
    (:data:`RAW_CLIPS`) through libx264 at ``crfs``, MPEG-2 and MPEG-4 Part 2 at the quantiser scales
    ``mpeg2`` / ``mpeg4`` (one encode each; ``set`` names the clip and its size, ``"cars 320x240"``;
    the mean quantiser of the encode's frames and its codec, ``"h264"``, ``"mpeg2"`` or ``"mpeg4"``,
    are what the pipeline hands a chunk's stages)."""
    classic5 = [np.asarray(Image.open(p).convert("L")) for p in sorted((data / "images/classic5").glob("*.bmp"))]
    for q in qualities:
        yield "classic5", f"JPEG q={q}", [(c, jpeg_gray(c, q)) for c in classic5], None, None
    for clip in clips:
        frames = raw_i420(data, clip)
        label = f"{clip} {RAW_CLIPS[clip][1]}x{RAW_CLIPS[clip][2]}"
        for codec, levels, name, kind in (
            ("libx264", crfs, "H.264 CRF {}", "h264"),
            ("mpeg2video", mpeg2, "MPEG-2 q={}", "mpeg2"),
            ("mpeg4", mpeg4, "MPEG-4 q={}", "mpeg4"),
        ):
            for level in levels:
                coded = coded_i420(frames, level, codec)
                pairs = [(t[0], d) for t, (d, _) in zip(frames, coded, strict=True)]
                yield (
                    label,
                    name.format(level),
                    pairs,
                    float(np.mean([qp for _, qp in coded])),
                    kind,
                )


def _restore_luma_8bit(stage: LumaRestoreStage, d: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 luma through ``stage.restore_luma``: ``(H, W)`` float on the 8-bit scale."""
    y: np.ndarray = stage.restore_luma(d[None].astype(np.float32) / 255.0)[0]
    return y * 255.0


def artifact_rows(
    restore: Any, data: Path, qualities: tuple[int, ...] = (10, 20, 30, 40), crfs: tuple[int, ...] = ARTIFACT_CRFS,
    clips: tuple[str, ...] = tuple(RAW_CLIPS), auto: Deblock | None = None, mpeg2: tuple[int, ...] = (),
    mpeg4: tuple[int, ...] = (),
) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`artifact_pairs` scored for ``restore`` (``(H, W)`` uint8 luma -> ``(H, W)`` float luma on
    the 8-bit scale); one row each, with the published JPEG table where there is one. With ``auto``
    (a ``Deblock`` stage with ``strength="auto"``), video rows also score it after
    ``auto.adapt(mean quantiser, codec)``, as the pipeline runs it: ``mean_qp``, ``qp_codec``,
    ``strength_auto``, ``model_auto``, ``ssim_auto``, ``gain_auto``."""
    rows = []
    for name, deg, pairs, qp, qp_codec in artifact_pairs(data, qualities, crfs, clips, mpeg2, mpeg4):
        q = int(deg.split("=")[-1]) if deg.startswith("JPEG") else None
        published = PUBLISHED_JPEG.get(q, {}) if q is not None else {}
        scores = _score(pairs, restore)
        row: dict[str, Any] = {"set": name, "degradation": deg, **scores, "published": published}
        if auto is not None and qp is not None:
            auto.adapt(qp, qp_codec)
            model, ssim_auto = _model_score(pairs, lambda d: _restore_luma_8bit(auto, d))
            row.update(mean_qp=qp, qp_codec=qp_codec, strength_auto=auto.strength, model_auto=model,
                       ssim_auto=ssim_auto, gain_auto=model - scores["input"])  # fmt: skip
        rows.append(row)
    return rows


def noisy(y: np.ndarray, noise: str, level: float, seed: int) -> np.ndarray:
    """``(H, W)`` uint8 luma with seeded noise, quantized back to uint8: ``"gaussian"`` (``level`` =
    sigma on the 8-bit scale) or ``"poisson"`` (``level`` = photons at white; smaller is noisier)."""
    rng = np.random.default_rng(seed)
    if noise == "gaussian":
        out = y.astype(np.float64) + rng.normal(0.0, level, y.shape)
    elif noise == "poisson":
        out = rng.poisson(y.astype(np.float64) / 255.0 * level) / level * 255.0
    else:
        raise ValueError(f"noise must be gaussian or poisson, not {noise!r}")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


NOISE_LEVELS = (("gaussian", 15.0), ("gaussian", 25.0), ("gaussian", 50.0), ("poisson", 30.0))


def noise_rows(
    restore: Any, data: Path, levels: tuple[tuple[str, float], ...] = NOISE_LEVELS, cars_sigma: float = 25.0
) -> list[dict[str, Any]]:
    """classic5 (grayscale) with each of ``levels`` and the cars clip's luma with Gaussian
    ``cars_sigma``, all seeded (image ``i`` uses seed ``i``), scored for ``restore`` like
    :func:`artifact_rows`; one row each. Noise is added to the 8-bit luma and clipped, as a camera's
    or a scanner's would be after quantization."""
    classic5 = [np.asarray(Image.open(p).convert("L")) for p in sorted((data / "images/classic5").glob("*.bmp"))]
    rows = []
    for noise, level in levels:
        pairs = [(c, noisy(c, noise, level, i)) for i, c in enumerate(classic5)]
        label = f"{noise} {'sigma' if noise == 'gaussian' else 'peak'}={level:g}"
        rows.append({"set": "classic5", "degradation": label, **_score(pairs, restore), "published": {}})
    pairs = [(t[0], noisy(t[0], "gaussian", cars_sigma, i)) for i, t in enumerate(cars_i420(data))]
    label = f"gaussian sigma={cars_sigma:g}"
    rows.append({"set": "cars 320x240", "degradation": label, **_score(pairs, restore), "published": {}})
    return rows


def _evaluate_luma(
    backend: InferenceBackend, data: Path, stage: LumaRestoreStage, task: str, rows: Any
) -> dict[str, Any]:
    info = backend.model_info(stage.model or "")
    return {"task": task, "model": stage.model, "model_version": info.version, "backend": backend.name,
            "rows": rows(lambda d: _restore_luma_8bit(stage, d), data)}  # fmt: skip


def evaluate_deblock(backend: InferenceBackend, data: Path, model: str = "deblock") -> dict[str, Any]:
    """:func:`artifact_rows` through ``Deblock.restore_luma`` (the production stage minus color conversion),
    at full strength and, on the video rows, with ``strength="auto"`` (from each encode's quantiser)."""
    ctx = StageContext(backend=backend)
    stage, auto = Deblock(ctx, model=model), Deblock(ctx, model=model, strength="auto")
    crfs = (20, *ARTIFACT_CRFS)  # CRF 20 too: where a blind model harms most and strength=auto should not

    def rows(restore: Any, d: Path) -> list[dict[str, Any]]:
        return artifact_rows(restore, d, crfs=crfs, auto=auto, mpeg2=ARCHIVE_QSCALES, mpeg4=ARCHIVE_QSCALES)

    return _evaluate_luma(backend, data, stage, "Artifact removal", rows)


def evaluate_denoise(backend: InferenceBackend, data: Path, model: str = "denoise") -> dict[str, Any]:
    """:func:`noise_rows` through ``Denoise.restore_luma`` (the production stage minus color conversion)."""
    stage = Denoise(StageContext(backend=backend), model=model)
    return _evaluate_luma(backend, data, stage, "Denoising", noise_rows)


def format_luma_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_deblock` / :func:`evaluate_denoise` results."""
    lines = [
        f"{result['task']} ({result['model']} v{result['model_version']}, {result['backend']}), PSNR / SSIM of luma",
        f"  {'set':15s} {'degradation':20s} {'input':>6s} {'blur':>6s} {'model':>6s} {'gain':>6s} "
        f"{'SSIM in':>8s} {'SSIM out':>8s}  published / strength=auto",
    ]
    for r in result["rows"]:
        extra = ", ".join(f"{k} {v:.2f}" for k, v in r["published"].items())
        if "gain_auto" in r:
            extra = (
                f"QP {r['mean_qp']:.1f} -> strength {r['strength_auto']:.2f}: "
                f"{r['model_auto']:.2f} ({r['gain_auto']:+.2f})"
            )
        lines.append(
            f"  {r['set']:15s} {r['degradation']:20s} {r['input']:6.2f} {r['best_blur']:6.2f} {r['model']:6.2f} "
            f"{r['gain']:+6.2f} {r['ssim_input']:8.4f} {r['ssim_model']:8.4f}  {extra}"
        )
    return "\n".join(lines)


# Joint restoration x2: (Gaussian sigma on the 8-bit scale, JPEG quality) applied to Set5's x2 LR luma
JOINT_LEVELS = ((10.0, 40), (20.0, 30))
JOINT_CARS = (5.0, 35)  # cars: sigma on the x2-downscaled luma, then libx264 at this CRF
# LR frame sizes (width, height) at which joint and chain are also timed: production frames, where the
# per-stage overhead that dominates the small evaluation inputs no longer does
JOINT_TIMING_SIZES = ((640, 360), (1280, 720))


def y8(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` uint8 BT.601 studio-swing luma (as a decoder's Y plane)."""
    out: np.ndarray = np.clip(np.rint(rgb_to_y(rgb) * 255.0), 0, 255).astype(np.uint8)
    return out


def bicubic_down(y: np.ndarray, scale: int) -> np.ndarray:
    """``(H, W)`` uint8 luma -> ``(H/scale, W/scale)`` uint8, PIL antialiased bicubic (MATLAB-like)."""
    h, w = y.shape
    return np.asarray(Image.fromarray(y).resize((w // scale, h // scale), Image.Resampling.BICUBIC))


def bicubic_up(y: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic upscale of ``(h, w)`` uint8 luma by ``scale``, float64 on the 8-bit scale."""
    h, w = y.shape
    size = (w * scale, h * scale)
    out: np.ndarray = np.asarray(Image.fromarray(y).resize(size, Image.Resampling.BICUBIC), np.float64)
    return out


def joint_x2_cases(data: Path) -> list[dict[str, Any]]:
    """Degraded x2 inputs with their truth: ``{"set", "degradation", "pairs": [(hr (H, W) uint8,
    lr (H/2, W/2) uint8)]}``, luma only, seeded (image ``i`` uses seed ``i``).

    * Set5: the standard MATLAB-bicubic x2 LR, then Gaussian noise, then grayscale JPEG
      (:data:`JOINT_LEVELS`);
    * cars: every raw I420 plane bicubic-downscaled by 2, Gaussian noise on Y, then a real libx264
      encode (:data:`JOINT_CARS`); truth is the raw 320x240 luma.
    """
    base = data / "images" / "Set5"
    set5 = []
    for hr_p in sorted((base / "HR").glob("*.png")):
        lr = y8(_rgb(base / f"LR_bicubic/X2/{hr_p.stem}x2.png"))
        set5.append((y8(_rgb(hr_p))[: lr.shape[0] * 2, : lr.shape[1] * 2], lr))
    cases = []
    for sigma, q in JOINT_LEVELS:
        pairs = [(hr, jpeg_gray(noisy(lr, "gaussian", sigma, i), q)) for i, (hr, lr) in enumerate(set5)]
        cases.append({"set": "Set5 x2", "degradation": f"sigma={sigma:g} + JPEG q={q}", "pairs": pairs})
    sigma, crf = JOINT_CARS
    frames = cars_i420(data)
    small = [
        (noisy(bicubic_down(y, 2), "gaussian", sigma, i), bicubic_down(u, 2), bicubic_down(v, 2))
        for i, (y, u, v) in enumerate(frames)
    ]
    pairs = [(t[0], d) for t, (d, _) in zip(frames, coded_i420(small, crf), strict=True)]
    cases.append({"set": "cars x2", "degradation": f"sigma={sigma:g} + H.264 CRF {crf}", "pairs": pairs})
    return cases


Upscaler = Callable[[np.ndarray], np.ndarray]  # (h, w) uint8 luma -> (2h, 2w) float luma on the 8-bit scale


def chain_x2(backend: InferenceBackend, models: tuple[str, str, str] = ("denoise", "deblock", "sr_x2")) -> Upscaler:
    """The sequential chain through the production stages, ``Denoise`` -> ``Deblock`` ->
    ``SuperResolution``, luma quantized to 8 bits between stages as frames are in a flow."""
    ctx = StageContext(backend=backend)
    dn, db = Denoise(ctx, model=models[0]), Deblock(ctx, model=models[1])
    sr = SuperResolution(ctx, scale=2, model=models[2])

    def run(y: np.ndarray) -> np.ndarray:
        x = y[None].astype(np.float32) / 255.0
        for stage in (dn, db):
            x = np.rint(stage.restore_luma(x) * 255.0).astype(np.float32) / 255.0
        out: np.ndarray = sr.upscale_luma(x)[0] * 255.0
        return out

    return run


def model_x2(backend: InferenceBackend, model: str) -> Upscaler:
    """One x2 luma model through ``SuperResolution.upscale_luma``."""
    sr = SuperResolution(StageContext(backend=backend), scale=2, model=model)

    def run(y: np.ndarray) -> np.ndarray:
        out: np.ndarray = sr.upscale_luma(y[None].astype(np.float32) / 255.0)[0] * 255.0
        return out

    return run


def bicubic_x2(y: np.ndarray) -> np.ndarray:
    """:func:`bicubic_up` by 2 (an :data:`Upscaler`)."""
    return bicubic_up(y, 2)


def score_x2(pairs: list[tuple[np.ndarray, np.ndarray]], upscale: Upscaler) -> dict[str, float]:
    """Mean PSNR-Y / SSIM-Y (2-pixel border cropped, output rounded to 8 bits) and total seconds of
    ``upscale`` over ``(hr, lr)`` pairs."""
    t0 = time.perf_counter()
    outs = [np.clip(np.rint(upscale(lr)), 0, 255) for _, lr in pairs]
    seconds = time.perf_counter() - t0
    hrs = [crop_border(hr, 2).astype(np.float64) for hr, _ in pairs]
    outs = [crop_border(o, 2) for o in outs]
    return {
        "psnr": float(np.mean([psnr(h, o, peak=255.0) for h, o in zip(hrs, outs, strict=True)])),
        "ssim": float(np.mean([ssim(h, o) for h, o in zip(hrs, outs, strict=True)])),
        "seconds": seconds,
    }


def time_x2(upscale: Upscaler, size: tuple[int, int], repeats: int = 3) -> float:
    """Median seconds of ``upscale`` on one ``size`` = (width, height) uint8 luma frame (seeded noise:
    these networks' cost does not depend on the content), after one untimed warm-up call."""
    y = np.random.default_rng(0).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    upscale(y)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        upscale(y)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def evaluate_joint_x2(
    backend: InferenceBackend,
    data: Path,
    model: str = "restore_joint_x2",
    timing_sizes: tuple[tuple[int, int], ...] = JOINT_TIMING_SIZES,
) -> dict[str, Any]:
    """``model`` against the sequential chain (:func:`chain_x2`) and bicubic on :func:`joint_x2_cases`:
    PSNR/SSIM-Y and the wall time of each on the same inputs (one run, same backend); plus
    ``"frame_timing"``: median seconds of both on one LR frame of each of ``timing_sizes``."""
    joint, chain = model_x2(backend, model), chain_x2(backend)
    rows = []
    for case in joint_x2_cases(data):
        pairs = case["pairs"]
        j, c = score_x2(pairs, joint), score_x2(pairs, chain)
        rows.append(
            {
                "set": case["set"],
                "degradation": case["degradation"],
                "bicubic": score_x2(pairs, bicubic_x2),
                "chain": c,
                "joint": j,
                "gain_db": j["psnr"] - c["psnr"],
                "time_ratio": j["seconds"] / c["seconds"],
            }
        )
    timing = []
    for size in timing_sizes:
        tj, tc = time_x2(joint, size), time_x2(chain, size)
        timing.append({"lr_size": list(size), "joint_s": tj, "chain_s": tc, "time_ratio": tj / tc})
    return {
        "model": model,
        "model_version": backend.model_info(model).version,
        "chain": ["denoise", "deblock", "sr_x2"],
        "backend": backend.name,
        "rows": rows,
        "frame_timing": timing,
    }


def format_joint_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_joint_x2` results."""
    lines = [
        f"Joint restoration x2 ({result['model']} v{result['model_version']}, {result['backend']}) vs the chain "
        f"{' -> '.join(result['chain'])}, PSNR-Y / SSIM-Y",
        f"  {'set':8s} {'degradation':22s} {'bicubic':>7s} {'chain':>7s} {'joint':>7s} {'gain':>6s} "
        f"{'SSIM ch':>7s} {'SSIM jt':>7s} {'time jt/ch':>10s}",
    ]
    for r in result["rows"]:
        lines.append(
            f"  {r['set']:8s} {r['degradation']:22s} {r['bicubic']['psnr']:7.2f} {r['chain']['psnr']:7.2f} "
            f"{r['joint']['psnr']:7.2f} {r['gain_db']:+6.2f} {r['chain']['ssim']:7.4f} {r['joint']['ssim']:7.4f} "
            f"{r['time_ratio']:10.2f}"
        )
    for t in result.get("frame_timing", []):
        w, h = t["lr_size"]
        lines.append(
            f"  one {w}x{h} LR frame: joint {t['joint_s'] * 1e3:.0f} ms, chain {t['chain_s'] * 1e3:.0f} ms, "
            f"time jt/ch {t['time_ratio']:.2f}"
        )
    return "\n".join(lines)


def cars_x4(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out video SR clip: ``cars`` truth luma ``(30, 240, 320)`` uint8 and its bicubic x4
    LR ``(30, 60, 80)`` uint8."""
    hr = np.stack([t[0] for t in cars_i420(data)])
    return hr, np.stack([bicubic_down(f, 4) for f in hr])


def evaluate_vsr(
    backend: InferenceBackend, data: Path, model: str = "vsr_x4", baseline: str = "sr_x4"
) -> dict[str, Any]:
    """``model`` (multi-frame) against ``baseline`` (single-frame, per frame) and bicubic on
    :func:`cars_x4`, both through ``SuperResolution.upscale_luma`` on the whole 30-frame clip (one
    chunk): mean PSNR-Y / SSIM-Y (border 4) and the temporal warp error, with the truth's own warp
    error as the floor of that measure."""
    hr, lr = cars_x4(data)
    motion = reference_motion(hr)
    ctx = StageContext(backend=backend)

    def run(name: str) -> np.ndarray:
        sr = SuperResolution(ctx, scale=4, model=name)
        y = sr.upscale_luma(lr.astype(np.float32) / 255.0)
        out: np.ndarray = np.rint(y * 255.0).astype(np.uint8)
        return out

    def score(frames: np.ndarray) -> dict[str, float]:
        a, b = [crop_border(f, 4).astype(np.float64) for f in frames], [crop_border(f, 4) for f in hr]
        return {
            "psnr": float(np.mean([psnr(x, y.astype(np.float64), peak=255.0) for x, y in zip(a, b, strict=True)])),
            "ssim": float(np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)])),
            "warp_error": temporal_warp_error(frames, motion, border=4),
        }

    bic = np.stack([bicubic_up(f, 4) for f in lr]).astype(np.uint8)  # PIL rounds to uint8 already
    rows = {"bicubic": score(bic), baseline: score(run(baseline)), model: score(run(model))}
    return {
        "clip": "cars 320x240, 30 frames, bicubic x4 LR (held out from training)",
        "model": model,
        "model_version": backend.model_info(model).version,
        "frames": backend.model_info(model).frames,
        "baseline": baseline,
        "backend": backend.name,
        "rows": rows,
        "truth_warp_error": temporal_warp_error(hr, motion, border=4),
        "gain_db": rows[model]["psnr"] - rows[baseline]["psnr"],
        "warp_error_reduction": 1.0 - rows[model]["warp_error"] / rows[baseline]["warp_error"],
    }


def format_vsr_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_vsr` results."""
    lines = [
        f"Video SR x4 ({result['model']} v{result['model_version']}, {result['frames']} frames, {result['backend']}) "
        f"on {result['clip']}",
        f"  {'method':10s} {'PSNR-Y':>7s} {'SSIM-Y':>7s} {'warp err':>9s}",
    ]
    for name, r in result["rows"].items():
        lines.append(f"  {name:10s} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['warp_error']:9.2f}")
    lines.append(
        f"  gain over {result['baseline']}: {result['gain_db']:+.2f} dB, "
        f"warp error {-100 * result['warp_error_reduction']:+.1f} %"
        f" (truth's own warp error {result['truth_warp_error']:.2f}: the floor)"
    )
    return "\n".join(lines)


def evaluate_all(
    backend: InferenceBackend, data: Path, models: set[str], echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every evaluation whose models are in ``models`` (the repository's): SR on Set5 for each
    ``sr_x*`` model (and on PQ / HLG code values, :mod:`restora.eval_transfer`), deblock, denoise,
    video SR and joint restoration; each table is passed to ``echo`` as it is done. Returns
    ``{"sr": [...], "sr_transfers": ..., "deblock": ..., "deblock_heavy": ..., "denoise": ...,
    "vsr_x4": ..., "joint_x2": ...}`` (absent keys: model not in the repository)."""
    sr = [evaluate_sr_set5(backend, backend.model_info(m).scale, data, model=m) for m in sorted(models)
          if m.startswith("sr_x")]  # fmt: skip
    echo(format_table(sr))
    results: dict[str, Any] = {"sr": sr}
    scales = tuple(s for s in (2, 4) if f"sr_x{s}" in models)
    if scales:
        from restora.eval_transfer import evaluate_sr_transfers, format_transfer_table

        results["sr_transfers"] = evaluate_sr_transfers(backend, data, scales)
        echo("\n" + format_transfer_table(results["sr_transfers"]))
    luma = (("deblock", evaluate_deblock), ("deblock_heavy", evaluate_deblock), ("denoise", evaluate_denoise))
    for name, evaluate in luma:
        if name in models:
            results[name] = evaluate(backend, data, name)
            echo("\n" + format_luma_table(results[name]))
    if {"vsr_x4", "sr_x4"} <= models:
        results["vsr_x4"] = evaluate_vsr(backend, data)
        echo("\n" + format_vsr_table(results["vsr_x4"]))
    if {"restore_joint_x2", "denoise", "deblock", "sr_x2"} <= models:
        results["joint_x2"] = evaluate_joint_x2(backend, data)
        echo("\n" + format_joint_table(results["joint_x2"]))
    return results
