"""Traces and metrics: the whole flow exported over OTLP/HTTP to a receiver on 127.0.0.1, the span
tree, credential hygiene, and ``restora trace``."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from flows.restore_video import run
from restora import telemetry
from restora.cli import main
from restora.spec import RestoreSpec
from restora.tracetree import load_spans, render_tree

SECRET = "s3cr3t-Access-Key-do-not-leak"


class Receiver:
    """A minimal OTLP/HTTP receiver (protobuf) on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.metric_names: set[str] = set()
        self.raw: list[bytes] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                rec.raw.append(body)
                if self.path == "/v1/traces":
                    req = ExportTraceServiceRequest.FromString(body)
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                rec.spans.append(
                                    {
                                        "name": s.name,
                                        "span_id": s.span_id.hex(),
                                        "trace_id": s.trace_id.hex(),
                                        "parent_id": s.parent_span_id.hex() or None,
                                        "attributes": {a.key: a.value for a in s.attributes},
                                    }
                                )
                elif self.path == "/v1/metrics":
                    req = ExportMetricsServiceRequest.FromString(body)
                    for rm in req.resource_metrics:
                        for sm in rm.scope_metrics:
                            rec.metric_names.update(m.name for m in sm.metrics)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_flow_exports_span_tree_over_otlp(
    receiver: Receiver, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("RESTORA_STORAGE__SECRET_KEY", SECRET)  # present in the environment, must never leak
    result = run(
        RestoreSpec(
            input=str(data / "video/misc/realshort.mp4"), output=str(tmp_path / "o.mp4"), scale=2, chunk_frames=12
        )
    )
    spans = receiver.spans
    ours = [s for s in spans if s["name"] == "flow.restore_video"]
    assert len(ours) == 1
    trace_id = ours[0]["trace_id"]
    tree = [s for s in spans if s["trace_id"] == trace_id]
    ids = {s["span_id"]: s for s in tree}
    assert [s["name"] for s in tree if s["parent_id"] is None] == ["flow.restore_video"]

    def ancestors(s: dict[str, Any]) -> list[str]:
        out = []
        while s["parent_id"]:
            s = ids[s["parent_id"]]
            out.append(s["name"])
        return out

    tasks = [s for s in tree if s["name"].startswith("task.")]
    assert {s["name"] for s in tasks} == {
        "task.ingest",
        "task.detect_shots",
        "task.restore_shot",
        "task.package",
        "task.publish",
    }
    assert all(ancestors(s)[-1] == "flow.restore_video" for s in tree if s["parent_id"])
    stage = [s for s in tree if s["name"] == "stage.sr"]
    assert len(stage) == 3  # one per chunk (36 frames / 12)
    assert all(s["attributes"]["restora.model"].string_value == "sr_x2" for s in stage)
    assert all(s["attributes"]["restora.frames"].int_value == 12 for s in stage)
    inference = [s for s in tree if s["name"] == "inference"]
    assert inference and all(ids[s["parent_id"]]["name"] == "stage.sr" for s in inference)
    assert any(s["name"] == "storage.put" for s in tree) and any(s["name"] == "mux" for s in tree)
    assert any(not s["name"].startswith(("task.", "stage.", "flow.", "inference", "storage.", "mux")) for s in tree), (
        "Prefect's own task spans nest in the same trace"
    )
    # no credential anywhere: not in the exported bytes, the span file or the report
    for blob in [*receiver.raw, Path(result["spans"]).read_bytes(), Path(result["report"]).read_bytes()]:
        assert SECRET.encode() not in blob
    # the run's metric totals are pushed over OTLP when it ends
    assert {"restora.frames", "restora.stage.duration", "restora.inference.duration", "restora.task.queue_wait"} <= (
        receiver.metric_names
    )


def test_trace_command_prints_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spans = [
        {
            "name": "flow.restore_video",
            "span_id": "a",
            "parent_id": None,
            "start_ns": 0,
            "end_ns": 2_000_000,
            "status": "UNSET",
            "attributes": {"restora.frames": 3},
        },
        {
            "name": "task.restore_shot",
            "span_id": "b",
            "parent_id": "a",
            "start_ns": 1,
            "end_ns": 1_000_000,
            "status": "ERROR",
            "status_message": "TransientServiceError: down",
            "attributes": {"restora.shot": 0},
        },
        {
            "name": "stage.sr",
            "span_id": "c",
            "parent_id": "b",
            "start_ns": 2,
            "end_ns": 500_000,
            "status": "UNSET",
            "attributes": {"restora.model": "sr_x2"},
        },
    ]
    f = tmp_path / "out.mp4.spans.jsonl"
    f.write_text("\n".join(json.dumps(s) for s in spans))
    assert render_tree(load_spans(f)).splitlines() == [
        "flow.restore_video  2.0 ms  frames=3",
        "└─ task.restore_shot  1.0 ms  ERROR TransientServiceError: down  shot=0",
        "   └─ stage.sr  0.5 ms  model=sr_x2",
    ]
    assert main(["trace", str(tmp_path)]) == 0
    assert "stage.sr" in capsys.readouterr().out
    assert main(["trace", str(tmp_path / "nothing")]) == 2


def test_safe_attr_strips_credentials_and_signatures() -> None:
    url = "https://user:pass@minio:9000/masters/a.mp4?X-Amz-Signature=abc&X-Amz-Credential=key"
    assert telemetry.safe_attr(url) == "https://minio:9000/masters/a.mp4"
    assert telemetry.safe_attr("/plain/path.mp4") == "/plain/path.mp4"
