"""Where an ONNX model spends its CPU time: ONNX Runtime's profiler, kernel time summed per op type.

    python -m benchmarks.profile_ops triton_models/sr_x4/2/model.onnx --size 320x240

prints one line per op type (ms per run and share of the total), e.g. to see whether the network's
convolutions or something around them (a ``Resize``, activations, layout reorders) dominate;
``--per-node`` one line per node instead (after ONNX Runtime's fusions), e.g. to compare one layer of
an INT8 model with the same layer in FP32.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort


def op_times(path: Path, shape: tuple[int, ...], threads: int, runs: int, per_node: bool = False) -> dict[str, float]:
    """Mean kernel milliseconds per run of each op type (or ``"node name (op type)"`` with
    ``per_node``) over ``runs`` runs (after one warm-up)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(os.environ.get("TMPDIR", "/tmp")) / "restora_ops")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = {sess.get_inputs()[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(runs + 1):
        sess.run(None, x)
    trace = Path(sess.end_profiling())
    total: collections.Counter[str] = collections.Counter()
    runs_seen = 0
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            runs_seen += 1
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            key = f"{event['name'].removesuffix('_kernel_time')} ({op})" if per_node else op
            total[key] += event["dur"]
    trace.unlink()
    return {op: us / max(runs_seen, 1) / 1000 for op, us in total.most_common()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.profile_ops")
    ap.add_argument("onnx", type=Path)
    ap.add_argument("--size", default="320x240", help="input WxH")
    ap.add_argument("--frames", type=int, default=1, help="input channels (5 for vsr_x4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--per-node", action="store_true", help="one line per node instead of per op type")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.split("x"))
    times = op_times(a.onnx, (1, a.frames, h, w), a.threads, a.runs, a.per_node)
    total = sum(times.values())
    width = max([20, *map(len, times)])
    for op, ms in times.items():
        print(f"{op:{width}s} {ms:8.1f} ms {100 * ms / total:5.1f} %")
    print(f"{'total':{width}s} {total:8.1f} ms")


if __name__ == "__main__":
    main()
