"""Quality and speed of the SR stage against bicubic, measured in one run (ratios, not absolute timings).

* Set5 x2/x4 PSNR-Y (the literature protocol, ``restora.evaluation``).
* Video: ``cars_320x240.i420`` is ground truth; it is downscaled x2 (bicubic) and restored x2 by
  the production ``sr`` stage; PSNR-Y (border 2) against the truth, restored vs bicubic.
* Speed: frames/s of the ``sr`` stage vs bicubic upscaling of the same frames, same process.
* Artifact removal: the production ``deblock`` stage on ``classic5`` grayscale JPEG q=10 and on the
  cars clip encoded by libx264 at CRF 40 (luma PSNR against the truth), against the compressed
  input and against the best of three Gaussian blurs (the trivial baseline a model must beat).

    python -m benchmarks.quality        (make bench)   -> benchmarks/results/quality.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from restora.color import rgb_to_y
from restora.evaluation import evaluate_sr_set5, format_table
from restora.inference import LocalOnnx
from restora.metrics import crop_border, psnr
from restora.settings import get_settings
from restora.stages import StageContext, build_stage
from restora.stages.deblock import Deblock

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "quality.json"


def i420_frames(path: Path, w: int, h: int) -> list[np.ndarray]:
    """Raw I420 -> RGB uint8 (BT.601 limited range, chroma by repetition)."""
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, w * h * 3 // 2)
    n = w * h
    out = []
    for b in raw:
        y = (b[:n].reshape(h, w).astype(np.float32) - 16) * (255 / 219)
        u = (np.kron(b[n : n * 5 // 4].reshape(h // 2, w // 2), np.ones((2, 2))).astype(np.float32) - 128) * (255 / 224)
        v = (np.kron(b[n * 5 // 4 :].reshape(h // 2, w // 2), np.ones((2, 2))).astype(np.float32) - 128) * (255 / 224)
        rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
        out.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return out


def _restored_psnr(stage: Deblock, degraded: np.ndarray, truth: np.ndarray) -> float:
    """PSNR of ``stage``'s restored 8-bit luma (``Deblock.restore_luma``, the production path minus the
    RGB <-> YCbCr conversion) against an 8-bit luma truth."""
    y = stage.restore_luma(degraded[None].astype(np.float32) / 255.0)[0]
    return psnr(np.rint(y * 255.0), truth.astype(np.float64), peak=255.0)


def deblock_quality(backend: LocalOnnx) -> dict[str, dict[str, float]]:
    """classic5 JPEG q=10 and cars H.264 CRF 40: input, best Gaussian blur and ``deblock`` stage PSNR."""
    from PIL import ImageFilter

    from training.train_deblock import cars_i420, encode_i420, jpeg_gray

    stage = build_stage("deblock", {}, StageContext(backend=backend))
    assert isinstance(stage, Deblock)
    out: dict[str, dict[str, float]] = {}
    cases: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"classic5_jpeg_q10": [], "cars_h264_crf40": []}
    for p in sorted((DATA / "images/classic5").glob("*.bmp")):
        clean = np.asarray(Image.open(p).convert("L"))
        cases["classic5_jpeg_q10"].append((clean, jpeg_gray(clean, 10)))
    frames = cars_i420(DATA)
    cases["cars_h264_crf40"] = [(t[0], d) for t, d in zip(frames, encode_i420(frames, 40), strict=True)]
    for name, pairs in cases.items():
        inp = [psnr(c.astype(np.float64), d.astype(np.float64), peak=255.0) for c, d in pairs]

        def blurred(d: np.ndarray, sigma: float) -> np.ndarray:
            return np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(sigma)), np.float64)

        blur = max(
            float(np.mean([psnr(c.astype(np.float64), blurred(d, s), peak=255.0) for c, d in pairs]))
            for s in (0.5, 0.7, 1.0)
        )
        model = [_restored_psnr(stage, d, c) for c, d in pairs]
        r = {"input": float(np.mean(inp)), "best_blur": blur, "deblock": float(np.mean(model))}
        r["gain_db"] = r["deblock"] - r["input"]
        r["gain_over_blur_db"] = r["deblock"] - r["best_blur"]
        out[name] = r
        print(f"{name}: input {r['input']:.2f} dB, best blur {blur:.2f} dB, deblock {r['deblock']:.2f} dB "
              f"(gain {r['gain_db']:+.2f} dB)")  # fmt: skip
    return out


def main() -> None:
    s = get_settings()
    backend = LocalOnnx(s.models.repository, s.models.threads)
    set5 = [evaluate_sr_set5(backend, sc, DATA) for sc in (2, 4)]
    print(format_table(set5))

    truth = i420_frames(DATA / "video/cars/cars_320x240.i420", 320, 240)
    lr = np.stack([np.asarray(Image.fromarray(t).resize((160, 120), Image.Resampling.BICUBIC)) for t in truth])
    stage = build_stage("sr", {"scale": 2}, StageContext(backend=backend))
    stage.process(lr[:1])  # warm-up (session creation)
    t = time.perf_counter()
    restored = stage.process(lr)
    t_sr = time.perf_counter() - t
    t = time.perf_counter()
    bic = [np.asarray(Image.fromarray(x).resize((320, 240), Image.Resampling.BICUBIC)) for x in lr]
    t_bic = time.perf_counter() - t

    def score(frames: list[np.ndarray] | np.ndarray) -> float:
        return float(
            np.mean(
                [
                    psnr(crop_border(rgb_to_y(a), 2), crop_border(rgb_to_y(b), 2))
                    for a, b in zip(frames, truth, strict=True)
                ]
            )
        )

    video = {
        "clip": "cars_320x240 (30 frames), x2",
        "psnr_y_restored": score(restored),
        "psnr_y_bicubic": score(bic),
        "sr_fps": len(lr) / t_sr,
        "bicubic_fps": len(lr) / t_bic,
    }
    video["gain_db"] = video["psnr_y_restored"] - video["psnr_y_bicubic"]
    video["speed_ratio_sr_vs_bicubic"] = video["sr_fps"] / video["bicubic_fps"]
    print(
        f"\n{video['clip']}: restored {video['psnr_y_restored']:.2f} dB, bicubic {video['psnr_y_bicubic']:.2f} dB, "
        f"gain {video['gain_db']:+.2f} dB; speed {video['sr_fps']:.1f} fps vs bicubic {video['bicubic_fps']:.1f} fps "
        f"(ratio {video['speed_ratio_sr_vs_bicubic']:.3f})"
    )
    deblock = deblock_quality(backend)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"set5": set5, "video": video, "deblock": deblock}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
