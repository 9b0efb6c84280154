"""The whole flow from ``s3://ingest/...`` to ``s3://masters/...`` against a real S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from flows.restore_video import run
from restora import media
from restora.s3 import S3Store
from restora.settings import StorageSettings
from restora.spec import RestoreSpec
from tests.s3.conftest import ACCESS, SECRET

pytestmark = [pytest.mark.s3, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_flow_s3_in_s3_out(s3_endpoint: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {
        "S3_ENDPOINT": s3_endpoint,
        "ACCESS_KEY": ACCESS,
        "SECRET_KEY": SECRET,
        "REGION": "us-east-1",
        "CACHE_DIR": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(f"RESTORA_STORAGE__{k}", v)
    s = StorageSettings.model_validate(
        {
            "s3_endpoint": s3_endpoint,
            "access_key": ACCESS,
            "secret_key": SECRET,
            "region": "us-east-1",
            "cache_dir": tmp_path / "c2",
        }
    )
    stores = {}
    for bucket in ("ingest", "masters", "assets"):
        stores[bucket] = S3Store.from_settings(s.model_copy(update={"bucket": bucket}))
        stores[bucket].ensure_bucket()
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
