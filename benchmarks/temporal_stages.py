"""What the classical temporal stages (``deflicker``, ``stabilize``) remove and what they cost, in one run.

Quality, on real footage of ``../shared/data`` with known synthetic damage:

- ``deflicker``: random per-frame gain (std 12 %) and offset (std 4 %) on the first shot of
  ``watermark_mpegts.ts`` (a still photograph faded in from and out to white), ``bikes.mp4`` (a pan)
  and ``cockatoo.mp4`` (handheld, 720p), and the fade of ``shots/fades.mp4`` undamaged. PSNR
  against the undamaged frames for the damaged input, the stage
  and a naive baseline in the same run (each frame's gain set so its mean matches the shot's mean
  level, what a one-line deflicker does), and the stage on the undamaged frames (what it takes away
  from clean footage: higher is better).
- ``stabilize``: a camera panning over a real photograph (General100 ``im_36``) with random jitter of
  2 pixels std; the frame-to-frame wobble around the true pan before and after, and the same pan
  without jitter through the stage. On real handheld footage (foreman, 48 frames) the mean
  frame-to-frame change of the camera's speed before and after.

Speed: seconds per frame of each stage against decoding the same frames (``media.read_frames``),
ratios of the same run, at 640x272 and 1280x720.

    python -m benchmarks.temporal_stages     (make bench)   -> benchmarks/results/temporal_stages.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from restora import evaluation, media
from restora.color import quantize, to_unit, ycbcr_to_rgb
from restora.inference import LocalOnnx
from restora.metrics import psnr
from restora.pipeline import analyze
from restora.settings import get_settings
from restora.stages import StageContext, build_stage
from restora.stages.stabilize import Stabilize, measure_shift, shift_image
from restora.stages.temporal import gray

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "temporal_stages.json"
U8 = np.dtype(np.uint8)


def db(value: float) -> float | str:
    """A PSNR for the JSON report: dB to 2 decimals, or "identical" (infinite)."""
    return round(value, 2) if np.isfinite(value) else "identical"


def flicker(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each frame times a random gain (std 12 %) plus a random offset (std 4 % of full scale)."""
    rng = np.random.default_rng(seed)
    a = (1 + 0.12 * rng.standard_normal(len(frames)).clip(-2, 2)).astype(np.float32)
    b = (0.04 * rng.standard_normal(len(frames)).clip(-2, 2)).astype(np.float32)
    return quantize(to_unit(frames) * a[:, None, None, None] + b[:, None, None, None], U8)


def mean_matched(frames: np.ndarray) -> np.ndarray:
    """The naive baseline: each frame scaled so its mean gray level is the shot's mean."""
    m = gray(frames, 4).mean(axis=(1, 2))
    gain = (m.mean() / np.maximum(m, 1e-3)).astype(np.float32)
    return quantize(to_unit(frames) * gain[:, None, None, None], U8)


def first_shot(path: Path, limit: int) -> np.ndarray:
    """The first shot of ``path`` (at most ``limit`` frames, skipping shots shorter than 20 frames)."""
    an = analyze(path)
    start, stop = next((s, e) for s, e in an.shots.shots() if min(e, limit) - s >= 20)
    return np.stack(media.first_frames(path, min(stop, limit)))[start:]


def deflicker_quality(ctx: StageContext, limit: int) -> dict[str, Any]:
    stage = build_stage("deflicker", {}, ctx)
    out: dict[str, Any] = {}
    clips = {"turtle": "watermark_mpegts.ts", "bikes": "bikes.mp4", "cockatoo": "cockatoo.mp4"}
    for name, rel in clips.items():
        clean = first_shot(DATA / "video/misc" / rel, limit)
        bad = flicker(clean)
        out[name] = {
            "frames": f"{len(clean)} x {clean.shape[2]}x{clean.shape[1]}",
            "flickered_db": db(psnr(bad, clean, 255.0)),
            "deflicker_db": db(psnr(stage.process(bad), clean, 255.0)),
            "mean_matched_db": db(psnr(mean_matched(bad), clean, 255.0)),
            "clean_through_deflicker_db": db(psnr(stage.process(clean), clean, 255.0)),
            "clean_through_mean_matched_db": db(psnr(mean_matched(clean), clean, 255.0)),
        }
    fade = np.stack(media.first_frames(DATA / "video/shots/fades.mp4", 83))[2:]  # one shot: black -> full -> black
    out["fade_undamaged"] = {
        "frames": f"{len(fade)} x {fade.shape[2]}x{fade.shape[1]}",
        "clean_through_deflicker_db": db(psnr(stage.process(fade), fade, 255.0)),
        "clean_through_mean_matched_db": db(psnr(mean_matched(fade), fade, 255.0)),
    }
    return out


