"""The asset manifest: creation, update per output, corrupt files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from restora import manifest
from restora.errors import StorageError
from restora.storage import LocalStore


def report(run_id: str, uri: str) -> dict[str, Any]:
    video = {"codec": "h264", "width": 64, "height": 48, "frames": 3}
    return {
        "run_id": run_id,
        "input": {"uri": "in.mp4", "sha256": "ab" * 32, "asset_id": "abababababababab", "source_key": "s",
                  "probe": {"video": video}},
        "output": {"probe": {"video": {**video, "width": 128, "height": 96}}},
        "preset": "fidelity",
        "scale": 2,
        "chunks": [{"key": "k0", "shot": 0, "start": 0, "stop": 3, "reused": False, "frames": 3, "chunk": 0}],
        "provenance": {"spec": [{"type": "sr", "options": {"scale": 2}, "shots": {}}],
                       "stages": [{"type": "sr", "model": "sr_x2", "model_version": "1", "backend": "b", "scale": 2}],
                       "encode": {"crf": 16.0, "x264_preset": "fast"}},
    }  # fmt: skip


def test_record_outputs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert manifest.load(store, "abababababababab") is None
    for run_id, uri in (("r1", "a.mp4"), ("r2", "b.mp4"), ("r3", "a.mp4")):
        rep = report(run_id, uri)
        manifest.record_output(store, rep, manifest.output_entry(rep, uri, f"staged/{run_id}", f"rep/{run_id}"))
    doc = manifest.load(store, "abababababababab")
    assert doc is not None
    assert [(o["uri"], o["run_id"]) for o in doc["outputs"]] == [("b.mp4", "r2"), ("a.mp4", "r3")], (
        "re-published replaces"
    )
    assert doc["outputs"][0]["models"] == [{"type": "sr", "model": "sr_x2", "model_version": "1", "backend": "b"}]
    assert doc["outputs"][0]["video"] == {"width": 128, "height": 96, "frames": 3, "codec": "h264"}
    assert doc["source"]["key"] == "s" and doc["sha256"] == "ab" * 32


@pytest.mark.parametrize("blob", [b"{nope", b"[]", b'{"restora_manifest": 99}'])
def test_corrupt_manifest(tmp_path: Path, blob: bytes) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes(manifest.manifest_key("x" * 16), blob)
    with pytest.raises(StorageError, match="corrupt manifest"):
        manifest.load(store, "x" * 16)
