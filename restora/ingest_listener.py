"""``restora ingest-listener``: the HTTP receiver MinIO's webhook target posts bucket notifications to.

Endpoints::

    POST /minio/events   one notification (JSON, AWS S3 event format). Answers
                         202 {"started": [...], "duplicates": [...], "unmatched": [...]}
                         400 {"error": ...}  body is not a valid notification (nothing started)
                         401                 missing or wrong bearer token (when a token is configured)
                         413                 body larger than ``ingest.max_body_bytes``
                         503                 the orchestrator or the store is unreachable: MinIO keeps
                                             the event in its queue and delivers it again
    GET|HEAD /healthz    liveness; MinIO also probes its target with a HEAD on the endpoint URL

The receiver only parses, authenticates and hands created objects to an
:class:`~restora.ingest_events.IngestDispatcher` (dedupe by bucket/key/ETag, preset rules, one
``restore-video`` run per new object). Standard library HTTP server, one thread per request; it
binds 127.0.0.1 unless told otherwise. Every request is one trace (span ``ingest.notification``),
exported over OTLP when the standard variables are set. The token is never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr

from restora import telemetry
from restora.errors import ConfigError, InputError, RestoraError, TransientServiceError
from restora.ingest_events import IngestDispatcher, parse_event

log = logging.getLogger(__name__)

EVENTS_PATH = "/minio/events"
HEALTH_PATH = "/healthz"


class IngestListener:
    """An HTTP server on ``host:port`` that feeds bucket notifications to ``dispatcher``."""

    def __init__(
        self,
        dispatcher: IngestDispatcher,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: SecretStr | None = None,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.dispatcher, self.token, self.max_body_bytes = dispatcher, token, max_body_bytes
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.listener = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` the server listens on."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        """Serve until :meth:`close` (or Ctrl-C in the caller)."""
        log.info("ingest listener on %s%s", self.url, EVENTS_PATH)
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> IngestListener:
        """Serve in a daemon thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="ingest-listener", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
        self.server.server_close()

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (``Bearer <token>`` or the bare token)."""
        if self.token is None:
            return True
        if not header:
            return False
        value = header[7:] if header[:7].lower() == "bearer " else header
        return hmac.compare_digest(value.strip().encode(), self.token.get_secret_value().encode())

    def handle_notification(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Status code and JSON answer for one notification body."""
        with telemetry.root_span("ingest.notification", **{"http.request.body.size": len(body)}) as sp:
            telemetry.route_trace_to_otlp(sp)
            try:
                status, answer = self._dispatch(body)
                sp.set_attribute("http.response.status_code", status)
                for k in ("started", "duplicates", "unmatched"):
                    sp.set_attribute(f"restora.ingest.{k}", len(answer.get(k, [])))
                return status, answer
            finally:
                telemetry.unroute(sp)

    def _dispatch(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            events = parse_event(body)
        except InputError as exc:
            log.warning("ingest: rejected notification: %s", exc)
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        try:
            result = self.dispatcher.dispatch(events)
        except TransientServiceError as exc:
            log.warning("ingest: cannot start runs now (event will be redelivered): %s", exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
        except ConfigError as exc:
            log.error("ingest: configuration error: %s", exc)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)}
        except RestoraError as exc:
            log.warning("ingest: cannot start runs now (event will be redelivered): %s", exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
        for run in result.started:
            log.info("ingest: %s -> run %s (%s)", run["input"], run["run_id"], run["output"])
        return HTTPStatus.ACCEPTED, result.as_dict()


class _Handler(BaseHTTPRequestHandler):
    server_version = "restora-ingest"
    protocol_version = "HTTP/1.1"

    @property
    def listener(self) -> IngestListener:
        return self.server.listener  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, doc: dict[str, Any] | None = None, head: bool = False) -> None:
        data = json.dumps(doc if doc is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        ok = self.path.split("?")[0] in (HEALTH_PATH, EVENTS_PATH)
        self._answer(HTTPStatus.OK if ok else HTTPStatus.NOT_FOUND, head=True)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == HEALTH_PATH:
            self._answer(HTTPStatus.OK, {"status": "ok"})
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; POST notifications to {EVENTS_PATH}"})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != EVENTS_PATH:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; POST notifications to {EVENTS_PATH}"})
            return
        if not self.listener.authorized(self.headers.get("Authorization")):
            self._answer(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            return
        if length < 0 or length > self.listener.max_body_bytes:
            self.close_connection = True
            self._answer(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {self.listener.max_body_bytes} bytes"}
            )
            return
        status, doc = self.listener.handle_notification(self.rfile.read(length))
        self._answer(status, doc)
