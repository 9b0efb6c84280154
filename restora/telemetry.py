"""OpenTelemetry tracing: one trace per flow run, spans for tasks, stages and inference batches.

Exporters: by default every span of a run is appended, one JSON object per line, to that run's
span file (``<output>.spans.jsonl`` next to the output); with the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, spans also go to OTLP/HTTP. Trace context crosses task
boundaries explicitly as a W3C ``traceparent`` carrier (a small dict passed as a task parameter),
so it survives thread pools and worker processes alike.

Never put credentials or presigned URLs in attributes: :func:`safe_attr` strips URL userinfo and
query strings.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode

_setup_lock = threading.Lock()
_router: _FileRouter | None = None


class _FileRouter(SpanProcessor):
    """Appends finished spans to the JSON-lines file registered for their trace id."""

    def __init__(self) -> None:
        self._files: dict[int, Path] = {}
        self._lock = threading.Lock()

    def route(self, trace_id: int, path: Path) -> None:
        with self._lock:
            self._files[trace_id] = path

    def unroute(self, trace_id: int) -> None:
        with self._lock:
            self._files.pop(trace_id, None)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        with self._lock:
            path = self._files.get(ctx.trace_id)
            if path is None:
                return
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(span_to_dict(span), sort_keys=True) + "\n")


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """A span as a plain JSON-able dict (ids in hex, times in ns since the epoch)."""
    ctx = span.context
    assert ctx is not None
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


class _OtlpRouter(SpanProcessor):
    """Forwards the spans of routed traces to the OTLP/HTTP endpoint that was configured for them."""

    def __init__(self) -> None:
        self._exporters: dict[str, BatchSpanProcessor] = {}
        self._traces: dict[int, str] = {}
        self._lock = threading.Lock()

    def route(self, trace_id: int, endpoint: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        with self._lock:
            if endpoint not in self._exporters:
                self._exporters[endpoint] = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
            self._traces[trace_id] = endpoint

    def unroute(self, trace_id: int) -> None:
        with self._lock:
            self._traces.pop(trace_id, None)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        with self._lock:
            endpoint = self._traces.get(ctx.trace_id)
            proc = self._exporters.get(endpoint) if endpoint else None
        if proc is not None:
            proc.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            procs = list(self._exporters.values())
        return all(p.force_flush(timeout_millis) for p in procs)

    def shutdown(self) -> None:
        with self._lock:
            procs = list(self._exporters.values())
        for p in procs:
            p.shutdown()  # type: ignore[no-untyped-call]


_otlp: _OtlpRouter | None = None


def otlp_traces_endpoint() -> str | None:
    """The OTLP/HTTP traces URL from the standard variables, or None when OTLP is not configured."""
    if url := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return url
    if base := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + "/v1/traces"
    return None


def setup() -> None:
    """Install Restora's tracer provider and span routers once per process (idempotent)."""
    global _router, _otlp
    with _setup_lock:
        if _router is not None:
            return
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            from restora import __version__

            provider = TracerProvider(
                resource=Resource.create({"service.name": "restora", "service.version": __version__})
            )
            trace.set_tracer_provider(provider)
        _router = _FileRouter()
        _otlp = _OtlpRouter()
        provider.add_span_processor(_router)
        provider.add_span_processor(_otlp)
        _setup_metrics()


def tracer() -> trace.Tracer:
    """Restora's tracer."""
    setup()
    return trace.get_tracer("restora")


def route_trace_to_file(span: Span, path: Path) -> None:
    """Export every span of ``span``'s trace: to ``path`` (JSON lines), and over OTLP/HTTP when the
    standard ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variables are set now."""
    setup()
    assert _router is not None
    _router.route(span.get_span_context().trace_id, path)
    route_trace_to_otlp(span)


def route_trace_to_otlp(span: Span) -> bool:
    """Export every span of ``span``'s trace over OTLP/HTTP if the standard variables are set now (True if so)."""
    setup()
    assert _otlp is not None
    if endpoint := otlp_traces_endpoint():
        _otlp.route(span.get_span_context().trace_id, endpoint)
        return True
    return False


