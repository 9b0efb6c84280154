"""Ingest trigger end to end: real HTTP receiver, real Prefect API (test harness), deployment runs.

The ``restore-video`` deployment is registered in the harness's API; ``run_deployment`` creates
its runs in the Scheduled state (no worker runs them here: the flow itself is tested elsewhere),
so a test counts exactly the runs the ingest path started.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun

from flows.on_ingest import make_dispatcher, on_ingest
from restora.ingest_listener import IngestListener
from tests.s3.conftest import bucket_stores, free_port, use_s3
from tests.s3.test_ingest_events import MINIO_EVENT

pytestmark = [pytest.mark.s3, pytest.mark.usefixtures("prefect_harness")]

TOKEN = "webhook-t0ken-do-not-leak"
RULES = [{"bucket": "ingest", "prefix": "incoming/", "preset": "fidelity", "output_bucket": "masters"}]


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``restore-video`` deployment in the harness API; returns its id. Ingest settings point at it."""
    name = f"restore-video-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as c:
        flow_id = c.create_flow_from_name("restore-video")
        dep_id = c.create_deployment(flow_id, name=name, entrypoint="flows/restore_video.py:restore_video")
    monkeypatch.setenv("RESTORA_INGEST__DEPLOYMENT", f"restore-video/{name}")
    monkeypatch.setenv("RESTORA_INGEST__RULES", json.dumps(RULES))
    return str(dep_id)


def runs_of(dep_id: str) -> list[FlowRun]:
    with get_client(sync_client=True) as c:
        return c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[uuid.UUID(dep_id)])))


@pytest.fixture
def listener(deployment: str) -> Iterator[IngestListener]:
    from pydantic import SecretStr

    srv = IngestListener(make_dispatcher(), host="127.0.0.1", port=0, token=SecretStr(TOKEN)).start()
    try:
        yield srv
    finally:
        srv.close()


def post(url: str, body: bytes, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url + "/minio/events", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def event(key: str = "incoming%2Fclip+one.mp4", etag: str = "6f1c2a0d9b6e4b7a8c3d2e1f0a9b8c7d-4") -> bytes:
    doc = copy.deepcopy(MINIO_EVENT)
    doc["Records"][0]["s3"]["object"].update(key=key, eTag=etag)
    return json.dumps(doc).encode()


def test_same_event_twice_starts_one_run(listener: IngestListener, deployment: str) -> None:
    status, first = post(listener.url, event())
    assert status == 202 and len(first["started"]) == 1, first
    status, second = post(listener.url, event())
    assert status == 202 and second == {"started": [], "duplicates": [first["started"][0]["identity"]], "unmatched": []}
    [run] = runs_of(deployment)
    assert str(run.id) == first["started"][0]["run_id"]
    assert run.parameters["spec"]["input"] == "s3://ingest/incoming/clip one.mp4"
    assert run.parameters["spec"]["output"] == "s3://masters/fidelity/clip one.x2.mp4"
    assert run.parameters["spec"]["preset"] == "fidelity" and "ingest" in run.tags
    assert run.state is not None and run.state.is_scheduled()


def test_concurrent_redeliveries_start_one_run(listener: IngestListener, deployment: str) -> None:
    answers: list[tuple[int, dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda: answers.append(post(listener.url, event()))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a[0] for a in answers] == [202] * 6
    assert sum(len(a[1]["started"]) for a in answers) == 1
    assert len(runs_of(deployment)) == 1


def test_prefect_idempotency_backs_up_the_dedupe_set(listener: IngestListener, deployment: str) -> None:
    """Even with the dedupe set lost (another listener, a wiped store), the API starts no second run."""
    _, first = post(listener.url, event())
    from tasks import _runtime

    _runtime.store().delete("ingest/seen.json")
    _, again = post(listener.url, event())
    assert again["started"][0]["run_id"] == first["started"][0]["run_id"]
    assert len(runs_of(deployment)) == 1


def test_reupload_with_new_content_starts_a_new_run(listener: IngestListener, deployment: str) -> None:
    post(listener.url, event())
    status, doc = post(listener.url, event(etag="0123456789abcdef0123456789abcdef"))
    assert status == 202 and len(doc["started"]) == 1
    assert len(runs_of(deployment)) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "not JSON"), (b'{"Records": {}}', "no Records list"),
     (event(key="incoming%2F..%2F..%2Fetc%2Fpasswd"), "invalid store key"), (b"", "not JSON")],
    ids=["not-json", "records-not-list", "dotdot-key", "empty"],
)  # fmt: skip
def test_malformed_event_is_400_and_starts_nothing(
    listener: IngestListener, deployment: str, body: bytes, message: str
) -> None:
    status, doc = post(listener.url, body)
    assert status == 400 and message in doc["error"], doc
    assert runs_of(deployment) == []


