"""MinIO bucket notifications: parsing a real-format event, validation, dedupe, preset rules."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from restora.errors import ConfigError, InputError, StorageError, TransientServiceError
from restora.ingest_events import (
    IngestDispatcher,
    ObjectCreated,
    SeenEvents,
    Watermarks,
    output_uri,
    parse_event,
    plan_spec,
    poll_new,
    select_rule,
)
from restora.s3 import S3Store
from restora.settings import IngestRule, get_settings
from restora.spec import RestoreSpec
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


def _ev(key: str, etag: str = "e1", bucket: str = "ingest") -> ObjectCreated:
    return ObjectCreated(bucket, key, etag, 10, "s3:ObjectCreated:Put")


@pytest.mark.parametrize(
    ("key", "rule", "uri"),
    [("incoming/show/ep1.mp4",
      IngestRule(bucket="ingest", prefix="incoming/", preset="fidelity", output_bucket="masters"),
      "s3://masters/fidelity/show/ep1.x2.mp4"),
     ("tape 7.MXF", IngestRule(bucket="ingest", preset="forensic", scale=4, output_bucket="masters"),
      "s3://masters/forensic/tape 7.x4.mxf"),
     ("old/tape 8.avi", IngestRule(bucket="ingest", preset="forensic", scale=2, output_bucket="masters"),
      "s3://masters/forensic/old/tape 8.x2.mkv"),
     ("in/a.mov", IngestRule(bucket="ingest", prefix="in/", preset="fidelity", scale=1),
      "s3://assets/fidelity/a.x1.mov")],
    ids=["keeps-folders", "mxf-stays-mxf", "avi-to-mkv", "default-bucket"],
)  # fmt: skip
def test_output_uri(key: str, rule: IngestRule, uri: str) -> None:
    assert output_uri(_ev(key), rule, "assets") == uri


def test_output_under_own_prefix_refused() -> None:
    rule = IngestRule(bucket="ingest", prefix="", preset="fidelity", output_bucket="ingest")
    with pytest.raises(ConfigError, match="own prefix"):
        output_uri(_ev("a.mp4"), rule, "assets")


def test_plan_spec() -> None:
    rule = IngestRule(bucket="ingest", prefix="incoming/", preset="forensic", scale=4, output_bucket="masters")
    spec = plan_spec(_ev("incoming/a.mp4"), rule, "assets")
    assert (spec.input, spec.output, spec.preset, spec.scale) == (
        "s3://ingest/incoming/a.mp4",
        "s3://masters/forensic/a.x4.mp4",
        "forensic",
        4,
    )
    assert spec.field_rate is False
    interlaced_masters = rule.model_copy(update={"field_rate": True})  # a 1080i50 feed delivered as 1080p50
    assert plan_spec(_ev("incoming/a.mp4"), interlaced_masters, "assets").field_rate is True
    playout = rule.model_copy(update={"reinterlace": True})  # a 1080i50 feed restored and delivered as 1080i50
    assert plan_spec(_ev("incoming/a.mp4"), playout, "assets").reinterlace is True
    xdcam = rule.model_copy(update={"mxf_codec": "xdcam"})  # MXF masters delivered as XDCAM HD422
    assert plan_spec(_ev("incoming/a.mxf"), xdcam, "assets").mxf_codec == "xdcam"
    assert plan_spec(_ev("incoming/a.mp4"), xdcam, "assets").mxf_codec is None  # delivered as MP4
    with pytest.raises(ValueError, match="preset"):  # "denoise" names a stage, not a preset
        plan_spec(_ev("incoming/a.mp4"), RULES[1], "assets")


class FakeStarter:
    """Records start calls; fails while ``down`` (like an unreachable Prefect API)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.down = False

    def __call__(self, spec: RestoreSpec, key: str) -> str:
        if self.down:
            raise TransientServiceError("Prefect API unreachable: ConnectError")
        self.calls.append((spec.input, key))
        return f"run-{len(self.calls)}"


def test_dispatcher(tmp_path: Any) -> None:
    rules = [IngestRule(bucket="ingest", prefix="incoming/", preset="fidelity", output_bucket="masters")]
    start = FakeStarter()
    d = IngestDispatcher(SeenEvents(LocalStore(tmp_path)), rules, "assets", start)
    a, b = _ev("incoming/a.mp4"), _ev("incoming/b.mp4")
    r = d.dispatch([a, a, b, _ev("elsewhere/c.mp4")])
    assert [s["run_id"] for s in r.started] == ["run-1", "run-2"]
    assert r.started[0]["output"] == "s3://masters/fidelity/a.x2.mp4"
    assert r.duplicates == [a.identity] and r.unmatched == ["ingest/elsewhere/c.mp4@e1"]
    assert start.calls == [("s3://ingest/incoming/a.mp4", a.identity), ("s3://ingest/incoming/b.mp4", b.identity)]
    assert d.dispatch([a, b]).started == [], "seen: nothing new"
    # the orchestrator is down: nothing recorded, so the redelivered event starts its run later
    c = _ev("incoming/c.mp4")
    start.down = True
    with pytest.raises(TransientServiceError):
        d.dispatch([c])
    start.down = False
    assert [s["identity"] for s in d.dispatch([c]).started] == [c.identity]


def test_poll_new_since_watermark(s3_store: S3Store) -> None:
    rule = IngestRule(bucket=s3_store.bucket, prefix="incoming/", preset="fidelity", output_bucket="masters")
    for k in ("incoming/a.mp4", "incoming/sub/b.mov", "other/c.mp4"):
        s3_store.put_bytes(k, k.encode())
    events, mark = poll_new(s3_store, rule, None)
    assert [e.key for e in events] == ["incoming/a.mp4", "incoming/sub/b.mov"]
    assert events[0].etag == s3_store.stat("incoming/a.mp4").etag and events[0].size == len(b"incoming/a.mp4")
    assert mark is not None and mark == max(s3_store.stat(e.key).last_modified for e in events)  # type: ignore[type-var]
    later = mark + timedelta(hours=2)
    assert poll_new(s3_store, rule, later) == ([], later), "nothing modified since the watermark (2 h > lookback)"
    assert len(poll_new(s3_store, rule, later, lookback=timedelta(hours=3))[0]) == 2, "lookback widens the window"


def test_watermarks_round_trip(tmp_path: Any) -> None:
    marks = Watermarks(LocalStore(tmp_path))
    assert marks.load() == {}
    t = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    marks.save({"ingest/incoming/": t})
    assert Watermarks(LocalStore(tmp_path)).load() == {"ingest/incoming/": t}
    LocalStore(tmp_path).put_bytes("ingest/watermarks.json", b'["x"]')
    with pytest.raises(StorageError, match="corrupt watermarks"):
        marks.load()
