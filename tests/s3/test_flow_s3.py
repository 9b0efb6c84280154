"""The whole flow from ``s3://ingest/...`` to ``s3://masters/...`` against a real S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from flows.restore_video import run
from restora import manifest, media, progress
from restora.errors import TransientServiceError
from restora.s3 import S3Store
from restora.spec import RestoreSpec
from tests.s3.conftest import ACCESS, SECRET, bucket_stores, free_port, use_s3

pytestmark = [pytest.mark.s3, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_flow_s3_in_s3_out(s3_endpoint: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_s3(monkeypatch, s3_endpoint, tmp_path / "cache")
    stores = bucket_stores(s3_endpoint, tmp_path / "c2", "ingest", "masters", "assets")
    src = data / "video/misc/realshort.mp4"
    stores["ingest"].put_file("incoming/realshort.mp4", src)
    result = run(
        RestoreSpec(input="s3://ingest/incoming/realshort.mp4", output="s3://masters/realshort_x2.mp4", scale=2)
    )
    assert result["output"] == "s3://masters/realshort_x2.mp4"
    masters = stores["masters"]
    assert masters.list("") == ["realshort_x2.mp4", "realshort_x2.mp4.report.json", "realshort_x2.mp4.spans.jsonl"]
    # the asset store itself is the S3 bucket "assets": source, chunks and staged outputs live there
    assert any("/chunks/" in k for k in stores["assets"].list("assets/"))
    url = masters.presigned_get("realshort_x2.mp4")
    out = tmp_path / "dl.mp4"
    with urllib.request.urlopen(url, timeout=30) as r:
        out.write_bytes(r.read())
    info = media.probe(out)
    assert (info.video.width, info.video.height, info.video.frames) == (640, 480, 36)
    assert media.stream_packet_digest(out, "audio") == media.stream_packet_digest(src, "audio")
    for key in ("realshort_x2.mp4.report.json", "realshort_x2.mp4.spans.jsonl"):
        blob = masters.get_bytes(key)
        assert SECRET.encode() not in blob and ACCESS.encode() not in blob
    report = json.loads(masters.get_bytes("realshort_x2.mp4.report.json"))
    assert report["output"]["uri"] == "s3://masters/realshort_x2.mp4"
    doc = manifest.load(stores["assets"], report["input"]["asset_id"])
    assert doc is not None and [o["uri"] for o in doc["outputs"]] == ["s3://masters/realshort_x2.mp4"]
    assert all(stores["assets"].exists(c["key"]) for c in doc["outputs"][0]["chunks"])
    blob = stores["assets"].get_bytes(manifest.manifest_key(report["input"]["asset_id"]))
    assert SECRET.encode() not in blob and ACCESS.encode() not in blob


def test_s3_outage_mid_run_retries_and_completes(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the S3 endpoint for a few seconds after the first chunk: the chunk tasks that hit the
    dead endpoint fail with a transient error and retry with backoff, the run completes, and the
    output prefix never holds anything but the finished output and its report."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    use_s3(monkeypatch, endpoint, tmp_path / "cache", RETRIES="0", TIMEOUT_S="5", BUCKET="assets-outage")
    stores = bucket_stores(endpoint, tmp_path / "c2", "ingest", "masters-outage", "assets-outage")
    src = data / "video/misc/realshort.mp4"
    stores["ingest"].put_file("outage/realshort.mp4", src)
    first_chunk_done = threading.Event()
    stop_listening = progress.listen(lambda done, total: first_chunk_done.set() if done >= 4 else None)
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result.update(
                run(
                    RestoreSpec(
                        input="s3://ingest/outage/realshort.mp4",
                        output="s3://masters-outage/realshort_x2.mp4",
                        scale=2,
                        chunk_frames=4,
                    )
                )
            )
        except BaseException as exc:  # reported below
            result["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    try:
        assert first_chunk_done.wait(240), "no chunk finished"
        server.stop()  # moto keeps its objects in this process: a restarted server has them all
        time.sleep(4)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        deadline = time.monotonic() + 30
        while True:  # the restarted server accepts connections a moment after start()
            try:
                published = stores["masters-outage"].list("")
                break
            except TransientServiceError:
                assert time.monotonic() < deadline, "moto did not come back"
                time.sleep(0.2)
        assert published == [], "published before the run finished"
        t.join(600)
        check_outage_run(result, stores["masters-outage"], src, tmp_path)
    finally:
        stop_listening()
        server.stop()


def check_outage_run(result: dict[str, object], masters: S3Store, src: Path, tmp_path: Path) -> None:
    assert "error" not in result, result.get("error")
    raw = sorted(o.object_name for o in masters.client.list_objects("masters-outage", recursive=True))
    assert raw == ["realshort_x2.mp4", "realshort_x2.mp4.report.json", "realshort_x2.mp4.spans.jsonl"]
    out = tmp_path / "out.mp4"
    masters.get_file("realshort_x2.mp4", out)
    assert media.probe(out).video.frames == 36
    assert media.stream_packet_digest(out, "audio") == media.stream_packet_digest(src, "audio")
    spans = [json.loads(x) for x in masters.get_bytes("realshort_x2.mp4.spans.jsonl").splitlines()]
    failed = [s for s in spans if s["name"].startswith("task.") and s["status"] == "ERROR"]
    assert failed, "no task met the outage"
    assert all("TransientServiceError" in (s["status_message"] or "") for s in failed), failed
    assert result["reused_chunks"] == 0 and result["chunks"] == 9
