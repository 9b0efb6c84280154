"""MinIO bucket notifications: parsing a real-format event, validation, dedupe, preset rules."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from restora.errors import InputError, StorageError
from restora.ingest_events import ObjectCreated, SeenEvents, parse_event, select_rule
from restora.s3 import S3Store
from restora.settings import IngestRule, get_settings
from restora.storage import LocalStore

pytestmark = pytest.mark.s3

# What a MinIO webhook target POSTs for `mc cp "clip one.mp4" local/ingest/incoming/` (MinIO RELEASE.2024+ format)
MINIO_EVENT: dict[str, Any] = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "ingest/incoming/clip one.mp4",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-11-23T16:20:01.123Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "restora-uploader"},
            "requestParameters": {"principalId": "restora-uploader", "region": "", "sourceIPAddress": "10.0.0.7"},
            "responseElements": {
                "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
                "x-amz-request-id": "1798A2C4F6B5E0D7",
                "x-minio-deployment-id": "9f2b6c1e-6a4d-4a53-9b2e-0c5a7e1d2f33",
                "x-minio-origin-endpoint": "http://10.0.0.5:9000",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "ingest",
                    "ownerIdentity": {"principalId": "restora-uploader"},
                    "arn": "arn:aws:s3:::ingest",
                },
                "object": {
                    "key": "incoming%2Fclip+one.mp4",
                    "size": 52428800,
                    "eTag": "6f1c2a0d9b6e4b7a8c3d2e1f0a9b8c7d-4",
                    "contentType": "video/mp4",
                    "userMetadata": {"content-type": "video/mp4"},
                    "sequencer": "1798A2C4F73C0A1E",
                },
            },
            "source": {"host": "10.0.0.7", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70 mc/RELEASE"},
        }
    ],
}


def test_parse_minio_event() -> None:
    [ev] = parse_event(json.dumps(MINIO_EVENT).encode())
    assert ev == ObjectCreated(
        bucket="ingest",
        key="incoming/clip one.mp4",
        etag="6f1c2a0d9b6e4b7a8c3d2e1f0a9b8c7d-4",
        size=52428800,
        event_name="s3:ObjectCreated:Put",
    )
    assert parse_event(MINIO_EVENT) == [ev]


def test_other_events_ignored() -> None:
    doc = copy.deepcopy(MINIO_EVENT)
    doc["Records"][0]["eventName"] = "s3:ObjectRemoved:Delete"
    assert parse_event(doc) == []
    doc["Records"][0]["eventName"] = "s3:ObjectCreated:CompleteMultipartUpload"
    assert len(parse_event(doc)) == 1


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(MINIO_EVENT)
    node = doc["Records"][0]
    for p in path[:-1]:
        node = node[p]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


MALFORMED = {
    "not-json": b"{nope",
    "no-records": b'{"EventName": "s3:ObjectCreated:Put"}',
    "records-not-list": b'{"Records": {}}',
    "no-event-name": _broken(["eventName"], ...),
    "no-s3": _broken(["s3"], ...),
    "no-bucket-name": _broken(["s3", "bucket", "name"], ""),
    "no-key": _broken(["s3", "object", "key"], ...),
    "dotdot-key": _broken(["s3", "object", "key"], "incoming%2F..%2Fsecret"),
    "absolute-key": _broken(["s3", "object", "key"], "%2Fetc%2Fpasswd"),
    "no-etag": _broken(["s3", "object", "eTag"], ...),
    "negative-size": _broken(["s3", "object", "size"], -1),
    "string-size": _broken(["s3", "object", "size"], "12"),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_events_rejected(body: Any) -> None:
    with pytest.raises(InputError, match="notification"):
        parse_event(body)


RULES = [
    IngestRule(bucket="ingest", prefix="", preset="default"),
    IngestRule(bucket="ingest", prefix="incoming/", preset="denoise", output_bucket="restored"),
    IngestRule(bucket="archive", prefix="film/", preset="film"),
]


@pytest.mark.parametrize(
    ("bucket", "key", "preset"),
    [("ingest", "incoming/a.mp4", "denoise"), ("ingest", "other/a.mp4", "default"), ("archive", "film/x.mov", "film"),
     ("archive", "tv/x.mov", None), ("nobody", "incoming/a.mp4", None)],
    ids=["longest-prefix", "bucket-default", "other-bucket", "no-prefix-match", "unknown-bucket"],
)  # fmt: skip
def test_select_rule(bucket: str, key: str, preset: str | None) -> None:
    rule = select_rule(ObjectCreated(bucket, key, "e", 1, "s3:ObjectCreated:Put"), RULES)
    assert (rule.preset if rule else None) == preset


def test_rules_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "RESTORA_INGEST__RULES",
        json.dumps([{"bucket": "ingest", "prefix": "in/", "preset": "p", "output_bucket": "out"}]),
    )
    assert get_settings().ingest.rules == [IngestRule(bucket="ingest", prefix="in/", preset="p", output_bucket="out")]
    monkeypatch.setenv("RESTORA_INGEST__RULES", json.dumps([{"bucket": "Bad_Bucket", "preset": "p"}]))
    with pytest.raises(ValueError, match="bucket"):
        get_settings()


def test_dedupe_by_bucket_key_etag(s3_store: S3Store) -> None:
    [ev] = parse_event(MINIO_EVENT)
    seen = SeenEvents(s3_store, max_items=10)
    assert seen.add_new([ev, ev]) == [ev], "duplicates within one batch collapse"
    assert ev in seen
    assert SeenEvents(s3_store).add_new([ev]) == [], "persisted: a re-delivery is dropped"
    reupload = ObjectCreated(ev.bucket, ev.key, "new-etag", ev.size, ev.event_name)
    assert seen.add_new([reupload]) == [reupload], "new content under the same key is new"
    many = [ObjectCreated("b", f"k{i}", "e", 1, "s3:ObjectCreated:Put") for i in range(20)]
    seen.add_new(many)
    assert len(json.loads(s3_store.get_bytes("ingest/seen.json"))) == 10
    assert ev not in seen and many[-1] in seen


def test_corrupt_dedupe_set(tmp_path: Any) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("ingest/seen.json", b'{"not": "a list"}')
    with pytest.raises(StorageError, match="corrupt"):
        SeenEvents(store).add_new([])