def test_auth_and_routing(listener: IngestListener, deployment: str) -> None:
    assert post(listener.url, event(), token=None)[0] == 401
    assert post(listener.url, event(), token="wrong")[0] == 401
    with urllib.request.urlopen(listener.url + "/healthz", timeout=10) as r:
        assert r.status == 200
    head = urllib.request.Request(listener.url + "/minio/events", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as r:
        assert r.status == 200  # MinIO's reachability probe
    status, doc = post(listener.url, event(key="elsewhere%2Fx.mp4"))
    assert status == 202 and doc["unmatched"] == ["ingest/elsewhere/x.mp4@6f1c2a0d9b6e4b7a8c3d2e1f0a9b8c7d-4"]
    assert runs_of(deployment) == []


def test_missing_deployment_is_a_clear_500(
    listener: IngestListener, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RESTORA_INGEST__DEPLOYMENT", "restore-video/not-deployed")
    srv = IngestListener(make_dispatcher(), host="127.0.0.1", port=0).start()
    try:
        status, doc = post(srv.url, event(), token=None)
    finally:
        srv.close()
    assert status == 500 and "not found (register it: prefect deploy --all)" in doc["error"]
    caplog.clear()  # the listener logged that configuration error on purpose


def test_polling_mode(s3_endpoint: str, deployment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``on-ingest`` without notifications: lists the prefix, starts runs for new objects, keeps a watermark."""
    bucket = f"ing-{uuid.uuid4().hex[:8]}"
    assets_bucket = f"assets-{uuid.uuid4().hex[:8]}"
    use_s3(monkeypatch, s3_endpoint, tmp_path / "c", RETRIES="0", BUCKET=assets_bucket)
    monkeypatch.setenv("RESTORA_INGEST__RULES", json.dumps([{**RULES[0], "bucket": bucket}]))
    stores = bucket_stores(s3_endpoint, tmp_path / "c2", bucket, assets_bucket)
    src, assets = stores[bucket], stores[assets_bucket]
    src.put_bytes("incoming/a.mp4", b"a")
    src.put_bytes("notes/readme.txt", b"not under the rule's prefix")
    first = on_ingest()
    assert [s["input"] for s in first["started"]] == [f"s3://{bucket}/incoming/a.mp4"]
    assert on_ingest()["started"] == [], "already started: the second poll starts nothing"
    src.put_bytes("incoming/b.mov", b"b")
    assert [s["output"] for s in on_ingest()["started"]] == ["s3://masters/fidelity/b.x2.mov"]
    assert len(runs_of(deployment)) == 2
    assert f"{bucket}/incoming/" in json.loads(assets.get_bytes("ingest/watermarks.json"))


def test_cli_listener_process(tmp_path: Path) -> None:
    """``restora ingest-listener`` as a process: binds 127.0.0.1, answers health and 400s, stops on SIGTERM."""
    port = free_port()
    env = {**os.environ, "RESTORA_INGEST__RULES": json.dumps(RULES), "RESTORA_STORAGE__ROOT": str(tmp_path / "store")}
    env.pop("RESTORA_INGEST__WEBHOOK_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "restora.cli", "ingest-listener", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "listener did not come up"
                time.sleep(0.3)
        status, doc = post(url, b'{"Records": 1}', token=None)
        assert status == 400 and doc == {"error": "bucket notification has no Records list"}
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert f"ingest listener on http://127.0.0.1:{port}/minio/events" in out


def test_cli_listener_without_rules_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from restora.cli import main

    assert main(["ingest-listener", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("restora: error: no ingest rules") and "\n" not in err
