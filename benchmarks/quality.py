"""Quality and speed of the SR stage against bicubic, measured in one run (ratios, not absolute timings).

* Set5 x2/x4 PSNR-Y (the literature protocol, ``restora.evaluation``).
* Video: ``cars_320x240.i420`` is ground truth; it is downscaled x2 (bicubic) and restored x2 by
  the production ``sr`` stage; PSNR-Y (border 2) against the truth, restored vs bicubic.
* Speed: frames/s of the ``sr`` stage vs bicubic upscaling of the same frames, same process.
* Every model's evaluation (``restora.evaluation.evaluate_all``, the ``make eval`` tables): SR on
  Set5, artifact removal and denoising against their input and the best Gaussian blur (the trivial
  baseline a model must beat), video SR against per-frame SR (PSNR and temporal warp error), joint
  restoration against the three-model chain (PSNR and wall-time ratio, same run).

    python -m benchmarks.quality        (make bench)   -> benchmarks/results/quality.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from restora.evaluation import evaluate_all, raw_rgb
from restora.inference import LocalOnnx
from restora.metrics import psnr_y
from restora.settings import get_settings
from restora.stages import StageContext, build_stage

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "quality.json"


def cars_rgb() -> list[np.ndarray]:
    """The raw cars frames as ``(240, 320, 3)`` uint8 RGB (``restora.evaluation.raw_rgb``: BT.601
    studio swing, chroma upsampled by repetition)."""
    return list(raw_rgb(DATA, "cars"))


def main() -> None:
    s = get_settings()
    backend = LocalOnnx(s.models.repository, s.models.threads)
    models = {p.name for p in s.models.repository.iterdir() if (p / "config.pbtxt").exists()}
    evaluations = evaluate_all(backend, DATA, models)

    truth = cars_rgb()
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
        return float(np.mean([psnr_y(a, b, crop=2) for a, b in zip(frames, truth, strict=True)]))

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
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**evaluations, "video": video}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
