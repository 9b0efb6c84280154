"""Measurement logic of the benchmarks (no timing claims: what is called, in which order)."""

from __future__ import annotations

import numpy as np

from benchmarks.inference import Row, bench_shape, overhead, overhead_summary
from restora.inference import ModelInfo


class Recording:
    """A backend that records ``(name, input shape)`` of each call and returns zeros."""

    def __init__(self, name: str, log: list[tuple[str, tuple[int, ...]]]) -> None:
        self.name = name
        self.log = log

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(model, "1", "IN", "OUT", scale=1, channels=1, max_tile=0, max_batch=8)

    def infer(self, model: str, batch: np.ndarray) -> np.ndarray:
        self.log.append((self.name, batch.shape))
        return np.zeros_like(batch)

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        pass


BACKENDS = ("onnxruntime", "triton-grpc", "triton-http")


def test_bench_shape_warms_each_shape_then_alternates_backends() -> None:
    log: list[tuple[str, tuple[int, ...]]] = []
    backends = [Recording(n, log) for n in BACKENDS]
    rows = bench_shape(backends, "m", "320x240", [1, 4], rounds=(3, 3), budget_s=60.0, settle_s=0.0)  # type: ignore[arg-type]

    names = [n for n, _ in log]
    # per batch: one untimed call on every backend, then 3 rounds, each starting one backend later
    a, b, c = BACKENDS
    assert names == [a, b, c, a, b, c, b, c, a, c, a, b] * 2
    assert [s for _, s in log[:12]] == [(1, 1, 240, 320)] * 12
    assert [s for _, s in log[12:]] == [(4, 1, 240, 320)] * 12
    assert [(r.backend, r.batch, r.iterations) for r in rows] == [(b, n, 3) for n in (1, 4) for b in BACKENDS]


def test_bench_shape_budget_stops_after_the_least_rounds_only() -> None:
    log: list[tuple[str, tuple[int, ...]]] = []
    backends = [Recording(n, log) for n in BACKENDS]
    spent = bench_shape(backends, "m", "320x240", [1], rounds=(2, 10), budget_s=0.0, settle_s=0.0)  # type: ignore[arg-type]
    assert [r.iterations for r in spent] == [2, 2, 2] and len(log) == 3 + 6
    log.clear()
    ample = bench_shape(backends, "m", "320x240", [1], rounds=(2, 5), budget_s=60.0, settle_s=0.0)  # type: ignore[arg-type]
    assert [r.iterations for r in ample] == [5, 5, 5] and len(log) == 3 + 15


def test_overhead_summary_is_the_median_over_cells() -> None:
    rows = []
    for batch, (local, grpc) in enumerate([(10.0, 11.0), (10.0, 13.0), (10.0, 30.0)], start=1):
        for backend, ms in (("onnxruntime", local), ("triton-grpc", grpc)):
            rows.append(Row("m", "320x240", backend, batch, 1, ms, ms, 1.0))
    summary = overhead_summary(overhead(rows))
    assert summary == [{"size": "320x240", "backend": "triton-grpc", "cells": 3, "median": 1.3, "min": 1.1, "max": 3.0}]
