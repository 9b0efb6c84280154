"""The asset store: one interface, a local-filesystem implementation (embedded default).

Keys are ``/``-separated relative paths. Layout (ARCHITECTURE.md section 4)::

    assets/<asset_id>/source/<file name>
    assets/<asset_id>/shots.json
    assets/<asset_id>/chunks/<spec digest>/<shot>_<chunk>.mov
    assets/<asset_id>/outputs/<run id>/...
    assets/<asset_id>/manifest.json

``asset_id`` is the first 16 hex digits of the source's sha256.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from restora import telemetry
from restora.errors import StorageError

_BAD_KEY = re.compile(r"[\x00-\x1f\x7f\\]")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key; raise :class:`StorageError` otherwise.

    Rejected: empty keys, absolute paths, ``.``/``..`` segments, empty segments, control characters
    and backslashes.
    """
    if not key or key.startswith("/") or _BAD_KEY.search(key):
        raise StorageError(f"invalid store key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid store key {key!r}")
    return key


def asset_id_for(sha256: str) -> str:
    """Asset id from a content hash."""
    return sha256[:16]


@runtime_checkable
class AssetStore(Protocol):
    """Where assets live. Implementations: :class:`LocalStore` (S3 in ``restora.s3``, issue 4)."""

    def uri(self, key: str) -> str:
        """A URI for ``key`` (``file://...`` or ``s3://bucket/key``), for reports and logs."""
        ...

    def put_file(self, key: str, src: Path) -> None:
        """Store a local file under ``key`` (atomically: readers never see a partial object)."""
        ...

    def get_file(self, key: str, dst: Path) -> None:
        """Copy the object ``key`` to the local path ``dst``."""
        ...

    def local_path(self, key: str) -> Path:
        """A local, readable path holding ``key``'s bytes (the file itself, or a cached copy)."""
        ...

    def exists(self, key: str) -> bool:
        """True if ``key`` exists."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store small data (JSON) under ``key`` atomically."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Read a small object."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if absent)."""
        ...


class LocalStore:
    """Asset store on the local filesystem under ``root``; writes are temp-file + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def _atomic_write(self, key: str, write: object) -> None:
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(write, bytes):
                    f.write(write)
                else:
                    assert isinstance(write, Path)
                    with write.open("rb") as src:
                        shutil.copyfileobj(src, f, 1 << 20)
            os.replace(tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, src: Path) -> None:
        if not src.is_file():
            raise StorageError(f"cannot store {src}: not a file")
        if src.resolve() == self._path(key):
            return
        with telemetry.span(
            "storage.put", **{"restora.key": key, "restora.bytes": src.stat().st_size, "restora.store": "local"}
        ):
            self._atomic_write(key, Path(src))

    def get_file(self, key: str, dst: Path) -> None:
        src = self.local_path(key)
        with telemetry.span(
            "storage.get", **{"restora.key": key, "restora.bytes": src.stat().st_size, "restora.store": "local"}
        ):
            shutil.copyfile(src, dst)

    def local_path(self, key: str) -> Path:
        p = self._path(key)
        if not p.is_file():
            raise StorageError(f"no object {key!r} in {self.root}")
        return p

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put_bytes(self, key: str, data: bytes) -> None:
        with telemetry.span(
            "storage.put", **{"restora.key": key, "restora.bytes": len(data), "restora.store": "local"}
        ):
            self._atomic_write(key, data)

    def get_bytes(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        base = self.root / validate_key(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.endswith(".part")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def publish_file(src: Path, dst: Path) -> None:
    """Publish ``src`` as ``dst`` atomically (copy to a hidden temp file beside ``dst``, then rename).

    A reader of ``dst`` sees either nothing, the old file, or the complete new one.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
