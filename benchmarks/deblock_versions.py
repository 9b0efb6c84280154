"""Two versions of a same-size luma model (e.g. the first and the shipped ``deblock``) on the same
degraded inputs in one run: classic5 grayscale JPEG q=10-40 and the held-out raw clips
(``restora.evaluation.artifact_pairs``) through libx264 at CRF 20-45, each encode made once and given to
both models (x264's rate control is not bit-exact from run to run, so separate runs would not see
the same bytes). Prints the PSNR gain of each model over its input and the difference, then each
model's time for one 1280x720 and one 320x240 luma frame (2 threads, the two models alternating,
median of 5 after a warm-up) and their ratio.

    git show d5700ca:triton_models/deblock/1/model.onnx > /tmp/first_deblock.onnx
    python -m benchmarks.deblock_versions /tmp/first_deblock.onnx triton_models/deblock/1/model.onnx
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from restora.evaluation import ARTIFACT_CRFS, artifact_pairs
from restora.inference import STOP_SPINNING
from restora.metrics import psnr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def restorer(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.add_session_config_entry(*STOP_SPINNING)  # as LocalOnnx: the models alternate run by run
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def restore(sess: ort.InferenceSession, y: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 luma -> restored, rounded to 8 bits, float64."""
    name = sess.get_inputs()[0].name
    out = sess.run(None, {name: (y.astype(np.float32) / 255.0)[None, None]})[0][0, 0]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.float64)


def gains(pairs: list[tuple[np.ndarray, np.ndarray]], models: list[ort.InferenceSession]) -> list[float]:
    """Mean PSNR gain over the degraded input of each model on ``(clean, degraded)`` uint8 pairs."""
    base = np.mean([psnr(c.astype(np.float64), d.astype(np.float64), peak=255.0) for c, d in pairs])
    return [
        float(np.mean([psnr(c.astype(np.float64), restore(m, d), peak=255.0) for c, d in pairs]) - base) for m in models
    ]


def frame_ms(models: list[ort.InferenceSession], size: tuple[int, int], repeats: int = 5) -> list[float]:
    """Median milliseconds of each model on one ``size`` (width, height) luma frame, the models
    alternating run by run so both see the same machine load."""
    x = np.random.default_rng(0).random((1, 1, size[1], size[0]), dtype=np.float32)
    times: list[list[float]] = [[] for _ in models]
    for m in models:  # warm-up
        m.run(None, {m.get_inputs()[0].name: x})
    for _ in range(repeats):
        for k, m in enumerate(models):
            t = time.perf_counter()
            m.run(None, {m.get_inputs()[0].name: x})
            times[k].append(1000.0 * (time.perf_counter() - t))
    return [float(np.median(t)) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="first ONNX model (IN_Y -> OUT_Y, same size)")
    ap.add_argument("b", type=Path, help="second ONNX model")
    args = ap.parse_args()
    models = [restorer(args.a), restorer(args.b)]
    print(f"{'set':16s} {'degradation':14s} {'gain a':>7s} {'gain b':>7s} {'b - a':>7s}")
    for name, deg, pairs, _, _ in artifact_pairs(DATA, crfs=(20, *ARTIFACT_CRFS)):
        ga, gb = gains(pairs, models)
        print(f"{name.split()[0]:16s} {deg:14s} {ga:+7.2f} {gb:+7.2f} {gb - ga:+7.2f}")
    for size in ((1280, 720), (320, 240)):
        ta, tb = frame_ms(models, size)
        print(f"{size[0]}x{size[1]} frame: a {ta:.1f} ms, b {tb:.1f} ms, b/a {tb / ta:.2f}")


if __name__ == "__main__":
    main()
