"""Recipe: fit ``deblock:strength=auto``, the blend strength of the ``deblock`` model as a function of
the source's H.264 quantiser (QP), and measure it on the held-out clips.

A blind artifact remover cannot tell how hard its input was compressed: the shipped model removes
too much from light encodes (cars CRF 20: -2 dB) and too little from heavy ones. H.264 streams carry
the answer: every macroblock's QP, which FFmpeg's decoder exports (``restora.media.frame_qp``). For
the model's correction ``r = model(x) - x`` and the coding error ``e = clean - x`` of a frame, the
blend ``x + s * r`` has squared error ``|e|^2 - 2 s <e, r> + s^2 |r|^2``; this recipe picks the ramp
``s(qp) = clip((qp - q0) / (q1 - q0), 0, 1)`` minimising that error summed over every frame of the
training clips (``training.train_deblock.VIDEOS``, area-downscaled to at most 480 pixels wide as in
training) re-encoded by libx264 at CRF 16-44. It then scores full strength against the ramp on the
held-out raw clips (``cars``, ``foreman``; never used in the fit) at CRF 16-45, each clip's strength
from its mean QP, as the pipeline does per chunk. The ramp it prints goes into
``restora.stages.deblock.QP_RAMPS`` for the model version it was fitted to.

MPEG-2 (``--codec mpeg2``: archives, DVB, DVD) and MPEG-4 Part 2 (``--codec mpeg4``: DivX/Xvid
digitisations) are calibrated the same way on the quantiser FFmpeg's decoders export (the same
scale for both, separate ramps: the codecs quantise differently), with the training clips encoded
at fixed quantiser scales 2-31.

    python -m training.calibrate_deblock --out training/runs/deblock_qp
    python -m training.calibrate_deblock --codec mpeg2 --out training/runs/deblock_qp_mpeg2
    python -m training.calibrate_deblock --codec mpeg4 --out training/runs/deblock_qp_mpeg4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import av
import numpy as np

from restora.evaluation import RAW_CLIPS, coded_i420, raw_i420
from restora.inference import LocalOnnx
from restora.media import first_frames
from restora.stages.base import StageContext
from restora.stages.deblock import Deblock, ramp_strength
from training.degrade import resize
from training.train_deblock import DATA, VIDEOS

# per codec: (encoder, levels of the training re-encodes, levels of the held-out encodes); the level
# is libx264's CRF or MPEG-2's fixed quantiser scale (restora.media.codec_roundtrip)
CODECS = {
    "h264": ("libx264", (16, 20, 24, 28, 32, 36, 40, 44), (16, 20, 25, 30, 35, 40, 45)),
    "mpeg2": ("mpeg2video", (2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 31), (2, 4, 8, 16, 31)),
    "mpeg4": ("mpeg4", (2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 31), (2, 4, 8, 16, 31)),
}
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # I420 (y, u, v) uint8


def to_i420(rgb: np.ndarray) -> Planes:
    """``(H, W, 3)`` uint8 RGB (even size) -> studio-swing BT.601 I420 planes via swscale."""
    h, w = rgb.shape[:2]
    flat = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().ravel()
    q, c = h * w, (h // 2, w // 2)
    return flat[:q].reshape(h, w), flat[q : q + q // 4].reshape(c), flat[q + q // 4 :].reshape(c)


def frame_terms(stage: Deblock, clean: np.ndarray, coded: np.ndarray) -> tuple[float, float, float]:
    """``(<e, r>, |r|^2, |e|^2)`` on the 8-bit scale for one ``(H, W)`` uint8 luma pair."""
    x = coded.astype(np.float32)[None] / 255.0
    r = (stage.restore_luma(x)[0].astype(np.float64) - x[0]) * 255.0
    e = clean.astype(np.float64) - coded
    return float((e * r).sum()), float((r * r).sum()), float((e * e).sum())


def fit_ramp(qp: np.ndarray, er: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    """``(q0, q1)`` of the ramp minimising ``sum(rr * s^2 - 2 * er * s)`` over frames (grid, 0.25 QP)."""
    best, arg = np.inf, (0.0, 1.0)
    grid = np.arange(0.0, 64.0, 0.25)
    for q0 in grid:
        for q1 in grid[grid > q0]:
            s = np.clip((qp - q0) / (q1 - q0), 0.0, 1.0)
            cost = float((rr * s * s - 2.0 * er * s).sum())
            if cost < best:
                best, arg = cost, (float(q0), float(q1))
    return arg


def clip_frames(rel: str, limit: int) -> list[Planes]:
    """The first ``limit`` frames of a training clip at most 480 pixels wide, as I420."""
    frames = first_frames(DATA / rel, limit)
    h, w = frames[0].shape[:2]
    scale = min(1.0, 480 / w)
    nw, nh = (int(w * scale) // 4) * 4, (int(h * scale) // 4) * 4
    return [to_i420(resize(f, nw, nh, "area")) for f in frames]


def psnr_from(mse_sum: float, pixels: int) -> float:
    return float(10.0 * np.log10(255.0**2 / max(mse_sum / pixels, 1e-12)))


def _ints(value: str) -> tuple[int, ...]:
    return tuple(int(v) for v in value.split(","))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.calibrate_deblock")
    ap.add_argument("--frames", type=int, default=40, help="frames per training clip")
    ap.add_argument("--codec", choices=sorted(CODECS), default="h264", help="whose quantiser the ramp reads")
    ap.add_argument("--fit-levels", type=_ints, default=None, help="CRFs / quantiser scales of the training encodes")
    ap.add_argument("--test-levels", type=_ints, default=None, help="CRFs / quantiser scales of the held-out encodes")
    ap.add_argument("--test-clips", type=lambda v: tuple(v.split(",")), default=tuple(RAW_CLIPS))
    ap.add_argument("--repository", type=Path, default=Path(__file__).resolve().parents[1] / "triton_models")
    ap.add_argument("--model", default="deblock")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    encoder, fit_levels, test_levels = CODECS[a.codec]
    fit_levels, test_levels = a.fit_levels or fit_levels, a.test_levels or test_levels
    backend = LocalOnnx(a.repository, threads=2)
    stage = Deblock(StageContext(backend=backend), model=a.model)
    points: list[tuple[float, float, float]] = []  # (qp, <e, r>, |r|^2) per frame
    for rel in VIDEOS:
        planes = clip_frames(rel, a.frames)
        for level in fit_levels:
            for (clean, _, _), (coded, qp) in zip(planes, coded_i420(planes, level, encoder), strict=True):
                er, rr, _ = frame_terms(stage, clean, coded)
                points.append((qp, er, rr))
        print(f"{rel}: {len(planes)} frames x {len(fit_levels)} {a.codec} levels", flush=True)
    arr = np.array(points)
    q0, q1 = fit_ramp(arr[:, 0], arr[:, 1], arr[:, 2])
    print(f"{a.codec} ramp: strength 0 at quantiser <= {q0:g}, 1 at >= {q1:g}", flush=True)

    rows: list[dict[str, Any]] = []
    for clip in a.test_clips:
        planes = raw_i420(a.data, clip)
        for level in test_levels:
            encoded = coded_i420(planes, level, encoder)
            qp = float(np.mean([q for _, q in encoded]))
            s = ramp_strength(qp, (q0, q1))
            terms = [frame_terms(stage, c[0], d) for c, (d, _) in zip(planes, encoded, strict=True)]
            px = len(planes) * planes[0][0].size
            ee = sum(t[2] for t in terms)
            full = ee - 2 * sum(t[0] for t in terms) + sum(t[1] for t in terms)
            auto = ee - 2 * s * sum(t[0] for t in terms) + s * s * sum(t[1] for t in terms)
            row = {"clip": clip, "codec": a.codec, "level": level, "mean_qp": round(qp, 2), "strength": round(s, 3),
                   "input": psnr_from(ee, px), "gain_full": psnr_from(full, px) - psnr_from(ee, px),
                   "gain_auto": psnr_from(auto, px) - psnr_from(ee, px)}  # fmt: skip
            rows.append(row)
            print(f"{clip:8s} {a.codec} level {level} quantiser {qp:5.2f} strength {s:.2f}: input {row['input']:.2f}"
                  f" dB, gain full {row['gain_full']:+.2f}, auto {row['gain_auto']:+.2f}", flush=True)  # fmt: skip
    a.out.mkdir(parents=True, exist_ok=True)
    result = {"model": a.model, "model_version": backend.model_info(a.model).version, "ramp": [q0, q1],
              "codec": a.codec, "fit_frames": len(points), "fit_levels": fit_levels, "held_out": rows}  # fmt: skip
    (a.out / "calibration.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
