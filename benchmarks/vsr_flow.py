"""Video SR through the whole flow: does ``restora restore`` deliver what ``make eval`` measures?

The held-out ``cars`` clip (raw I420 truth, 320x240, 30 frames, ``benchmarks.quality.cars_rgb``) is
downscaled x4 (PIL bicubic, RGB), written as a lossless FFV1 clip and restored x4 by the
restore-video flow (Prefect, the chunk planner, the ``sr`` stage, the encoder: lossless FFV1 out),
once per model, with small chunks and decode batches so that chunk and batch boundaries fall inside
the clip. PSNR-Y (BT.601, border 4) of each output against the truth, and the ``vsr_x4`` gain over
``sr_x4`` per frame, the figure ``make eval`` gives on luma alone (+0.62 dB there).

    python -m benchmarks.vsr_flow   (make bench)   -> benchmarks/results/vsr_flow.json
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from benchmarks.quality import cars_rgb
from flows.restore_video import run
from restora.metrics import psnr_y
from restora.spec import RestoreSpec, StageSpec

OUT = Path(__file__).resolve().parent / "results" / "vsr_flow.json"
CHUNK_FRAMES = 8  # the clip is one shot of 30 frames: chunks 0-8, 8-16, 16-24, 24-30


def write_ffv1(path: Path, frames: list[np.ndarray]) -> None:
    """``(H, W, 3)`` uint8 RGB frames -> lossless FFV1 (bgr0) Matroska at 30 fps."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=30)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        vs.codec_context.time_base = Fraction(1, 30)
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            f.pts, f.time_base = i, Fraction(1, 30)
            out.mux(vs.encode(f))
        out.mux(vs.encode())


def mean_psnr_y(frames: list[np.ndarray], truth: list[np.ndarray], border: int = 4) -> float:
    """Mean over frames of :func:`restora.metrics.psnr_y` (BT.601 luma, ``border`` pixels cropped)."""
    return float(np.mean([psnr_y(a, t, crop=border) for a, t in zip(frames, truth, strict=True)]))


def main() -> None:
    truth = cars_rgb()
    lr = [np.asarray(Image.fromarray(t).resize((80, 60), Image.Resampling.BICUBIC)) for t in truth]
    bicubic = [np.asarray(Image.fromarray(x).resize((320, 240), Image.Resampling.BICUBIC)) for x in lr]
    rows: dict[str, dict[str, float]] = {"bicubic": {"psnr": mean_psnr_y(bicubic, truth)}}
    with tempfile.TemporaryDirectory(prefix="restora-vsr-flow-") as tmp:
        os.environ["RESTORA_STORAGE__ROOT"] = str(Path(tmp) / "store")  # a fresh store: no chunk reused
        src = Path(tmp) / "cars_x4_lr.mkv"
        write_ffv1(src, lr)
        for model in ("sr_x4", "vsr_x4"):
            out = Path(tmp) / f"{model}.mkv"
            spec = RestoreSpec(input=str(src), output=str(out), scale=4, chunk_frames=CHUNK_FRAMES,
                               stages=[StageSpec(type="sr", options={"model": model})])  # fmt: skip
            t = time.perf_counter()
            run(spec)
            seconds = time.perf_counter() - t
            with av.open(str(out)) as c:
                restored = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            rows[model] = {"psnr": mean_psnr_y(restored, truth), "frames": len(restored), "seconds": seconds}
    result = {
        "clip": "cars 320x240, 30 frames, RGB bicubic x4 LR, FFV1 in and out, one shot",
        "chunk_frames": CHUNK_FRAMES,
        "rows": rows,
        "gain_db": rows["vsr_x4"]["psnr"] - rows["sr_x4"]["psnr"],
    }
    print("Video SR x4 through the flow (cars, PSNR-Y, border 4)")
    for name, row in rows.items():
        print(f"  {name:8s} {row['psnr']:6.2f}")
    print(f"  vsr_x4 over sr_x4: {result['gain_db']:+.2f} dB (chunks of {CHUNK_FRAMES} frames)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
