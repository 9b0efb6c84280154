"""Ingest: new objects in the ingest bucket start ``restore-video`` deployment runs.

Two ways in, one dispatcher (:class:`restora.ingest_events.IngestDispatcher`: dedupe by
bucket/key/ETag, preset by bucket/prefix rule, one run per new object):

* push — ``restora ingest-listener`` (:func:`serve_listener`) receives MinIO bucket notifications
  over HTTP (``restora.ingest_listener``) and starts runs at once;
* poll — flow ``on-ingest`` (:func:`on_ingest`), scheduled in ``prefect.yaml``, lists each rule's
  prefix for objects newer than a stored watermark, for stores without notifications.

Runs are started with :func:`start_restore_run` (``prefect.deployments.run_deployment`` with
``timeout=0``: create the run and return; a worker executes it). The event identity is the
run's idempotency key, so the Prefect API itself refuses a second run for the same object
version even if two listeners race.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from prefect import flow, task
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from restora.errors import ConfigError, TransientServiceError
from restora.ingest_events import IngestDispatcher, SeenEvents, Watermarks, poll_new
from restora.ingest_listener import IngestListener
from restora.settings import Settings
from restora.spec import RestoreSpec
from tasks import _runtime


def start_restore_run(spec: RestoreSpec, idempotency_key: str, s: Settings | None = None) -> str:
    """Create a ``restore-video`` deployment run for ``spec``; returns the flow run id.

    Raises:
        ConfigError: the deployment does not exist (``prefect deploy`` not run).
        TransientServiceError: the Prefect API is unreachable or answered 5xx.
    """
    s = s or _runtime.settings()
    try:
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call: a FlowRun, not a coroutine
            s.ingest.deployment,
            parameters={"spec": spec.model_dump(mode="json")},
            timeout=0,
            # Prefect scopes idempotency keys by flow, not deployment: name the deployment in the key
            idempotency_key=f"{s.ingest.deployment}|{idempotency_key}",
            tags=["ingest", f"preset:{spec.preset}"],
        )
    except ObjectNotFound as exc:
        raise ConfigError(
            f"Prefect deployment {s.ingest.deployment!r} not found (register it: prefect deploy --all)"
        ) from exc
    except httpx.TransportError as exc:
        raise TransientServiceError(f"Prefect API unreachable: {type(exc).__name__}") from exc
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise TransientServiceError(f"Prefect API answered {exc.response.status_code}") from exc
        raise
    return str(run.id)


def make_dispatcher(s: Settings | None = None) -> IngestDispatcher:
    """The dispatcher over the configured asset store (dedupe set), rules and deployment."""
    s = s or _runtime.settings()
    seen = SeenEvents(_runtime.store(s), s.ingest.seen_key, s.ingest.seen_max)
    return IngestDispatcher(seen, s.ingest.rules, s.storage.bucket, lambda spec, key: start_restore_run(spec, key, s))


def serve_listener(host: str, port: int) -> None:
    """Run ``restora ingest-listener`` until interrupted."""
    s = _runtime.settings()
    if not s.ingest.rules:
        raise ConfigError(
            'no ingest rules: set RESTORA_INGEST__RULES, e.g. \'[{"bucket": "ingest", "preset": "fidelity"}]\''
        )
    listener = IngestListener(
        make_dispatcher(s), host=host, port=port, token=s.ingest.token(), max_body_bytes=s.ingest.max_body_bytes
    )
    try:
        listener.serve_forever()
    finally:
        listener.close()


@task(name="poll_ingest_rules", **_runtime.RETRY)
def poll_rules(lookback_s: float) -> dict[str, Any]:
    """List every rule's prefix, start runs for objects not seen yet, move the watermarks."""
    s = _runtime.settings()
    marks_store = Watermarks(_runtime.store(s), s.ingest.watermark_key)
    marks = marks_store.load()
    dispatcher = make_dispatcher(s)
    out: dict[str, Any] = {"started": [], "duplicates": 0, "unmatched": 0}
    for rule in s.ingest.rules:
        where = f"{rule.bucket}/{rule.prefix}"
        source = _runtime.bucket_store(rule.bucket, s)
        events, mark = poll_new(source, rule, marks.get(where), timedelta(seconds=lookback_s))
        result = dispatcher.dispatch(events)
        out["started"] += result.started
        out["duplicates"] += len(result.duplicates)
        out["unmatched"] += len(result.unmatched)
        if mark is not None:
            marks[where] = mark
            marks_store.save(marks)
    return out


@flow(name="on-ingest", validate_parameters=True)
def on_ingest(lookback_s: float = 3600.0) -> dict[str, Any]:
    """Polling ingest: start a ``restore-video`` run for each new object under the ingest rules."""
    if not _runtime.settings().ingest.rules:
        raise ConfigError("no ingest rules: set RESTORA_INGEST__RULES")
    return poll_rules(lookback_s)
