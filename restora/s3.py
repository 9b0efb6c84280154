"""The S3/MinIO asset store (``minio`` SDK) and ``s3://`` / ``file://`` URI helpers.

:class:`S3Store` implements :class:`restora.storage.AssetStore` on one bucket, optionally under a
key prefix, with the same ``/``-separated keys and layout as :class:`~restora.storage.LocalStore`.

Atomicity. One S3 PUT is already atomic per object: a reader sees the old object or the complete
new one, and a multipart upload becomes visible only when it is completed. :meth:`S3Store.put_file`
nevertheless uploads to a temporary key under ``<prefix>/.restora-tmp/`` and then server-side copies
it to the final key and deletes the temporary one, so an output is *published* in one step as in
ARCHITECTURE.md section 4 (upload, then publish). The price is a server-side copy of the bytes;
abandoned temporary keys (a crashed worker) can be expired by a bucket lifecycle rule on
``.restora-tmp/``. Small objects (:meth:`S3Store.put_bytes`) are written with one PUT.

Errors. Connection failures, timeouts, throttling and 5xx answers become
:class:`~restora.errors.TransientServiceError` (tasks retry them); 4xx answers (``NoSuchKey``,
``AccessDenied``, ``NoSuchBucket``) and bad keys become :class:`~restora.errors.StorageError`.

Telemetry. ``storage.put`` / ``storage.get`` spans carry ``restora.key``, ``restora.bytes``,
``restora.store`` and ``restora.uri`` (an ``s3://`` URI through :func:`restora.telemetry.safe_attr`);
never the endpoint's credentials or a presigned URL.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from restora import telemetry
from restora.errors import InputError, StorageError, TransientServiceError
from restora.settings import StorageSettings
from restora.storage import validate_key

T = TypeVar("T")

TMP_DIR = ".restora-tmp"
"""Key segment under the store prefix that holds in-flight uploads (hidden from :meth:`S3Store.list`)."""

MAX_KEY_BYTES = 1024
"""S3's limit on an object name (UTF-8 bytes, prefix included)."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed", "Throttling"}
)
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it is a valid S3 bucket name; raise :class:`InputError` otherwise.

    Rules: 3-63 characters of lowercase letters, digits, ``.`` and ``-``; starts and ends with a
    letter or digit; no ``..``; not an IPv4 address.
    """
    if not _BUCKET.match(bucket) or ".." in bucket or _IP.match(bucket):
        raise InputError(f"invalid bucket name {bucket!r}")
    return bucket


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    The key is percent-decoded and must pass :func:`restora.storage.validate_key` (no ``..``, no
    empty segments, no control characters, at most 1024 UTF-8 bytes).

    Args:
        uri: an ``s3://`` URI without credentials, query or fragment.

    Returns:
        ``(bucket, key)``.

    Raises:
        InputError: not an ``s3://`` URI, or a bad bucket or key.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise InputError(f"not an s3:// URI: {telemetry.safe_attr(uri)!r}")
    if parts.username is not None or parts.password is not None or parts.port is not None:
        raise InputError("s3:// URIs must not carry credentials or a port")
    if parts.query or parts.fragment:
        raise InputError(f"s3:// URI must not have a query or fragment: {telemetry.safe_attr(uri)!r}")
    bucket = validate_bucket(parts.netloc)
    key = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    return bucket, _checked_key(key, InputError)


def file_uri_path(uri: str) -> Path:
    """The local path of a ``file://`` URI (``file:///abs/path`` or ``file://localhost/abs/path``).

    Raises:
        InputError: not a ``file://`` URI, a remote host, a relative path, ``..`` segments or
            control characters.
    """
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise InputError(f"not a file:// URI: {telemetry.safe_attr(uri)!r}")
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InputError(f"file:// URI must name a local absolute path: {telemetry.safe_attr(uri)!r}")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise InputError(f"file:// URI must name an absolute path: {uri!r}")
    try:
        validate_key(path.lstrip("/"))
    except StorageError as exc:
        raise InputError(f"invalid file:// URI {uri!r}") from exc
    return Path(path)


def _checked_key(key: str, error: type[Exception] = StorageError) -> str:
    try:
        validate_key(key)
    except StorageError as exc:
        raise error(str(exc)) from exc
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise error(f"store key longer than {MAX_KEY_BYTES} bytes: {key[:64]!r}...")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """What :meth:`S3Store.stat` reports about one object."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None
    content_type: str | None


