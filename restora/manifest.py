"""``assets/<asset_id>/manifest.json``: what exists for one asset and how it was produced.

The asset layout (ARCHITECTURE.md section 4)::

    assets/<asset_id>/source/<name>                  the ingested source, byte for byte
    assets/<asset_id>/index.json, thumbs.npz         frame index and shot-detection thumbnails
    assets/<asset_id>/chunks/<digest>/<start>-<stop>.mov
                                                     restored chunks; <digest> hashes the stages
                                                     with the options effective for the chunk's
                                                     shot, the model versions and the encoding
    assets/<asset_id>/outputs/<run_id>/<name>, report.json   staged outputs of each run
    assets/<asset_id>/manifest.json                  this file, written last by ``publish``

The manifest lists every published output with its destination, preset, the exact stage specs
(per-shot overrides included), the models and versions that ran, encoding parameters and the
chunks it was assembled from (each with its key and whether it was reused). It is written after
the output is in place, so an output listed in the manifest is complete. Read-modify-write: two
runs publishing outputs of the same asset at the same instant may lose one entry (never an
output); the per-run report next to each output remains authoritative.
"""

from __future__ import annotations

import json
import time
from typing import Any

from restora.errors import StorageError
from restora.storage import AssetStore

MANIFEST_VERSION = 1
MAX_OUTPUTS = 200  # newest entries kept; older ones stay described by their reports


def manifest_key(asset_id: str) -> str:
    """Store key of an asset's manifest."""
    return f"assets/{asset_id}/manifest.json"


def load(store: AssetStore, asset_id: str) -> dict[str, Any] | None:
    """The manifest of ``asset_id``, or None if none was written yet.

    Raises:
        StorageError: the stored manifest is not a manifest.
    """
    key = manifest_key(asset_id)
    if not store.exists(key):
        return None
    try:
        doc = json.loads(store.get_bytes(key))
    except json.JSONDecodeError as exc:
        raise StorageError(f"corrupt manifest {key!r}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("restora_manifest") != MANIFEST_VERSION:
        raise StorageError(f"corrupt manifest {key!r}: not a version {MANIFEST_VERSION} Restora manifest")
    return doc


def output_entry(report: dict[str, Any], uri: str, staged_key: str, report_key: str) -> dict[str, Any]:
    """The manifest entry of one published output, from its run report."""
    prov = report["provenance"]
    return {
        "uri": uri,
        "run_id": report["run_id"],
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "preset": report["preset"],
        "scale": report["scale"],
        "stages": prov["spec"],
        "models": [{k: s[k] for k in ("type", "model", "model_version", "backend") if k in s} for s in prov["stages"]],
        "encode": prov["encode"],
        "staged_key": staged_key,
        "report_key": report_key,
        "chunks": [{k: c[k] for k in ("key", "shot", "start", "stop", "reused")} for c in report["chunks"]],
        "video": {k: report["output"]["probe"]["video"][k] for k in ("width", "height", "frames", "codec")},
    }


def record_output(store: AssetStore, report: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """Add ``entry`` to the manifest of the report's asset (creating the manifest) and store it."""
    inp = report["input"]
    asset_id = inp["asset_id"]
    doc = load(store, asset_id) or {
        "restora_manifest": MANIFEST_VERSION,
        "asset_id": asset_id,
        "sha256": inp["sha256"],
        "outputs": [],
    }
    video = inp["probe"]["video"]
    doc["source"] = {
        "uri": inp["uri"],
        "key": inp["source_key"],
        "video": {k: video[k] for k in ("codec", "width", "height", "frames") if k in video},
    }
    kept = [o for o in doc["outputs"] if o["uri"] != entry["uri"]][-(MAX_OUTPUTS - 1) :]
    doc["outputs"] = [*kept, entry]
    doc["updated_at"] = entry["published_at"]
    store.put_bytes(manifest_key(asset_id), json.dumps(doc, indent=2).encode())
    return doc
