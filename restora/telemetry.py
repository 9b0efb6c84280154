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


def setup() -> None:
    """Install Restora's tracer provider once per process (idempotent)."""
    global _router
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
        provider.add_span_processor(_router)
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))


def tracer() -> trace.Tracer:
    """Restora's tracer."""
    setup()
    return trace.get_tracer("restora")


def route_trace_to_file(span: Span, path: Path) -> None:
    """Write every span of ``span``'s trace to ``path`` (JSON lines) from now on."""
    setup()
    assert _router is not None
    _router.route(span.get_span_context().trace_id, path)


def unroute(span: Span) -> None:
    """Stop writing ``span``'s trace to its file."""
    if _router is not None:
        _router.unroute(span.get_span_context().trace_id)


def flush() -> None:
    """Flush batched exporters (OTLP)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def carrier() -> dict[str, str]:
    """The current trace context as a W3C ``traceparent`` carrier (pass it to tasks)."""
    c: dict[str, str] = {}
    inject(c)
    return c


@contextmanager
def span(
    name: str, parent: Mapping[str, str] | None = None, /, *, new_trace: bool = False, **attributes: Any
) -> Iterator[Span]:
    """Start a span (child of ``parent`` carrier if given, else of the current context).

    ``new_trace=True`` starts a root span of a new trace whatever the current context (a flow run is
    one trace; Prefect's own flow-run span, if any, stays in its own trace and Prefect's task spans
    nest under ours). Exceptions set the span's status to ERROR and are recorded, then re-raised.
    """
    if new_trace:
        token = otel_context.attach(otel_context.Context())
    else:
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
