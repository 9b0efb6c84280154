"""Inference speed: local ONNX Runtime vs Triton (gRPC, HTTP) for every model, plus tiling overhead.

::

    python -m benchmarks.inference            # full run (about half an hour on 2 CPU cores)
    python -m benchmarks.inference --quick    # short run (about 5 minutes)

Starts its own Triton server (``serving.triton_server``, CPU python backend) on free ports on
127.0.0.1, measures per-batch latency and frames/s for each model in ``triton_models/`` at
320x240 and 1280x720 input with batches of 1, 4 and 8, then the cost of tiling a 720p frame
(LocalOnnx, tiled vs whole frame). Writes ``benchmarks/results/inference.json`` and prints a
table with the Triton/local latency ratio. Every backend gets one untimed call per model (64x64,
opening the session or connection) and one at each timed shape before timing; the timed calls
alternate between the backends (:func:`bench_shape`). Numbers on a shared machine depend on its
load: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from restora.inference import InferenceBackend, LocalOnnx, infer_images
from serving.triton_client import Triton
from serving.triton_server import free_ports, start
from training.package_model import DEFAULT_REPOSITORY, packaged_models

F32 = npt.NDArray[np.float32]
OUT = Path(__file__).resolve().parent / "results" / "inference.json"
SIZES = {"320x240": (240, 320), "1280x720": (720, 1280)}
SETTLE_S = 0.2  # idle time before each timed call (see bench_shape)


@dataclass
class Row:
    """One measurement: ``iterations`` timed calls of ``backend.infer`` on a ``(batch, C, h, w)`` input."""

    model: str
    size: str
    backend: str
    batch: int
    iterations: int
    latency_ms: float  # median per call (one request of ``batch`` frames)
    latency_min_ms: float
    fps: float  # frames per second at the median latency


@dataclass
class TilingRow:
    """Tiled vs whole-frame inference of one frame with LocalOnnx."""

    model: str
    size: str
    tile: int
    overlap: int
    tiles: int
    whole_ms: float
    tiled_ms: float
    ratio: float  # tiled / whole
    psnr_db: float  # tiled vs whole output


def bench_shape(
    backends: list[InferenceBackend],
    model: str,
    size: str,
    batches: list[int],
    rounds: tuple[int, int],
    budget_s: float,
    settle_s: float = SETTLE_S,
) -> list[Row]:
    """Latency of ``backend.infer`` for each backend and batch size at ``size``.

    Per batch: one untimed call on every backend (ONNX Runtime plans and allocates memory for each
    new input shape on its first run, and Triton's model instance is shared by the gRPC and HTTP
    clients, so without it the first backend timed at a shape pays that cost for the others: runs
    before commit bc48646 did, and HTTP looked up to 2.7x faster than in-process inference), then
    ``rounds = (least, most)`` rounds of one timed call per backend (more than ``least`` only while
    the batch has taken less than ``budget_s``), the first backend of each round rotating, so that
    the machine's drift and any order effect hit every backend alike. Each timed call comes after
    ``settle_s`` of idle time: ONNX Runtime's worker threads spin-wait after a run (its default,
    faster for back-to-back runs of one session), so on 2 cores a call issued right after another
    backend's ran beside those spinning threads. Measured with ``deblock`` at 320x240, calls
    alternating local / gRPC / HTTP back to back: 111 / 115 / 61 ms (HTTP, after gRPC, reused the
    same server session's threads); 50 ms apart 68 / 72 / 67 ms; 200 ms apart 59 / 64 / 63 ms.
    """
    least, most = max(rounds[0], 1), max(rounds)
    h, w = SIZES[size]
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        x = rng.random((batch, backends[0].model_info(model).in_channels, h, w), dtype=np.float32)
        for backend in backends:
            backend.infer(model, x)
        times: dict[str, list[float]] = {b.name: [] for b in backends}
        t_end = time.perf_counter() + budget_s
        for r in range(max(most, least)):
            if r >= least and time.perf_counter() > t_end:
                break
            k = r % len(backends)
            for backend in backends[k:] + backends[:k]:
                time.sleep(settle_s)
                t0 = time.perf_counter()
                backend.infer(model, x)
                times[backend.name].append(time.perf_counter() - t0)
        for backend in backends:
            t = times[backend.name]
            med = statistics.median(t)
            rows.append(Row(model, size, backend.name, batch, len(t), med * 1e3, min(t) * 1e3, batch / med))
            print(f"  {model:10s} {size:9s} {backend.name:12s} batch {batch}: {med * 1e3:9.1f} ms", file=sys.stderr)
    return rows


def warm_up(backend: InferenceBackend, model: str) -> None:
    """Open the session / connection and run the model once on a small input (not timed); the
    timed shapes get their own untimed call in :func:`bench_shape`."""
    info = backend.model_info(model)
    backend.infer(model, np.zeros((1, info.in_channels, 64, 64), dtype=np.float32))


def bench_tiling(local: LocalOnnx, model: str, size: str, tile: int, overlap: int, repeats: int) -> TilingRow:
    """Whole frame vs ``infer_images`` with ``tile`` on one ``size`` frame (LocalOnnx, best of ``repeats``)."""
    info = local.model_info(model)
    h, w = SIZES[size]
    x = np.random.default_rng(1).random((1, info.in_channels, h, w), dtype=np.float32)
    calls: list[int] = []

    class Counting:
        name = local.name

        def model_info(self, m: str) -> object:
            return local.model_info(m)

        def infer(self, m: str, b: F32) -> F32:
            calls.append(b.shape[0])
            return local.infer(m, b)

    whole_t, tiled_t = [], []
    whole = tiled = x
    for _ in range(repeats):
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        whole = local.infer(model, x)
        whole_t.append(time.perf_counter() - t0)
        calls.clear()
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        tiled = infer_images(Counting(), model, x, tile=tile, overlap=overlap)  # type: ignore[arg-type]
        tiled_t.append(time.perf_counter() - t0)
    mse = float(np.mean((tiled.astype(np.float64) - whole) ** 2))
    psnr = float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))
    wm, tm = min(whole_t) * 1e3, min(tiled_t) * 1e3
    return TilingRow(model, size, tile, overlap, sum(calls), wm, tm, tm / wm, psnr)


def table(rows: list[Row]) -> str:
    """Markdown table: median latency and fps per backend, and the Triton/local ratio of the best latencies."""
    by_key = {(r.model, r.size, r.batch, r.backend): r for r in rows}
    keys = sorted({(r.model, r.size, r.batch) for r in rows}, key=lambda k: (k[0], SIZES[k[1]], k[2]))
    lines = [
        "| model | input | batch | local ms | local fps | gRPC ms | gRPC fps | HTTP ms | HTTP fps "
        "| gRPC/local | HTTP/local |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model, size, batch in keys:
        cells = [model, size, str(batch)]
        lat = {}
        for backend in ("onnxruntime", "triton-grpc", "triton-http"):
            r = by_key.get((model, size, batch, backend))
            lat[backend] = r.latency_min_ms if r else float("nan")
            cells += [f"{r.latency_ms:.1f}", f"{r.fps:.2f}"] if r else ["-", "-"]
        for backend in ("triton-grpc", "triton-http"):
            cells.append(f"{lat[backend] / lat['onnxruntime']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overhead(rows: list[Row]) -> list[dict[str, object]]:
    """Triton/local ratio of the best (minimum) latencies per (model, size, batch).

    The minimum is used because the machine may be shared: it is the least disturbed sample.
    """
    by_key = {(r.model, r.size, r.batch, r.backend): r.latency_min_ms for r in rows}
    out = []
    for model, size, batch, backend in sorted(by_key):
        if backend != "onnxruntime":
            continue
        base = by_key[(model, size, batch, backend)]
        entry: dict[str, object] = {"model": model, "size": size, "batch": batch}
        for b in ("triton-grpc", "triton-http"):
            if (model, size, batch, b) in by_key:
                entry[b] = round(by_key[(model, size, batch, b)] / base, 3)
        out.append(entry)
    return out


def overhead_summary(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    """Median (and range) over models and batches of :func:`overhead`'s ratios, per input size and
    protocol: the figure to quote on a noisy machine, where single cells swing by 2x."""
    out: list[dict[str, object]] = []
    for size in SIZES:
        for b in ("triton-grpc", "triton-http"):
            v = [float(e[b]) for e in entries if e["size"] == size and b in e]  # type: ignore[arg-type]
            if v:
                entry: dict[str, object] = {"size": size, "backend": b, "cells": len(v)}
                entry |= {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "max": round(max(v), 2)}
                out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.inference", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds at 320x240 (3-10 otherwise) and 2 at 720p (2-3), 720p at batch 1 only",
    )
    p.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY)
    p.add_argument("--models", nargs="*", help="subset of models (default: all in the repository)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--threads", type=int, default=0, help="LocalOnnx intra-op threads (0 = all cores)")
    a = p.parse_args(argv)

    models = a.models or packaged_models(a.repository)
    if not models:
        print(f"no models in {a.repository}", file=sys.stderr)
        return 1
    plan = {
        "320x240": ([1, 4, 8], (3, 3) if a.quick else (3, 10), 18.0),
        "1280x720": ([1] if a.quick else [1, 4, 8], (2, 2) if a.quick else (2, 3), 30.0),
    }
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    local = LocalOnnx(a.repository, threads=a.threads, max_batch=8)
    rows: list[Row] = []
    tiling: list[TilingRow] = []
    http, grpc, metrics = free_ports(3)
    with tempfile.TemporaryDirectory(prefix="restora-bench-triton-") as state:
        print(f"starting Triton on 127.0.0.1:{grpc} (gRPC) / {http} (HTTP)", file=sys.stderr)
        server = start(a.repository, http_port=http, grpc_port=grpc, metrics_port=metrics, state_dir=Path(state))
        backends: list[InferenceBackend] = [
            local,
            Triton(server.grpc_url, protocol="grpc", timeout_s=600.0),
            Triton(server.http_url, protocol="http", timeout_s=600.0),
        ]
        try:
            for model in models:
                for backend in backends:
                    warm_up(backend, model)
                for size, (batches, rounds, budget) in plan.items():
                    rows += bench_shape(backends, model, size, batches, rounds, budget)
                tiling.append(bench_tiling(local, model, "1280x720", tile=256, overlap=16, repeats=1 if a.quick else 2))
                t = tiling[-1]
                print(f"  {model:10s} tiling 720p/256: {t.tiled_ms:.0f} ms vs {t.whole_ms:.0f} ms", file=sys.stderr)
        finally:
            for b in backends:
                b.close()
            server.stop()

    ratios = overhead(rows)
    summary = overhead_summary(ratios)
    result = {
        "benchmark": "inference",
        "command": "python -m benchmarks.inference" + (" --quick" if a.quick else ""),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "triton": "tritonserver 2.51 (nvidia-pytriton 0.7.0), python backend + onnxruntime, KIND_CPU",
        },
        "seconds": round(time.perf_counter() - t_start, 1),
        "results": [asdict(r) for r in rows],
        "overhead_triton_over_local": ratios,
        "overhead_summary": summary,
        "tiling_local": [asdict(t) for t in tiling],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print("Median latency per request; fps = batch / median; ratios use the best latencies.\n")
    print(table(rows))
    print()
    for e in summary:
        span = f"{e['min']}-{e['max']}"
        print(f"{e['backend']}/local at {e['size']}: median {e['median']} over {e['cells']} cells ({span})")
    print()
    print("| model | input | tile | overlap | tiles | whole ms | tiled ms | tiled/whole | PSNR tiled vs whole |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in tiling:
        print(
            f"| {t.model} | {t.size} | {t.tile} | {t.overlap} | {t.tiles} | {t.whole_ms:.0f} | {t.tiled_ms:.0f} "
            f"| {t.ratio:.2f} | {t.psnr_db:.1f} dB |"
        )
    print(f"\nwrote {a.out} ({result['seconds']} s, load average before {load_before[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
