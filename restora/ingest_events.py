"""MinIO bucket notifications: parse ``s3:ObjectCreated:*`` events, dedupe them, pick a preset.

A MinIO webhook target POSTs one JSON document per event (AWS S3 event format, version 2.x)::

    {"EventName": "s3:ObjectCreated:Put", "Key": "ingest/incoming/clip+one.mp4",
     "Records": [{"eventName": "s3:ObjectCreated:Put",
                  "s3": {"bucket": {"name": "ingest"},
                         "object": {"key": "incoming%2Fclip+one.mp4", "size": 1024, "eTag": "..."}}}]}

Object keys in records are URL-encoded (``+`` for space), as in AWS. Only ``ObjectCreated`` records
become :class:`ObjectCreated`; other event kinds are ignored. Deduplication is by bucket, key and
ETag (:class:`SeenEvents`), so a re-delivered notification does not start a second run while a
re-upload with new content does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from restora.errors import InputError, StorageError
from restora.settings import IngestRule
from restora.storage import AssetStore, validate_key


@dataclass(frozen=True)
class ObjectCreated:
    """One created object from a notification."""

    bucket: str
    key: str
    etag: str
    size: int
    event_name: str

    @property
    def identity(self) -> str:
        """The dedupe identity ``bucket/key@etag``."""
        return f"{self.bucket}/{self.key}@{self.etag}"


def parse_event(body: bytes | str | Mapping[str, Any]) -> list[ObjectCreated]:
    """The ``s3:ObjectCreated:*`` records of one notification body.

    Args:
        body: the webhook's JSON body (bytes, text, or already-decoded mapping).

    Returns:
        One :class:`ObjectCreated` per created-object record (possibly none).

    Raises:
        InputError: not JSON, no ``Records`` list, or a created-object record without a valid
            bucket, key, ETag or size.
    """
    if isinstance(body, (bytes, str)):
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"bucket notification is not JSON: {exc}") from exc
    else:
        doc = body
    if not isinstance(doc, Mapping) or not isinstance(doc.get("Records"), list):
        raise InputError("bucket notification has no Records list")
    out = []
    for i, rec in enumerate(doc["Records"]):
        if not isinstance(rec, Mapping):
            raise InputError(f"notification record {i} is not an object")
        name = rec.get("eventName")
        if not isinstance(name, str):
            raise InputError(f"notification record {i} has no eventName")
        if not name.startswith("s3:ObjectCreated:"):
            continue
        out.append(_created(rec, i, name))
    return out


def _created(rec: Mapping[str, Any], i: int, name: str) -> ObjectCreated:
    s3 = rec.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, Mapping) else None
    obj = s3.get("object") if isinstance(s3, Mapping) else None
    if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
        raise InputError(f"notification record {i} has no s3.bucket / s3.object")
    bname, raw_key, etag, size = bucket.get("name"), obj.get("key"), obj.get("eTag"), obj.get("size")
    if not isinstance(bname, str) or not bname:
        raise InputError(f"notification record {i} has no bucket name")
    if not isinstance(raw_key, str) or not raw_key:
        raise InputError(f"notification record {i} has no object key")
    key = unquote_plus(raw_key)
    try:
        validate_key(key)
    except StorageError as exc:
        raise InputError(f"notification record {i}: {exc}") from exc
    if not isinstance(etag, str) or not etag.strip('"'):
        raise InputError(f"notification record {i} ({key!r}) has no eTag")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InputError(f"notification record {i} ({key!r}) has no valid size")
    return ObjectCreated(bucket=bname, key=key, etag=etag.strip('"'), size=size, event_name=name)


def select_rule(event: ObjectCreated, rules: Sequence[IngestRule]) -> IngestRule | None:
    """The rule for ``event``: same bucket, key under its prefix; the longest prefix wins, then the first."""
    best: IngestRule | None = None
    for r in rules:
        if (
            r.bucket == event.bucket
            and event.key.startswith(r.prefix)
            and (best is None or len(r.prefix) > len(best.prefix))
        ):
            best = r
    return best


class SeenEvents:
    """A small persistent set of processed event identities, kept as JSON in the asset store.

    Read-modify-write without locking: one receiver process per store (duplicates from a race
    between two receivers are possible, never lost events). The oldest identities are dropped
    beyond ``max_items``.
    """

    def __init__(self, store: AssetStore, key: str = "ingest/seen.json", max_items: int = 10000) -> None:
        self.store, self.key, self.max_items = store, validate_key(key), max_items

    def _load(self) -> list[str]:
        if not self.store.exists(self.key):
            return []
        try:
            items = json.loads(self.store.get_bytes(self.key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"corrupt dedupe set {self.key!r}: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise StorageError(f"corrupt dedupe set {self.key!r}: expected a list of strings")
        return items

    def __contains__(self, event: object) -> bool:
        return isinstance(event, ObjectCreated) and event.identity in set(self._load())

    def add_new(self, events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        """Record ``events`` and return those not seen before (in order, duplicates within the batch dropped)."""
        items = self._load()
        seen = set(items)
        new = []
        for e in events:
            if e.identity not in seen:
                seen.add(e.identity)
                items.append(e.identity)
                new.append(e)
        if new:
            self.store.put_bytes(self.key, json.dumps(items[-self.max_items :]).encode())
        return new
