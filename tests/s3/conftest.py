"""Fixtures for the S3 tests: a real local S3 endpoint (moto's ``ThreadedMotoServer``) on 127.0.0.1.

One server serves the whole session; a test that needs to stop its endpoint gets its own
(``dying_endpoint``). moto checks neither credentials nor presigned signatures (ARCHITECTURE.md
section 4): these tests cover our client, key/URI validation and error mapping, not MinIO's auth.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from restora.s3 import S3Store
from restora.settings import StorageSettings

ACCESS = "test-access-key"
SECRET = "s3cr3t-Secret-Key-do-not-leak"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[ThreadedMotoServer, str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of the session's moto S3 server."""
    server, url = start_moto()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def dying_endpoint() -> Iterator[tuple[ThreadedMotoServer, str]]:
    """A per-test moto server the test may stop."""
    server, url = start_moto()
    try:
        yield server, url
    finally:
        server.stop()  # a second stop (after the test's) returns at once


def settings_for(endpoint: str, tmp_path_cache: object, **kw: object) -> StorageSettings:
    """Storage settings for ``endpoint`` with the test credentials, no HTTP retries and short timeouts."""
    base: dict[str, object] = {
        "s3_endpoint": endpoint,
        "access_key": ACCESS,
        "secret_key": SECRET,
        "region": "us-east-1",
        "retries": 0,
        "timeout_s": 5.0,
        "part_size_mb": 5,
        "cache_dir": tmp_path_cache,
    }
    base.update(kw)
    return StorageSettings.model_validate(base)


def use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str, cache_dir: Path, **env: str) -> None:
    """Point Restora's settings (the environment the flow reads) at ``endpoint`` with the test credentials."""
    base = {"S3_ENDPOINT": endpoint, "ACCESS_KEY": ACCESS, "SECRET_KEY": SECRET, "REGION": "us-east-1"}
    for k, v in {**base, "CACHE_DIR": str(cache_dir), **env}.items():
        monkeypatch.setenv(f"RESTORA_STORAGE__{k}", v)


def bucket_stores(endpoint: str, cache_dir: Path, *buckets: str) -> dict[str, S3Store]:
    """Test-side stores on ``buckets`` of ``endpoint`` (created if missing), by bucket name."""
    base = settings_for(endpoint, cache_dir)
    stores = {b: S3Store.from_settings(base.model_copy(update={"bucket": b})) for b in buckets}
    for st in stores.values():
        st.ensure_bucket()
    return stores


@pytest.fixture
def s3_settings(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> StorageSettings:
    """Settings for a fresh bucket on the session server."""
    return settings_for(s3_endpoint, tmp_path_factory.mktemp("cache"), bucket=f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def s3_store(s3_settings: StorageSettings) -> S3Store:
    """An :class:`S3Store` on a fresh, empty bucket."""
    store = S3Store.from_settings(s3_settings)
    store.ensure_bucket()
    return store
