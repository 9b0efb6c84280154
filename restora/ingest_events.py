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

:class:`IngestDispatcher` is what both ingest paths share: the webhook receiver
(``restora.ingest_listener``) and the polling flow (``flows/on_ingest.py``, :func:`poll_new`) hand it
created objects; it drops those already seen, picks each one's rule, builds the
:class:`~restora.spec.RestoreSpec` (:func:`plan_spec`) and calls a ``start`` callback, which in the
flows starts a ``restore-video`` deployment run with the event identity as idempotency key.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from restora.containers import OUTPUT_CONTAINERS
from restora.errors import ConfigError, InputError, StorageError
from restora.settings import IngestRule
from restora.spec import RestoreSpec
from restora.storage import AssetStore, validate_key

if TYPE_CHECKING:
    from restora.s3 import S3Store

log = logging.getLogger(__name__)

# An input in a container Restora writes (MP4, MOV, Matroska, MXF, MPEG-TS, ...) is restored into
# the same one; others (.avi, .mpg, ...) into Matroska, which holds any audio or subtitle codec.
_OUTPUT_EXTS = tuple(OUTPUT_CONTAINERS)


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

    def unseen(self, events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        """``events`` not recorded yet, in order, duplicates within ``events`` dropped (records nothing)."""
        return self._fresh(self._load(), events)

    @staticmethod
    def _fresh(items: Iterable[str], events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        seen = set(items)
        out = []
        for e in events:
            if e.identity not in seen:
                seen.add(e.identity)
                out.append(e)
        return out

    def add_new(self, events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        """Record ``events`` and return those not seen before (in order, duplicates within the batch dropped)."""
        items = self._load()
        new = self._fresh(items, events)
        if new:
            items += [e.identity for e in new]
            self.store.put_bytes(self.key, json.dumps(items[-self.max_items :]).encode())
        return new


def output_uri(event: ObjectCreated, rule: IngestRule, default_bucket: str) -> str:
    """Where the restored master of ``event`` goes: ``s3://<out bucket>/<preset>/<key below prefix>``.

    The name keeps the source's folders below the rule's prefix and stem and adds ``.x<scale>``;
    the container stays the source's if Restora writes it, else Matroska. Example: key
    ``incoming/show/ep1.mp4``, prefix ``incoming/``, preset ``fidelity``, scale 2 ->
    ``s3://masters/fidelity/show/ep1.x2.mp4``.

    Raises:
        ConfigError: the output would land under the rule's own bucket and prefix (it would
            trigger ingest again, forever).
    """
    bucket = rule.output_bucket or default_bucket
    rel = PurePosixPath(event.key[len(rule.prefix) :].lstrip("/") or PurePosixPath(event.key).name)
    ext = rel.suffix.lower() if rel.suffix.lower() in _OUTPUT_EXTS else ".mkv"
    key = validate_key(f"{rule.preset}/{rel.with_suffix('')}.x{rule.scale}{ext}")
    if bucket == rule.bucket and key.startswith(rule.prefix):
        raise ConfigError(
            f"ingest rule for s3://{rule.bucket}/{rule.prefix} writes its outputs under its own prefix "
            "(each output would start another run): set output_bucket or a narrower prefix"
        )
    return f"s3://{bucket}/{key}"


def plan_spec(event: ObjectCreated, rule: IngestRule, default_bucket: str) -> RestoreSpec:
    """The ``restore-video`` parameters for one created object under ``rule``."""
    output = output_uri(event, rule, default_bucket)
    return RestoreSpec.model_validate(
        {
            "input": f"s3://{event.bucket}/{event.key}",
            "output": output,
            "preset": rule.preset,
            "scale": rule.scale,
            "field_rate": rule.field_rate,
            "reinterlace": rule.reinterlace,
            "mxf_codec": rule.mxf_codec if output.lower().endswith(".mxf") else None,  # other outputs: no MXF codec
        }
    )


StartRun = Callable[[RestoreSpec, str], str]
"""``start(spec, idempotency_key) -> run id``: starts one restore run (a Prefect deployment run in the flows)."""


@dataclass
class Dispatch:
    """What :meth:`IngestDispatcher.dispatch` did with one batch of created objects."""

    started: list[dict[str, str]] = field(default_factory=list)  # identity, input, output, run_id
    duplicates: list[str] = field(default_factory=list)  # identities seen before
    unmatched: list[str] = field(default_factory=list)  # identities no rule covers

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "duplicates": self.duplicates, "unmatched": self.unmatched}


class IngestDispatcher:
    """Dedupe created objects, pick their rules and start one restore run per new object.

    A run is recorded as seen only after ``start`` returned, so a failure to start (Prefect API
    down) leaves the event to be delivered again; ``start`` gets the event identity as an
    idempotency key, so a crash between starting and recording cannot start a second run either.
    One dispatcher serialises its batches (a lock), so concurrent deliveries of the same event
    start one run.
    """

    def __init__(self, seen: SeenEvents, rules: Sequence[IngestRule], default_bucket: str, start: StartRun) -> None:
        self.seen, self.rules, self.default_bucket, self.start = seen, list(rules), default_bucket, start
        self._lock = threading.Lock()

    def dispatch(self, events: Sequence[ObjectCreated]) -> Dispatch:
        """Start runs for the new events of one batch.

        Raises:
            ConfigError: a matching rule is unusable (unknown preset, output under its own prefix).
            Whatever ``start`` raises (TransientServiceError when the orchestrator is unreachable).
        """
        out = Dispatch()
        with self._lock:
            fresh = self.seen.unseen(events)
            first = {e.identity for e in fresh}  # each fresh identity once; every other occurrence is a duplicate
            for e in events:
                if e.identity in first:
                    first.discard(e.identity)
                else:
                    out.duplicates.append(e.identity)
            for e in fresh:
                rule = select_rule(e, self.rules)
                if rule is None:
                    log.warning("ingest: no rule covers s3://%s/%s; ignored", e.bucket, e.key)
                    out.unmatched.append(e.identity)
                    continue
                spec = plan_spec(e, rule, self.default_bucket)
                run_id = self.start(spec, e.identity)
                self.seen.add_new([e])
                out.started.append(
                    {"identity": e.identity, "input": spec.input, "output": spec.output, "run_id": run_id}
                )
        return out


class Watermarks:
    """Per bucket/prefix, the newest object time a poll has seen, kept as JSON in the asset store."""

    def __init__(self, store: AssetStore, key: str = "ingest/watermarks.json") -> None:
        self.store, self.key = store, validate_key(key)

    def load(self) -> dict[str, datetime]:
        if not self.store.exists(self.key):
            return {}
        try:
            raw = json.loads(self.store.get_bytes(self.key))
            return {k: datetime.fromisoformat(v) for k, v in raw.items()}
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            raise StorageError(f"corrupt watermarks {self.key!r}: {exc}") from exc

    def save(self, marks: Mapping[str, datetime]) -> None:
        self.store.put_bytes(self.key, json.dumps({k: v.isoformat() for k, v in sorted(marks.items())}).encode())


def poll_new(
    source: S3Store, rule: IngestRule, since: datetime | None, lookback: timedelta = timedelta(hours=1)
) -> tuple[list[ObjectCreated], datetime | None]:
    """Objects under ``rule``'s prefix modified at or after ``since - lookback`` (oldest first), and the new watermark.

    S3 listings cannot filter by time, so this lists the prefix and filters; ``lookback`` covers
    objects whose time is older than their arrival (a multipart upload is dated when it started)
    and clock skew; :class:`SeenEvents` drops what an earlier poll already started.

    Args:
        source: an S3 store on ``rule.bucket`` (no store prefix).
        since: the previous watermark; None = everything under the prefix.
    """
    folder = rule.prefix.rsplit("/", 1)[0] if "/" in rule.prefix else ""
    infos = [o for o in source.list_info(folder) if o.key.startswith(rule.prefix)]
    cutoff = None if since is None else since - lookback
    new = [o for o in infos if cutoff is None or o.last_modified is None or o.last_modified >= cutoff]
    new.sort(key=lambda o: (o.last_modified.timestamp() if o.last_modified else 0.0, o.key))
    times = [o.last_modified for o in infos if o.last_modified is not None]
    mark = max([*times, *([since] if since else [])], default=None)
    events = [
        ObjectCreated(bucket=rule.bucket, key=o.key, etag=o.etag, size=o.size, event_name="poll:ObjectCreated")
        for o in new
    ]
    return events, mark