def _is_missing(exc: S3Error) -> bool:
    return exc.code in _MISSING_CODES


def _map_error(exc: BaseException, what: str) -> Exception:
    """The Restora error for a minio / urllib3 exception (the caller raises it ``from exc``)."""
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        if status >= 500 or status in (408, 429) or exc.code in _TRANSIENT_CODES:
            return TransientServiceError(f"S3 {what}: {exc.code} (HTTP {status}), retry later")
        return StorageError(f"S3 {what}: {exc.code}: {exc.message}")
    if isinstance(exc, ServerError):
        return TransientServiceError(f"S3 {what}: server error HTTP {exc.status_code}")
    if isinstance(exc, InvalidResponseError):
        return TransientServiceError(f"S3 {what}: unexpected response from server ({type(exc).__name__})")
    if isinstance(exc, (Urllib3HTTPError, ConnectionError, TimeoutError)):
        return TransientServiceError(f"S3 {what}: endpoint unreachable or timed out ({type(exc).__name__})")
    if isinstance(exc, MinioException):
        return StorageError(f"S3 {what}: {exc}")
    return StorageError(f"S3 {what}: {type(exc).__name__}: {exc}")


_MAPPED: tuple[type[BaseException], ...] = (MinioException, Urllib3HTTPError, ConnectionError, TimeoutError)


