"""Latency of an FP32 model's versions and its INT8 variant in one run (ONNX Runtime CPU, 2 threads).

    git show cb3a082:triton_models/sr_x2/1/model.onnx > /tmp/sr_x2_v1.onnx
    python -m benchmarks.activation_versions /tmp/sr_x2_v1.onnx triton_models/sr_x2/2/model.onnx \
        triton_models/sr_x2_int8/3/model.onnx

prints the median of ``--repeats`` per model and size, the models alternating (two rounds) so that
machine noise hits them alike, and each model's speed relative to the first. Packaged models only
(``restora.*`` metadata): multi-frame ones (``vsr_x4``) get frames x channels input planes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restora.inference import read_model_info
from training.quantize import latency_ms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.activation_versions")
    ap.add_argument("models", type=Path, nargs="+", help="ONNX files (the first is the reference)")
    ap.add_argument("--sizes", nargs="+", default=["320x240", "1280x720"], help="WxH input sizes")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    planes = {m: read_model_info(m, m.stem, "0", 1).in_channels for m in a.models}
    for size in a.sizes:
        w, h = (int(v) for v in size.split("x"))
        times: dict[Path, list[float]] = {m: [] for m in a.models}
        for _ in range(2):
            for m in a.models:
                times[m].append(latency_ms(m, (1, planes[m], h, w), a.threads, a.repeats))
        ref = float(np.median(times[a.models[0]]))
        for m in a.models:
            ms = float(np.median(times[m]))
            print(f"{size:>9s}  {ms:8.1f} ms  {ref / ms:5.2f}x  {m}", flush=True)


if __name__ == "__main__":
    main()