def stabilize_quality(ctx: StageContext) -> dict[str, Any]:
    stage = build_stage("stabilize", {}, ctx)
    assert isinstance(stage, Stabilize)
    still = np.asarray(Image.open(DATA / "images/train/General100/im_36.png").convert("RGB"), np.float32) / 255
    t = 60
    pan = np.stack([np.linspace(0, 25, t), np.linspace(0, 6, t)], 1)
    jitter = np.random.default_rng(1).normal(0, 2.0, (t, 2))

    def camera(path: np.ndarray) -> np.ndarray:
        return np.stack([quantize(shift_image(still, -x - 20, -y - 20)[:480, :560], U8) for x, y in path])

    truth, shaky = camera(pan), camera(pan + jitter)

    def wobble(x: np.ndarray) -> float:
        off = np.array([measure_shift(gray(truth[i : i + 1])[0], gray(x[i : i + 1])[0]) for i in range(t)])
        return round(float(np.abs(np.diff(off, axis=0)).mean()), 3)

    frames = []
    for y, u, v in evaluation.raw_i420(DATA, "foreman"):
        ycc = np.stack([y, u.repeat(2, 0).repeat(2, 1), v.repeat(2, 0).repeat(2, 1)], -1).astype(np.float32) / 255
        frames.append(quantize(ycbcr_to_rgb(ycc), U8))
    foreman = np.stack(frames)
    accel = [
        round(float(np.abs(np.diff(stage.path(x), 2, axis=0)).mean()), 3) for x in (foreman, stage.process(foreman))
    ]
    return {
        "synthetic_jitter": {
            "frames": f"{t} x 560x480, pan 25 x 6 px, jitter std 2 px",
            "wobble_px_per_frame_input": wobble(shaky),
            "wobble_px_per_frame_stabilized": wobble(stage.process(shaky)),
            "pan_without_jitter_through_stage_db": db(psnr(stage.process(truth), truth, 255.0)),
        },
        "foreman_handheld": {
            "frames": f"{len(foreman)} x 176x144",
            "camera_speed_change_px_input": accel[0],
            "camera_speed_change_px_stabilized": accel[1],
            "largest_correction_px": round(float(np.abs(stage.corrections(foreman, 0, len(foreman))).max()), 2),
        },
    }


def speed(ctx: StageContext, frames: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stages = {n: build_stage(n, {}, ctx) for n in ("deflicker", "stabilize")}
    for rel in ("video/misc/bikes.mp4", "video/misc/cockatoo.mp4"):
        path = DATA / rel
        info = media.probe(path)
        index, _, _ = media.scan(path, info)
        runs: dict[str, list[float]] = {"decode": [], **{n: [] for n in stages}}
        for rep in range(repeats + 1):  # the first round warms up
            t = time.perf_counter()
            clip = np.concatenate([f for _, f in media.read_frames(path, info, index, 0, frames)])
            dec = time.perf_counter() - t
            for n, st in stages.items():
                t = time.perf_counter()
                st.process(clip)
                if rep:
                    runs[n].append(time.perf_counter() - t)
            if rep:
                runs["decode"].append(dec)
        med = {n: float(np.median(v)) for n, v in runs.items()}
        out[f"{info.video.width}x{info.video.height}"] = {
            "frames": frames,
            **{f"{n}_fps": round(frames / s, 1) for n, s in med.items()},
            **{f"{n}_vs_decode": round(med[n] / med["decode"], 2) for n in stages},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.temporal_stages")
    p.add_argument("--frames", type=int, default=48, help="frames per speed measurement")
    p.add_argument("--limit", type=int, default=150, help="at most this many frames of each quality clip")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "deflicker": deflicker_quality(ctx, a.limit),
        "stabilize": stabilize_quality(ctx),
        "speed": speed(ctx, a.frames, a.repeats),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
