"""Triton serves every model exactly like local ONNX Runtime (gRPC and HTTP), tiles large frames, traces requests."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from restora.inference import LocalOnnx, infer_images
from serving.triton_client import Triton
from serving.triton_server import TritonServer, main
from training.package_model import packaged_models

MODELS = packaged_models()
pytestmark = pytest.mark.triton


def test_server_health_and_metadata(triton_server: TritonServer, triton: Triton, local: LocalOnnx) -> None:
    assert triton_server.ready()
    assert triton.healthy()
    assert main(["status", "--state-dir", triton_server.state_dir]) == 0
    for name in MODELS:
        remote, ref = triton.model_info(name), local.model_info(name)
        same = ("input_name", "output_name", "scale", "channels", "max_tile", "version", "frames", "grid")
        assert {k: getattr(remote, k) for k in same} == {k: getattr(ref, k) for k in same}
        assert 1 <= remote.max_batch <= 8


@pytest.mark.parametrize("name", MODELS)
def test_triton_equals_local(name: str, triton: Triton, local: LocalOnnx) -> None:
    info = triton.model_info(name)
    n = info.max_batch + 1  # more than one request: the client splits the batch
    x = np.random.default_rng(7).random((n, info.in_channels, 24, 40), dtype=np.float32)  # frames x channels
    y = triton.infer(name, x)
    ref = local.infer(name, x)
    assert y.dtype == np.float32 and y.shape == (n, info.channels, 24 * info.scale, 40 * info.scale)
    assert float(np.abs(y - ref).max()) <= 1e-4


def test_concurrent_requests_are_each_answered(triton_server: TritonServer, local: LocalOnnx) -> None:
    """Dynamic batching hands several requests to one ``execute`` call; every caller gets its own result."""
    name = MODELS[0]
    backend = Triton(triton_server.grpc_url)
    c = backend.model_info(name).channels
    inputs = [np.random.default_rng(i).random((1, c, 16 + 2 * i, 20), dtype=np.float32) for i in range(6)]
    results: dict[int, Any] = {}

    def call(i: int) -> None:
        results[i] = backend.infer(name, inputs[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    backend.close()
    for i, x in enumerate(inputs):
        assert float(np.abs(results[i] - local.infer(name, x)).max()) <= 1e-4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def test_1080p_frame_is_tiled_seamlessly(triton_server: TritonServer, local: LocalOnnx) -> None:
    """A 1920x1080 frame through Triton in tiles == the whole frame through local ONNX Runtime (>= 50 dB)."""
    backend = Triton(triton_server.grpc_url)
    name = min(MODELS, key=lambda m: backend.model_info(m).scale)  # cheapest output
    info = backend.model_info(name)
    tile = info.max_tile if 0 < info.max_tile < 1080 else 480
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    smooth = 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    noise = np.random.default_rng(3).normal(0, 0.05, (info.channels, 1080, 1920))
    frame = np.clip(smooth + noise, 0, 1).astype(np.float32)[None]
    calls: list[tuple[int, ...]] = []
    original = backend.infer
    backend.infer = lambda m, b: (calls.append(b.shape), original(m, b))[1]  # type: ignore[method-assign]
    tiled = infer_images(backend, name, frame, tile=tile)
    backend.close()
    assert all(s[2] <= tile and s[3] <= tile for s in calls) and len(calls) > 1
    whole = local.infer(name, frame)
    assert tiled.shape == whole.shape == (1, info.channels, 1080 * info.scale, 1920 * info.scale)
    assert psnr(tiled, whole) >= 50.0


def test_request_span_and_traceparent(triton_server: TritonServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    backend = Triton(triton_server.grpc_url, tracer=tracer)
    name = MODELS[0]
    info = backend.model_info(name)
    sent: list[dict[str, str] | None] = []
    original = backend._client.infer

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("headers"))
        return original(*args, **kwargs)

    backend._client.infer = spy
    with tracer.start_as_current_span("stage") as parent:
        backend.infer(name, np.zeros((2, info.channels, 8, 8), dtype=np.float32))
    backend.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    span = spans["triton.infer"]
    assert span.kind == trace.SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    expected = {"restora.model": name, "restora.model_version": info.version, "restora.backend": "triton-grpc"}
    expected["restora.batch"] = 2  # type: ignore[assignment]
    attrs = dict(span.attributes or {})
    assert {k: attrs.get(k) for k in expected} == expected
    ctx = span.get_span_context()
    assert sent and sent[0] is not None
    assert sent[0]["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
