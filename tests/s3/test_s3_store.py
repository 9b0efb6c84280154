"""S3Store against a real local S3 endpoint (moto): round trips, multipart, listing, presigned GET,
key/URI validation, credentials from mounted-secret files, error mapping and secret hygiene."""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3
from minio.error import S3Error

from restora import telemetry
from restora.errors import ConfigError, InputError, StorageError, TransientServiceError
from restora.s3 import TMP_DIR, S3Store, _map_error, file_uri_path, parse_uri
from restora.settings import StorageSettings, get_settings
from restora.storage import AssetStore, LocalStore

from .conftest import ACCESS, SECRET, settings_for

pytestmark = pytest.mark.s3


def sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def test_round_trip(s3_store: S3Store, tmp_path: Path) -> None:
    assert isinstance(s3_store, AssetStore)
    src = tmp_path / "in.bin"
    src.write_bytes(b"restora" * 1000)
    key = "assets/abc/source/in.bin"
    assert not s3_store.exists(key)
    s3_store.put_file(key, src)
    assert s3_store.exists(key)
    assert s3_store.uri(key) == f"s3://{s3_store.bucket}/{key}"
    dst = tmp_path / "out" / "in.bin"
    s3_store.get_file(key, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert [p.name for p in dst.parent.iterdir()] == ["in.bin"], "no temporary files left beside dst"

    s3_store.put_bytes("assets/abc/manifest.json", b'{"ok": true}')
    assert json.loads(s3_store.get_bytes("assets/abc/manifest.json")) == {"ok": True}
    # the temporary upload key is gone after publishing
    assert not [o for o in s3_store.client.list_objects(s3_store.bucket, prefix=TMP_DIR, recursive=True)]


def test_multipart_60mb(s3_store: S3Store, tmp_path: Path) -> None:
    src = tmp_path / "big.mov"
    block = os.urandom(1 << 20)
    with src.open("wb") as f:
        for i in range(60):
            f.write(bytes([i]) + block[1:])
    s3_store.put_file("assets/big/source/big.mov", src)
    info = s3_store.stat("assets/big/source/big.mov")
    assert info.size == 60 << 20
    dst = tmp_path / "big.out"
    s3_store.get_file("assets/big/source/big.mov", dst)
    assert sha256(dst) == sha256(src)

    # local_path: cached by key + ETag, with the suffix kept for PyAV; a second call does not download
    cached = s3_store.local_path("assets/big/source/big.mov")
    assert cached.suffix == ".mov" and cached.is_relative_to(s3_store.cache_dir)
    assert sha256(cached) == sha256(src)
    mtime = cached.stat().st_mtime_ns
    assert s3_store.local_path("assets/big/source/big.mov") == cached
    assert cached.stat().st_mtime_ns == mtime


def test_multipart_upload_really_uses_parts(s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload (before the publishing copy) is multipart: its ETag is ``<md5>-<parts>``."""
    src = tmp_path / "mid.bin"
    src.write_bytes(os.urandom(11 << 20))
    etags: list[str] = []
    real = s3_store.client.fput_object

    def spy(*a: object, **kw: object) -> object:
        res = real(*a, **kw)  # type: ignore[arg-type]
        etags.append(res.etag)
        return res

    monkeypatch.setattr(s3_store.client, "fput_object", spy)
    s3_store.put_file("k/mid.bin", src)
    assert etags and etags[0].strip('"').endswith("-3"), etags  # 5 + 5 + 1 MiB


def test_local_path_follows_new_versions(s3_store: S3Store) -> None:
    s3_store.put_bytes("a/clip.mp4", b"one")
    first = s3_store.local_path("a/clip.mp4")
    s3_store.put_bytes("a/clip.mp4", b"two!")
    second = s3_store.local_path("a/clip.mp4")
    assert second != first and second.read_bytes() == b"two!"
    assert not first.exists(), "the stale version is removed from the cache"


def test_list_stat_delete_copy(s3_store: S3Store) -> None:
    for k in ["assets/a/x.json", "assets/a/sub/y.json", "assets/b/z.json", "other.txt"]:
        s3_store.put_bytes(k, k.encode())
    # a leftover temporary upload never shows in listings
    s3_store.client.put_object(s3_store.bucket, f"{TMP_DIR}/dead/x", io.BytesIO(b"x"), 1)
    assert s3_store.list("assets/a") == ["assets/a/sub/y.json", "assets/a/x.json"]
    assert s3_store.list("assets/a/") == s3_store.list("assets/a")
    assert s3_store.list("assets/ab") == []
    assert s3_store.list("") == ["assets/a/sub/y.json", "assets/a/x.json", "assets/b/z.json", "other.txt"]

    info = s3_store.stat("assets/b/z.json")
    assert info.size == len(b"assets/b/z.json") and info.etag and info.last_modified is not None

    s3_store.copy("assets/b/z.json", "assets/c/z.json")
    assert s3_store.get_bytes("assets/c/z.json") == b"assets/b/z.json"

    s3_store.delete("assets/b/z.json")
    s3_store.delete("assets/b/z.json")  # absent: no error
    assert not s3_store.exists("assets/b/z.json")
    with pytest.raises(StorageError, match="NoSuchKey"):
        s3_store.get_bytes("assets/b/z.json")
    with pytest.raises(StorageError, match="NoSuchKey"):
        s3_store.stat("assets/b/z.json")


def test_prefix_keeps_keys_relative(s3_settings: StorageSettings) -> None:
    store = S3Store.from_settings(s3_settings.model_copy(update={"prefix": "team/restora"}))
    store.ensure_bucket()
    store.put_bytes("assets/a/m.json", b"{}")
    assert store.uri("assets/a/m.json") == f"s3://{store.bucket}/team/restora/assets/a/m.json"
    assert store.list("") == ["assets/a/m.json"]
    assert [o.object_name for o in store.client.list_objects(store.bucket, recursive=True)] == [
        "team/restora/assets/a/m.json"
    ]


def test_presigned_get(s3_store: S3Store) -> None:
    s3_store.put_bytes("assets/p/out.mp4", b"video bytes")
    url = s3_store.presigned_get("assets/p/out.mp4", timedelta(minutes=5))
    assert "X-Amz-Signature=" in url and SECRET not in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"video bytes"
    with pytest.raises(StorageError, match="lifetime"):
        s3_store.presigned_get("assets/p/out.mp4", timedelta(days=8))


BAD_KEYS = {
    "empty": "",
    "absolute": "/etc/passwd",
    "dotdot": "assets/../secret",
    "dot": "assets/./x",
    "empty-segment": "assets//x",
    "backslash": "assets\\x",
    "nul": "assets/\x00x",
    "newline": "assets/x\n",
    "too-long": "a/" + "x" * 1100,
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_keys_rejected(s3_store: S3Store, key: str, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    for op in (
        lambda: s3_store.put_bytes(key, b"x"),
        lambda: s3_store.put_file(key, f),
        lambda: s3_store.get_bytes(key),
        lambda: s3_store.exists(key),
        lambda: s3_store.presigned_get(key),
        lambda: s3_store.delete(key),
    ):
        with pytest.raises(StorageError, match="key"):
            op()
    if key:
        with pytest.raises(StorageError, match="key"):
            s3_store.list(key)


def test_parse_uri_good() -> None:
    assert parse_uri("s3://assets/assets/abc/source/clip%20one.mp4") == ("assets", "assets/abc/source/clip one.mp4")
    assert parse_uri("s3://my.bucket-1/k") == ("my.bucket-1", "k")
    assert file_uri_path("file:///data/in.mp4") == Path("/data/in.mp4")
    assert file_uri_path("file://localhost/data/a%20b.mp4") == Path("/data/a b.mp4")
    assert file_uri_path(Path("/tmp/x y.mov").as_uri()) == Path("/tmp/x y.mov")


BAD_URIS = {
    "http": "http://bucket/key",
    "no-key": "s3://bucket/",
    "no-bucket": "s3:///key",
    "upper-bucket": "s3://Bucket/key",
    "short-bucket": "s3://ab/key",
    "ip-bucket": "s3://10.0.0.1/key",
    "dotdot-key": "s3://bucket/a/../b",
    "encoded-dotdot": "s3://bucket/a/%2E%2E/b",
    "encoded-nul": "s3://bucket/a%00b",
    "userinfo": "s3://user:pw@bucket/key",
    "query": "s3://bucket/key?X-Amz-Signature=abc",
}


@pytest.mark.parametrize("uri", BAD_URIS.values(), ids=BAD_URIS.keys())
def test_parse_uri_bad(uri: str) -> None:
    with pytest.raises(InputError) as e:
        parse_uri(uri)
    assert "pw" not in str(e.value) and "Signature" not in str(e.value)


@pytest.mark.parametrize(
    "uri", ["s3://b/k", "file://host/x", "file://relative", "file:///a/../b", "file:///a%00b", "file:///a?q=1"]
)
def test_file_uri_bad(uri: str) -> None:
    with pytest.raises(InputError):
        file_uri_path(uri)


def test_credentials_from_files(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "access").write_text(ACCESS + "\n")
    (tmp_path / "secret").write_text(SECRET + "\n")
    monkeypatch.setenv("RESTORA_STORAGE__S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("RESTORA_STORAGE__ACCESS_KEY_FILE", str(tmp_path / "access"))
    monkeypatch.setenv("RESTORA_STORAGE__SECRET_KEY_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("RESTORA_STORAGE__BUCKET", "from-files")
    monkeypatch.setenv("RESTORA_STORAGE__REGION", "us-east-1")
    s = get_settings().storage
    assert not s.secure and s.endpoint_host == s3_endpoint.removeprefix("http://")
    creds = s.credentials()
    assert creds is not None and [c.get_secret_value() for c in creds] == [ACCESS, SECRET]
    store = S3Store.from_settings(s)
    store.ensure_bucket()
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"

    # a rotated secret is read again; both a value and a file is ambiguous; a missing file is clear
    (tmp_path / "secret").write_text("rotated")
    assert s.credentials()[1].get_secret_value() == "rotated"  # type: ignore[index]
    monkeypatch.setenv("RESTORA_STORAGE__SECRET_KEY", "inline")
    with pytest.raises(ConfigError, match="not both"):
        get_settings().storage.credentials()
    monkeypatch.delenv("RESTORA_STORAGE__SECRET_KEY")
    monkeypatch.setenv("RESTORA_STORAGE__SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="missing"):
        get_settings().storage.credentials()
    monkeypatch.delenv("RESTORA_STORAGE__SECRET_KEY_FILE")
    with pytest.raises(ConfigError, match="both access_key"):
        get_settings().storage.credentials()


def test_secure_follows_scheme() -> None:
    assert StorageSettings(s3_endpoint="https://minio.example:9000").secure
    assert not StorageSettings(s3_endpoint="http://minio.example:9000").secure
    for bad in ["minio:9000", "ftp://x", "http://ak:sk@minio:9000", "http://minio:9000/bucket"]:
        with pytest.raises(ValueError, match="s3_endpoint"):
            StorageSettings(s3_endpoint=bad)


def test_runtime_store_picks_backend(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import _runtime

    assert isinstance(_runtime.store(), LocalStore)
    monkeypatch.setenv("RESTORA_STORAGE__S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("RESTORA_STORAGE__ACCESS_KEY", ACCESS)
    monkeypatch.setenv("RESTORA_STORAGE__SECRET_KEY", SECRET)
    st = _runtime.store()
    assert isinstance(st, S3Store) and st.bucket == "assets"
    assert SECRET not in repr(st)


def test_transient_when_endpoint_down(dying_endpoint: tuple[object, str], tmp_path: Path) -> None:
    server, url = dying_endpoint
    store = S3Store.from_settings(settings_for(url, tmp_path / "cache", bucket="dying"))
    store.ensure_bucket()
    store.put_bytes("k", b"v")
    assert store.exists("k")
    server.stop()  # type: ignore[attr-defined]
    with pytest.raises(TransientServiceError, match="unreachable"):
        store.get_bytes("k")
    with pytest.raises(TransientServiceError):
        store.exists("k")
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(TransientServiceError):
        store.put_file("k2", f)


def test_missing_bucket_is_storage_error(s3_settings: StorageSettings) -> None:
    store = S3Store.from_settings(s3_settings)  # bucket never created
    with pytest.raises(StorageError, match="NoSuchBucket"):
        store.get_bytes("k")


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [(503, "SlowDown", True), (500, "InternalError", True), (403, "AccessDenied", False), (404, "NoSuchKey", False)],
    ids=["slowdown", "internal", "denied", "nosuchkey"],
)
def test_error_mapping(status: int, code: str, transient: bool) -> None:
    exc = S3Error(urllib3.HTTPResponse(status=status), code, "msg", "/b/k", "req", "host")
    mapped = _map_error(exc, "get b/k")
    assert isinstance(mapped, TransientServiceError if transient else StorageError)
    assert code in str(mapped)


def test_secret_never_in_repr_or_spans(s3_settings: StorageSettings, tmp_path: Path) -> None:
    for text in (repr(s3_settings), str(s3_settings), s3_settings.model_dump_json(), repr(get_settings())):
        assert SECRET not in text and ACCESS not in text
    store = S3Store.from_settings(s3_settings)
    store.ensure_bucket()
    spans = tmp_path / "spans.jsonl"
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1234)
    with telemetry.root_span("test.s3") as root:
        telemetry.route_trace_to_file(root, spans)
        store.put_file("assets/s/a.bin", src)
        store.get_file("assets/s/a.bin", tmp_path / "b.bin")
        url = store.presigned_get("assets/s/a.bin")
        with pytest.raises(StorageError):
            store.get_bytes("assets/s/missing")
        telemetry.unroute(root)
    blob = spans.read_text()
    assert SECRET not in blob and ACCESS not in blob
    assert "X-Amz" not in blob and url not in blob
    recs = [json.loads(line) for line in blob.splitlines()]
    put = next(r for r in recs if r["name"] == "storage.put")
    get = next(r for r in recs if r["name"] == "storage.get")
    assert put["attributes"]["restora.key"] == "assets/s/a.bin" and put["attributes"]["restora.bytes"] == 1234
    assert get["attributes"]["restora.bytes"] == 1234
    assert put["attributes"]["restora.uri"] == f"s3://{store.bucket}/assets/s/a.bin"
