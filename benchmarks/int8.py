"""INT8 models against their FP32 counterparts, in one run: Set5 PSNR-Y and CPU latency.

For every ``<name>_int8`` model in the repository, ``<name>`` (the shipped FP32 model users would
switch from) is the baseline. Latency: whole-frame luma requests at 320x240 and 1280x720 through
``LocalOnnx`` (the embedded backend), FP32 and INT8 alternating request by request so machine
noise hits both alike; the median of ``--repeats`` each.

    python -m benchmarks.int8     (make bench)   -> benchmarks/results/int8.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from restora.evaluation import evaluate_sr_set5
from restora.inference import LocalOnnx
from restora.settings import get_settings
from training.package_model import packaged_models

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "int8.json"
SIZES = ((320, 240), (1280, 720))


def compare(backend: LocalOnnx, fp32: str, int8: str, repeats: int) -> dict[str, Any]:
    """Set5 PSNR-Y and alternating latency of ``fp32`` vs ``int8`` (same scale)."""
    scale = backend.model_info(fp32).scale
    q = {m: evaluate_sr_set5(backend, scale, DATA, model=m)["mean_model"] for m in (fp32, int8)}
    rows = []
    rng = np.random.default_rng(0)
    for w, h in SIZES:
        x = rng.random((1, 1, h, w), dtype=np.float32)
        times: dict[str, list[float]] = {fp32: [], int8: []}
        for m in (fp32, int8):
            backend.infer(m, x)  # warm-up
        for _ in range(repeats):
            for m in (fp32, int8):
                t = time.perf_counter()
                backend.infer(m, x)
                times[m].append(time.perf_counter() - t)
        ms = {m: float(np.median(v) * 1000) for m, v in times.items()}
        rows.append({"input": f"{w}x{h}", "fp32_ms": round(ms[fp32], 2), "int8_ms": round(ms[int8], 2),
                     "speedup": round(ms[fp32] / ms[int8], 3)})  # fmt: skip
    return {
        "fp32": fp32,
        "int8": int8,
        "set5_psnr_y": {"fp32": round(q[fp32], 3), "int8": round(q[int8], 3), "loss_db": round(q[fp32] - q[int8], 3)},
        "latency": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.int8")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = all cores)")
    a = p.parse_args(argv)
    s = get_settings()
    backend = LocalOnnx(s.models.repository, threads=a.threads, max_batch=1)
    models = packaged_models(s.models.repository)
    pairs = [(m[: -len("_int8")], m) for m in models if m.endswith("_int8") and m[: -len("_int8")] in models]
    results = [compare(backend, f, q, a.repeats) for f, q in pairs]
    for r in results:
        d = r["set5_psnr_y"]
        psnrs = f"{d['int8']:.2f} vs {d['fp32']:.2f} dB (loss {d['loss_db']:.3f})"
        print(f"{r['int8']} vs {r['fp32']}: Set5 PSNR-Y {psnrs}")
        for row in r["latency"]:
            ms = f"{row['int8_ms']:8.1f} ms vs {row['fp32_ms']:8.1f} ms"
            print(f"  {row['input']:>9}: {ms}  -> {row['speedup']:.2f}x")
    if not pairs:
        print("no <model>_int8 models in the repository")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"results": results, "repeats": a.repeats}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