def unroute(span: Span) -> None:
    """Stop exporting ``span``'s trace (spans ending later are dropped); flush its OTLP spans and
    push the metric totals when OTLP is configured."""
    tid = span.get_span_context().trace_id
    if _router is not None:
        _router.unroute(tid)
    if _otlp is not None:
        _otlp.force_flush()
        _otlp.unroute(tid)
    if endpoint := otlp_metrics_endpoint():
        export_metrics(endpoint)


def flush() -> None:
    """Flush batched OTLP span exporters."""
    if _otlp is not None:
        _otlp.force_flush()


class Metrics:
    """Restora's instruments (OpenTelemetry metrics SDK; exported over OTLP when configured)."""

    def __init__(self) -> None:
        from opentelemetry import metrics as otel_metrics

        m = otel_metrics.get_meter("restora")
        self.frames = m.create_counter("restora.frames", unit="{frame}", description="frames restored")
        self.stage_latency = m.create_histogram("restora.stage.duration", unit="s", description="stage time per chunk")
        self.inference_latency = m.create_histogram(
            "restora.inference.duration", unit="s", description="inference time per request batch"
        )
        self.queue_wait = m.create_histogram(
            "restora.task.queue_wait", unit="s", description="time a chunk task waited between planning and start"
        )
        self.failures = m.create_counter("restora.failures", unit="{error}", description="failed spans by error type")


_metrics: Metrics | None = None
_metric_reader: Any = None


def _setup_metrics() -> None:
    """A process-wide meter provider read in memory; each run's totals are pushed over OTLP/HTTP
    when the run ends (see :func:`unroute`), to the endpoint that was configured for that run."""
    global _metrics, _metric_reader
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    if not isinstance(otel_metrics.get_meter_provider(), MeterProvider):
        _metric_reader = InMemoryMetricReader()
        otel_metrics.set_meter_provider(MeterProvider(metric_readers=[_metric_reader]))
    _metrics = Metrics()


def otlp_metrics_endpoint() -> str | None:
    """The OTLP/HTTP metrics URL from the standard variables, or None."""
    if url := os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        return url
    if base := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + "/v1/metrics"
    return None


def export_metrics(endpoint: str) -> bool:
    """Push the current metric totals (cumulative) to an OTLP/HTTP endpoint once."""
    if _metric_reader is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    data = _metric_reader.get_metrics_data()
    if data is None:
        return False
    exporter = OTLPMetricExporter(endpoint=endpoint, timeout=5)
    try:
        return bool(exporter.export(data) == MetricExportResult.SUCCESS)
    finally:
        exporter.shutdown()


def metrics() -> Metrics:
    """The instruments (sets telemetry up on first use)."""
    setup()
    assert _metrics is not None
    return _metrics


def carrier() -> dict[str, str]:
    """The current trace context as a W3C ``traceparent`` carrier (pass it to tasks)."""
    c: dict[str, str] = {}
    inject(c)
    return c


@contextmanager
def root_span(name: str, **attributes: Any) -> Iterator[Span]:
    """Start the root span of a new trace, whatever the current context (a flow run is one trace;
    Prefect's own flow-run span, if any, stays in its own trace and Prefect's task spans nest under ours)."""
    token = otel_context.attach(otel_context.Context())
    try:
        with span(name, **attributes) as s:
            yield s
    finally:
        otel_context.detach(token)


@contextmanager
def span(name: str, parent: Mapping[str, str] | None = None, /, **attributes: Any) -> Iterator[Span]:
    """Start a span (child of ``parent`` carrier if given, else of the current context).

    Exceptions set the span's status to ERROR and are recorded, then re-raised.
    """
    token = otel_context.attach(extract(dict(parent))) if parent else None
    try:
        with tracer().start_as_current_span(
            name,
            attributes={k: v for k, v in attributes.items() if v is not None},
            record_exception=False,
            set_status_on_exception=False,
        ) as s:
            try:
                yield s
            except BaseException as exc:
                s.record_exception(exc)
                s.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                metrics().failures.add(1, {"error.type": type(exc).__name__, "restora.span": name})
                raise
    finally:
        if token is not None:
            otel_context.detach(token)


def safe_attr(uri: str) -> str:
    """A URI with any userinfo and query string removed (no credentials or signatures in spans)."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return uri
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
