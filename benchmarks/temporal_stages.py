"""What the classical temporal stages (deflicker, stabilize, dust_scratch, degrain) remove and cost, in one run.

Quality, on real footage of ``../shared/data`` with known synthetic damage:

- ``deflicker``: random per-frame gain (std 12 %) and offset (std 4 %) on the first shot of
  ``watermark_mpegts.ts`` (a still photograph faded in from and out to white), ``bikes.mp4`` (a
  vehicle and the road under it: two motions) and ``cockatoo.mp4`` (handheld, 720p), and the fade
  of ``shots/fades.mp4`` undamaged. PSNR against the undamaged frames for the damaged input, the
  stage and a naive baseline in the same run (each frame's gain set so its mean matches the shot's
  mean level, what a one-line deflicker does), and the stage on the undamaged frames (what it takes
  away from clean footage: higher is better).
- ``stabilize``: a camera panning over a real photograph (General100 ``im_36``) with random jitter of
  2 pixels std; the frame-to-frame wobble around the true pan before and after, and the same pan
  without jitter through the stage. On real handheld footage (foreman, 48 frames) the mean
  frame-to-frame change of the camera's speed before and after.
- ``dust_scratch``: 15 single-frame spots per frame (``training.degrade.dust``) on a still picture,
  two motions (``bikes.mp4``) and handheld foreman, with local motion compensation (the default)
  and global only, against a naive 3-frame temporal median (no alignment, no detection), with the
  share of spot pixels repaired and the stage and the median on the undamaged frames; three
  wandering one-pixel scratches (``training.degrade.scratches``) on bikes and foreman, against a
  naive 5-pixel median along each row. The order of the ``archival-film`` preset: flicker and dust
  together, through ``deflicker`` then ``dust_scratch`` and the other way round.
- ``degrain``: film grain (``training.degrade.film_grain``, std 4 % at mid-gray) on the same three
  clips, local and global motion, against the neural ``denoise`` model in the same run, and the
  stage on the undamaged frames.

Speed: seconds per frame of each stage (``dust_scratch`` and ``degrain`` also with global motion
only) against decoding the same frames (``media.read_frames``), ratios of the same run, at 640x272
and 1280x720; new stage objects each round (``stabilize`` keeps its motion measurements by frame
content: runs up to commit 200ce97 timed it on a warm cache, resampling
only).

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
from restora.color import quantize, to_unit
from restora.inference import LocalOnnx
from restora.metrics import psnr
from restora.pipeline import analyze
from restora.settings import get_settings
from restora.stages import StageContext, build_stage
from restora.stages.motion import measure_shift, measure_turn
from restora.stages.stabilize import Stabilize
from restora.stages.temporal import gray
from training import degrade

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "temporal_stages.json"
U8 = np.dtype(np.uint8)
SECTIONS = ("deflicker", "stabilize", "dust_scratch", "degrain", "speed")


def db(value: float) -> float | str:
    """A PSNR for the JSON report: dB to 2 decimals, or "identical" (infinite)."""
    return round(value, 2) if np.isfinite(value) else "identical"


def flicker(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random per-frame gain (std 12 %) and offset (std 4 %): :func:`training.degrade.flicker`."""
    return degrade.flicker(frames, np.random.default_rng(seed))


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
    local = build_stage("deflicker", {"mode": "local"}, ctx)
    out: dict[str, Any] = {}
    clips = {
        "turtle": first_shot(DATA / "video/misc/watermark_mpegts.ts", limit),
        "bikes": first_shot(DATA / "video/misc/bikes.mp4", limit),
        "cockatoo": first_shot(DATA / "video/misc/cockatoo.mp4", limit),
        "foreman_handheld": evaluation.raw_rgb(DATA, "foreman")[:limit],  # not among the clips GATE was set on
    }
    for name, clean in clips.items():
        bad = flicker(clean)
        uneven = degrade.flicker(clean, np.random.default_rng(0), tilt=0.1, vignette=0.2, color=0.04)
        out[name] = {
            "frames": f"{len(clean)} x {clean.shape[2]}x{clean.shape[1]}",
            "flickered_db": db(psnr(bad, clean, 255.0)),
            "deflicker_db": db(psnr(stage.process(bad), clean, 255.0)),
            "deflicker_local_db": db(psnr(local.process(bad), clean, 255.0)),
            "mean_matched_db": db(psnr(mean_matched(bad), clean, 255.0)),
            "clean_through_deflicker_db": db(psnr(stage.process(clean), clean, 255.0)),
            "clean_through_deflicker_local_db": db(psnr(local.process(clean), clean, 255.0)),
            "clean_through_mean_matched_db": db(psnr(mean_matched(clean), clean, 255.0)),
            "uneven_flickered_db": db(psnr(uneven, clean, 255.0)),
            "uneven_deflicker_db": db(psnr(stage.process(uneven), clean, 255.0)),
            "uneven_deflicker_local_db": db(psnr(local.process(uneven), clean, 255.0)),
            "uneven_mean_matched_db": db(psnr(mean_matched(uneven), clean, 255.0)),
        }
    fade = np.stack(media.first_frames(DATA / "video/shots/fades.mp4", 83))[2:]  # one shot: black -> full -> black
    out["fade_undamaged"] = {
        "frames": f"{len(fade)} x {fade.shape[2]}x{fade.shape[1]}",
        "clean_through_deflicker_db": db(psnr(stage.process(fade), fade, 255.0)),
        "clean_through_deflicker_local_db": db(psnr(local.process(fade), fade, 255.0)),
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

    truth, shaky = degrade.camera_over(still, pan, 480, 560), degrade.camera_over(still, pan + jitter, 480, 560)

    def wobble(x: np.ndarray) -> float:
        off = np.array([measure_shift(gray(truth[i : i + 1])[0], gray(x[i : i + 1])[0]) for i in range(t)])
        return round(float(np.abs(np.diff(off, axis=0)).mean()), 3)

    # the same pan, rolling 2 degrees, jitter of 2 px and 0.3 degree std
    rng = np.random.default_rng(1)
    roll = np.concatenate([pan, np.linspace(0, np.deg2rad(2), t)[:, None]], 1)
    turning = np.concatenate([rng.normal(0, 2.0, (t, 2)), rng.normal(0, np.deg2rad(0.3), (t, 1))], 1)
    roll_truth = degrade.camera_over(still, roll, 480, 560, margin=40)
    roll_shaky = degrade.camera_over(still, roll + turning, 480, 560, margin=40)

    def turn_wobble(x: np.ndarray) -> list[float]:  # x px, y px, degrees per frame
        g, gt = gray(x), gray(roll_truth)
        off = np.array([measure_turn(gt[i], g[i], measure_shift(gt[i], g[i]) or (0.0, 0.0)) for i in range(t)])
        d = np.abs(np.diff(off, axis=0)).mean(axis=0)
        return [round(float(d[0]), 3), round(float(d[1]), 3), round(float(np.rad2deg(d[2])), 4)]

    translation_only = build_stage("stabilize", {"rotation": False}, ctx)
    foreman = evaluation.raw_rgb(DATA, "foreman")
    paths = [stage.path(x) for x in (foreman, stage.process(foreman))]
    moves = stage.corrections(foreman, 0, len(foreman))
    return {
        "synthetic_jitter": {
            "frames": f"{t} x 560x480, pan 25 x 6 px, jitter std 2 px",
            "wobble_px_per_frame_input": wobble(shaky),
            "wobble_px_per_frame_stabilized": wobble(stage.process(shaky)),
            "pan_without_jitter_through_stage_db": db(psnr(stage.process(truth), truth, 255.0)),
        },
        "synthetic_turning_jitter": {
            "frames": f"{t} x 560x480, pan 25 x 6 px and roll 2 degrees, jitter std 2 px and 0.3 degree",
            "wobble_x_px_y_px_degrees_per_frame_input": turn_wobble(roll_shaky),
            "wobble_stabilized": turn_wobble(stage.process(roll_shaky)),
            "wobble_stabilized_translation_only": turn_wobble(translation_only.process(roll_shaky)),
            "pan_and_roll_without_jitter_through_stage_db": db(psnr(stage.process(roll_truth), roll_truth, 255.0)),
        },
        "foreman_handheld": {
            "frames": f"{len(foreman)} x 176x144",
            "camera_speed_change_px_input": round(float(np.abs(np.diff(paths[0][:, :2], 2, axis=0)).mean()), 3),
            "camera_speed_change_px_stabilized": round(float(np.abs(np.diff(paths[1][:, :2], 2, axis=0)).mean()), 3),
            "turn_speed_change_degrees_input": round(float(np.rad2deg(np.abs(np.diff(paths[0][:, 2], 2)).mean())), 4),
            "turn_speed_change_degrees_stabilized": round(
                float(np.rad2deg(np.abs(np.diff(paths[1][:, 2], 2)).mean())), 4
            ),
            "largest_correction_px": round(float(np.abs(moves[:, :2]).max()), 2),
            "largest_turn_degrees": round(float(np.rad2deg(np.abs(moves[:, 2]).max())), 3),
        },
    }


def temporal_median(frames: np.ndarray) -> np.ndarray:
    """The naive dust baseline: every pixel the median of itself and the same pixel in the previous
    and next frames (no alignment, no detection); the first and last frame unchanged."""
    out = frames.copy()
    out[1:-1] = np.median(np.stack([frames[:-2], frames[1:-1], frames[2:]]), axis=0).astype(frames.dtype)
    return out


def row_median(frames: np.ndarray) -> np.ndarray:
    """The naive scratch baseline: every pixel the median of 5 along its row (no detection)."""
    pad = np.pad(frames, ((0, 0), (0, 0), (2, 2), (0, 0)), mode="edge")
    w = frames.shape[2]
    return np.median(np.stack([pad[:, :, i : i + w] for i in range(5)]), axis=0).astype(frames.dtype)


def damage_clips(limit: int) -> dict[str, np.ndarray]:
    """The clips dust, scratches and grain are put on (at most ``limit`` frames each): the still part of
    ``watermark_mpegts.ts`` (35 frames), the first shot of ``bikes.mp4`` (two motions, 30) and foreman (48)."""
    return {
        "turtle_still": np.stack(media.first_frames(DATA / "video/misc/watermark_mpegts.ts", 60))[25 : 25 + limit],
        "bikes_two_motions": np.stack(media.first_frames(DATA / "video/misc/bikes.mp4", min(30, limit))),
        "foreman_handheld": evaluation.raw_rgb(DATA, "foreman")[:limit],
    }


def dust_scratch_quality(ctx: StageContext, limit: int) -> dict[str, Any]:
    dust_only = build_stage("dust_scratch", {"scratches": False}, ctx)
    dust_global = build_stage("dust_scratch", {"scratches": False, "motion": "global"}, ctx)
    scratch_only = build_stage("dust_scratch", {"dust": False}, ctx)
    clips = damage_clips(limit)
    dust: dict[str, Any] = {}
    scratches: dict[str, Any] = {}
    inner = slice(1, -1)  # the first and last frame have one neighbour: neither the stage nor the median acts
    for name, clean in clips.items():
        dusty, spots = degrade.dust(clean, np.random.default_rng(0))
        out, out_global = dust_only.process(dusty), dust_global.process(dusty)
        err = np.abs(out.astype(int) - clean.astype(int)).max(-1)[inner]
        err_global = np.abs(out_global.astype(int) - clean.astype(int)).max(-1)[inner]
        dust[name] = {
            "frames": f"{len(clean)} x {clean.shape[2]}x{clean.shape[1]}, 15 spots per frame",
            "dusty_db": db(psnr(dusty[inner], clean[inner], 255.0)),
            "dust_scratch_db": db(psnr(out[inner], clean[inner], 255.0)),
            "dust_scratch_global_motion_db": db(psnr(out_global[inner], clean[inner], 255.0)),
            "temporal_median_db": db(psnr(temporal_median(dusty)[inner], clean[inner], 255.0)),
            "spot_pixels_repaired": round(float((err[spots[inner]] <= 20).mean()), 3),
            "spot_pixels_repaired_global_motion": round(float((err_global[spots[inner]] <= 20).mean()), 3),
            "clean_through_dust_scratch_db": db(psnr(dust_only.process(clean)[inner], clean[inner], 255.0)),
            "clean_through_temporal_median_db": db(psnr(temporal_median(clean)[inner], clean[inner], 255.0)),
        }
        if name == "turtle_still":
            continue
        scratched = degrade.scratches(clean, np.random.default_rng(0))
        scratches[name] = {
            "frames": f"{len(clean)} x {clean.shape[2]}x{clean.shape[1]}, 3 one-pixel scratches",
            "scratched_db": db(psnr(scratched, clean, 255.0)),
            "dust_scratch_db": db(psnr(scratch_only.process(scratched), clean, 255.0)),
            "row_median_db": db(psnr(row_median(scratched), clean, 255.0)),
            "clean_through_dust_scratch_db": db(psnr(scratch_only.process(clean), clean, 255.0)),
        }
    order: dict[str, Any] = {}
    deflicker = build_stage("deflicker", {}, ctx)
    both = build_stage("dust_scratch", {}, ctx)
    for name, clean in clips.items():
        rng = np.random.default_rng(0)
        bad, _ = degrade.dust(degrade.flicker(clean, rng), rng)
        order[name] = {
            "damaged_db": db(psnr(bad[inner], clean[inner], 255.0)),
            "dust_scratch_then_deflicker_db": db(
                psnr(deflicker.process(both.process(bad))[inner], clean[inner], 255.0)
            ),
            "deflicker_then_dust_scratch_db": db(
                psnr(both.process(deflicker.process(bad))[inner], clean[inner], 255.0)
            ),
        }
    return {"dust": dust, "scratches": scratches, "flicker_and_dust_order": order}


def degrain_quality(ctx: StageContext, limit: int) -> dict[str, Any]:
    stage = build_stage("degrain", {}, ctx)
    stage_global = build_stage("degrain", {"motion": "global"}, ctx)
    model = build_stage("denoise", {}, ctx)
    clips = damage_clips(limit)
    out: dict[str, Any] = {}
    for name, clean in clips.items():
        grainy = degrade.film_grain(clean, np.random.default_rng(0))
        out[name] = {
            "frames": f"{len(clean)} x {clean.shape[2]}x{clean.shape[1]}, grain std 4 % at mid-gray",
            "grainy_db": db(psnr(grainy, clean, 255.0)),
            "degrain_db": db(psnr(stage.process(grainy), clean, 255.0)),
            "degrain_global_motion_db": db(psnr(stage_global.process(grainy), clean, 255.0)),
            "denoise_model_db": db(psnr(model.process(grainy), clean, 255.0)),
            "clean_through_degrain_db": db(psnr(stage.process(clean), clean, 255.0)),
        }
    return out


def speed(ctx: StageContext, frames: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def fresh() -> dict[str, Any]:  # new stages every round: stabilize keeps its measurements by frame content
        stages = {n: build_stage(n, {}, ctx) for n in ("deflicker", "stabilize", "dust_scratch", "degrain")}
        return (
            stages
            | {"deflicker_local": build_stage("deflicker", {"mode": "local"}, ctx)}
            | {"stabilize_translation_only": build_stage("stabilize", {"rotation": False}, ctx)}
            | {f"{n}_global_motion": build_stage(n, {"motion": "global"}, ctx) for n in ("dust_scratch", "degrain")}
        )

    stages = fresh()
    for rel in ("video/misc/bikes.mp4", "video/misc/cockatoo.mp4"):
        path = DATA / rel
        info = media.probe(path)
        index, _, _ = media.scan(path, info)
        runs: dict[str, list[float]] = {"decode": [], **{n: [] for n in stages}}
        for rep in range(repeats + 1):  # the first round warms up
            t = time.perf_counter()
            clip = np.concatenate([f for _, f in media.read_frames(path, info, index, 0, frames)])
            dec = time.perf_counter() - t
            stages = fresh()
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
    p.add_argument(
        "--only", nargs="+", choices=SECTIONS, help="run these sections and replace them in --out, keeping the others"
    )
    a = p.parse_args(argv)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    run = {
        "deflicker": lambda: deflicker_quality(ctx, a.limit),
        "stabilize": lambda: stabilize_quality(ctx),
        "dust_scratch": lambda: dust_scratch_quality(ctx, a.limit),
        "degrain": lambda: degrain_quality(ctx, a.limit),
        "speed": lambda: speed(ctx, a.frames, a.repeats),
    }
    report: dict[str, Any] = json.loads(a.out.read_text()) if a.only and a.out.exists() else {}
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    report |= {name: fn() for name, fn in run.items() if not a.only or name in a.only}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
