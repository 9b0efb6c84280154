"""What every task shares in one process: settings, the asset store, the inference backend, retry policy."""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Any

from prefect.tasks import exponential_backoff

from restora.errors import ConfigError, InputError, TransientServiceError
from restora.inference import InferenceBackend
from restora.s3 import S3Store, file_uri_path, parse_uri
from restora.settings import Settings, get_settings
from restora.storage import AssetStore, LocalStore, publish_file
from serving.backends import make_backend

_lock = threading.Lock()
_backends: dict[tuple[Any, ...], InferenceBackend] = {}


def settings() -> Settings:
    """Current settings (read from the environment)."""
    return get_settings()


def store(s: Settings | None = None) -> AssetStore:
    """The configured asset store: S3/MinIO when ``storage.s3_endpoint`` is set, else the local filesystem."""
    s = s or settings()
    if s.storage.s3_endpoint:
        from restora.s3 import S3Store

        return S3Store.from_settings(s.storage)
    return LocalStore(s.storage.root)


def bucket_store(bucket: str, s: Settings | None = None) -> S3Store:
    """An S3 store on ``bucket`` of the configured endpoint (for ``s3://`` inputs and outputs)."""
    s = s or settings()
    if not s.storage.s3_endpoint:
        raise ConfigError("s3:// URIs need RESTORA_STORAGE__S3_ENDPOINT")
    return S3Store.from_settings(s.storage.model_copy(update={"bucket": bucket, "prefix": ""}))


def fetch_input(uri: str) -> Path:
    """A local readable path for an input given as a path, ``file://`` or ``s3://`` URI."""
    if uri.startswith("s3://"):
        bucket, key = parse_uri(uri)
        return bucket_store(bucket).local_path(key)
    if uri.startswith("file://"):
        return file_uri_path(uri)
    if "://" in uri:
        raise InputError(f"unsupported input URI scheme: {uri.split('://')[0]}:// (use a path, file:// or s3://)")
    return Path(uri)


def deliver(src: Path, uri: str) -> str:
    """Publish a local file at a path, ``file://`` or ``s3://`` URI atomically; returns where it went."""
    if uri.startswith("s3://"):
        bucket, key = parse_uri(uri)
        bucket_store(bucket).put_file(key, src)  # temp key + server-side copy: readers never see a part
        return uri
    dst = file_uri_path(uri) if uri.startswith("file://") else Path(uri)
    publish_file(src, dst)
    return str(dst)


def backend(s: Settings | None = None) -> InferenceBackend:
    """The configured inference backend, one per configuration per process."""
    s = s or settings()
    key = (s.triton.url, s.triton.protocol, str(s.models.repository), s.models.threads, s.triton.max_batch)
    with _lock:
        if key not in _backends:
            _backends[key] = make_backend(s)
        return _backends[key]


@atexit.register
def close_backends() -> None:
    """Close cached backends (gRPC channels) before the interpreter tears modules down."""
    with _lock:
        for b in _backends.values():
            b.close()
        _backends.clear()


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: retry only :class:`TransientServiceError` (and its subclasses)."""
    try:
        state.result()
    except TransientServiceError:
        return True
    except BaseException:
        return False
    return False


RETRY: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": only_transient,
}
