"""What every task shares in one process: settings, the asset store, the inference backend, retry policy."""

from __future__ import annotations

import atexit
import threading
from typing import Any

from prefect.tasks import exponential_backoff

from restora.errors import TransientServiceError
from restora.inference import InferenceBackend
from restora.settings import Settings, get_settings
from restora.storage import AssetStore, LocalStore
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