class S3Store:
    """Asset store on an S3 bucket (MinIO in production) through the ``minio`` SDK.

    Args:
        client: a configured :class:`minio.Minio` client.
        bucket: the bucket holding the asset layout.
        prefix: optional key prefix inside the bucket (``""`` = bucket root).
        cache_dir: where :meth:`local_path` keeps downloaded copies (keyed by object and ETag).
        part_size: multipart part size in bytes (S3 minimum 5 MiB); larger files upload in parts.
    """

    def __init__(
        self,
        client: Minio,
        bucket: str,
        prefix: str = "",
        cache_dir: Path | None = None,
        part_size: int = 16 << 20,
    ) -> None:
        if part_size < 5 << 20 or part_size > 5 << 30:
            raise StorageError(f"part_size must be 5 MiB..5 GiB, got {part_size}")
        self.client = client
        self.bucket = validate_bucket(bucket)
        self.prefix = _checked_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.cache_dir = Path(cache_dir or Path.home() / ".restora" / "cache").expanduser()
        self.part_size = part_size

    @classmethod
    def from_settings(cls, s: StorageSettings) -> S3Store:
        """A store for ``s.s3_endpoint`` with explicit timeouts and bounded HTTP retries.

        Raises:
            ConfigError: no endpoint, or bad credentials settings (see ``StorageSettings.credentials``).
        """
        from restora.errors import ConfigError

        if not s.s3_endpoint or not s.endpoint_host:
            raise ConfigError("storage.s3_endpoint is not set")
        creds = s.credentials()
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=s.timeout_s, read=s.timeout_s),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=s.retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], raise_on_status=False
            ),
        )
        client = Minio(
            s.endpoint_host,
            access_key=creds[0].get_secret_value() if creds else None,
            secret_key=creds[1].get_secret_value() if creds else None,
            secure=s.secure,
            region=s.region,
            http_client=http,
        )
        return cls(client, s.bucket, s.prefix, s.cache_dir / "s3", s.part_size_mb << 20)

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # -- keys ---------------------------------------------------------------------------------------

    def _obj(self, key: str) -> str:
        key = _checked_key(key)
        name = f"{self.prefix}/{key}" if self.prefix else key
        if len(name.encode("utf-8")) > MAX_KEY_BYTES:
            raise StorageError(f"object name longer than {MAX_KEY_BYTES} bytes: {name[:64]!r}...")
        return name

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._obj(key)}"

    @contextlib.contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Translate minio/urllib3 errors into Restora's error tree."""
        try:
            yield
        except _MAPPED as exc:
            raise _map_error(exc, what) from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._calls(what):
            return fn()

    def _span_attrs(self, key: str, size: int | None) -> dict[str, object]:
        return {
            "restora.key": key,
            "restora.bytes": size,
            "restora.store": "s3",
            "restora.uri": telemetry.safe_attr(self.uri(key)),
        }

    # -- bucket ---------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (deployments usually create it beforehand)."""
        with self._calls(f"create bucket {self.bucket}"):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

    # -- writes ---------------------------------------------------------------------------------

    def put_file(self, key: str, src: Path) -> None:
        """Upload ``src`` (multipart above ``part_size``) to a temporary key, then publish it as ``key``.

        Raises:
            StorageError: ``src`` is not a file, a bad key, or the server refused (4xx).
            TransientServiceError: connection failure, timeout or 5xx.
        """
        obj = self._obj(key)
        src = Path(src)
        if not src.is_file():
            raise StorageError(f"cannot store {src}: not a file")
        size = src.stat().st_size
        tmp = self._tmp_name(key)
        with telemetry.span("storage.put", **self._span_attrs(key, size)):
            try:
                with self._calls(f"upload {obj}"):
                    self.client.fput_object(self.bucket, tmp, str(src), part_size=self.part_size)
                    self.client.copy_object(self.bucket, obj, CopySource(self.bucket, tmp))
            finally:
                self._remove_quietly(tmp)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store small data under ``key`` with one PUT (atomic per object)."""
        obj = self._obj(key)
        with telemetry.span("storage.put", **self._span_attrs(key, len(data))), self._calls(f"put {obj}"):
            self.client.put_object(self.bucket, obj, io.BytesIO(data), len(data), part_size=self.part_size)

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy ``src_key`` to ``dst_key`` (multipart copy above 5 GiB)."""
        src, dst = self._obj(src_key), self._obj(dst_key)
        self._call(
            f"copy {src} to {dst}", lambda: self.client.copy_object(self.bucket, dst, CopySource(self.bucket, src))
        )

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if absent)."""
        obj = self._obj(key)
        self._call(f"delete {obj}", lambda: self.client.remove_object(self.bucket, obj))

    def _tmp_name(self, key: str) -> str:
        name = f"{TMP_DIR}/{uuid.uuid4().hex}/{PurePosixPath(key).name}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _remove_quietly(self, name: str) -> None:
        # a leftover temporary key is harmless; a lifecycle rule on .restora-tmp/ expires it
        with contextlib.suppress(*_MAPPED):
            self.client.remove_object(self.bucket, name)

    # -- reads ----------------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size, ETag and time of ``key``.

        Raises:
            StorageError: no such object, or access denied.
            TransientServiceError: connection failure, timeout or 5xx.
        """
        obj = self._obj(key)
        st = self._call(f"stat {obj}", lambda: self.client.stat_object(self.bucket, obj))
        return ObjectInfo(
            key=key,
            size=int(st.size or 0),
            etag=(st.etag or "").strip('"'),
            last_modified=st.last_modified,
            content_type=st.content_type,
        )

    def exists(self, key: str) -> bool:
        obj = self._obj(key)
        try:
            self.client.stat_object(self.bucket, obj)
        except S3Error as exc:
            if _is_missing(exc) or getattr(exc.response, "status", 0) == 404:
                return False
            raise _map_error(exc, f"stat {obj}") from exc
        except _MAPPED as exc:
            raise _map_error(exc, f"stat {obj}") from exc
        return True

    def get_file(self, key: str, dst: Path) -> None:
        """Stream ``key`` into ``dst`` (a temporary file beside it, renamed when complete)."""
        obj = self._obj(key)
        with telemetry.span("storage.get", **self._span_attrs(key, None)) as sp:
            size = self._download(obj, Path(dst))
            sp.set_attribute("restora.bytes", size)

    def _download(self, obj: str, dst: Path) -> int:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f, self._calls(f"get {obj}"):
                resp = self.client.get_object(self.bucket, obj)
                try:
                    for chunk in resp.stream(1 << 20):
                        f.write(chunk)
                        size += len(chunk)
                finally:
                    resp.close()
                    resp.release_conn()
            os.replace(tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def get_bytes(self, key: str) -> bytes:
        obj = self._obj(key)
        with telemetry.span("storage.get", **self._span_attrs(key, None)) as sp, self._calls(f"get {obj}"):
            resp = self.client.get_object(self.bucket, obj)
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            sp.set_attribute("restora.bytes", len(data))
            return data

    def local_path(self, key: str) -> Path:
        """A cached local copy of ``key`` for file readers (PyAV), downloaded when the ETag changed.

        The cache path is ``<cache_dir>/<sha256(bucket/object)[:32]>/<etag><suffix>`` (the suffix is
        kept for readers that guess the format from it). Old versions are removed when a new ETag
        is fetched; nothing else evicts the cache.
        """
        info = self.stat(key)
        obj = self._obj(key)
        folder = self.cache_dir / hashlib.sha256(f"{self.bucket}/{obj}".encode()).hexdigest()[:32]
        safe_etag = re.sub(r"[^0-9A-Za-z-]", "_", info.etag) or "noetag"
        path = folder / f"{safe_etag}{PurePosixPath(key).suffix}"
        if path.is_file() and path.stat().st_size == info.size:
            return path
        with telemetry.span("storage.get", **self._span_attrs(key, info.size)):
            self._download(obj, path)
        for old in folder.iterdir():
            if old != path and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        return path

    def list(self, prefix: str) -> list[str]:
        """Keys under the folder ``prefix`` (``""`` = everything), sorted; temporary uploads excluded."""
        return [o.key for o in self.list_info(prefix)]

    def list_info(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Like :meth:`list`, with each object's size, ETag and time (one listing, no per-object stat)."""
        rel = _checked_key(prefix.rstrip("/")) if prefix.strip("/") else ""
        parts = [p for p in (self.prefix, rel) if p]
        name_prefix = "/".join(parts) + "/" if parts else ""
        tmp = f"{self.prefix}/{TMP_DIR}/" if self.prefix else f"{TMP_DIR}/"

        def run() -> builtins.list[ObjectInfo]:
            objs = self.client.list_objects(self.bucket, prefix=name_prefix, recursive=True)
            return sorted(
                (
                    ObjectInfo(
                        key=self._key(o.object_name),
                        size=int(o.size or 0),
                        etag=(o.etag or "").strip('"'),
                        last_modified=o.last_modified,
                        content_type=None,
                    )
                    for o in objs
                    if o.object_name and not o.is_dir and not o.object_name.startswith(tmp)
                ),
                key=lambda o: o.key,
            )

        return self._call(f"list {name_prefix or '/'}", run)

    def presigned_get(self, key: str, expires: timedelta | float = timedelta(hours=1)) -> str:
        """A presigned GET URL for ``key``, valid for ``expires`` (1 second to 7 days).

        The URL is a bearer credential: hand it to the consumer, never log it or put it in a span.
        """
        obj = self._obj(key)
        ttl = expires if isinstance(expires, timedelta) else timedelta(seconds=expires)
        if not timedelta(seconds=1) <= ttl <= timedelta(days=7):
            raise StorageError(f"presigned URL lifetime must be 1 s to 7 days, got {ttl}")
        return self._call(f"presign {obj}", lambda: self.client.presigned_get_object(self.bucket, obj, expires=ttl))
