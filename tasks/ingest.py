"""Task ``ingest``: probe, decode once (frame index, thumbnails, hash), copy the source into the store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from prefect import task

from restora import media, progress, telemetry
from restora.report import AssetRef
from restora.storage import asset_id_for
from tasks import _runtime


def resolve_input(uri: str) -> Path:
    """Local path of an input (``s3://`` inputs are downloaded to the cache)."""
    return _runtime.fetch_input(uri)


@task(name="ingest", tags=["io"], **_runtime.RETRY)
def ingest(input_uri: str, carrier: dict[str, str], field_rate: bool = False) -> AssetRef:
    """Ingest the source; returns a reference (no pixels). With ``field_rate`` an interlaced
    source is restored at one frame per field (:meth:`AssetRef.at_field_rate`); the stored index
    and thumbnails stay the source frames' (``tasks.shots`` maps them to fields)."""
    src = resolve_input(input_uri)
    with telemetry.span("task.ingest", carrier, **{"restora.input": telemetry.safe_attr(input_uri)}) as sp:
        info = media.probe(src)
        index, thumbs, digest = media.scan(src, info)
        if index.captions and not info.video.captions:  # captions that start after the frames probe peeks at
            info = info.model_copy(update={"video": info.video.model_copy(update={"captions": True})})
        st = _runtime.store()
        aid = asset_id_for(digest)
        source_key = f"assets/{aid}/source/{src.name}"
        if not st.exists(source_key):
            st.put_file(source_key, src)
        index_key = f"assets/{aid}/index.json"
        st.put_bytes(
            index_key,
            json.dumps(
                {
                    "pts": index.pts,
                    "time_base": str(index.time_base),
                    "has_pts": index.has_pts,
                    "qp": index.qp,
                    "qp_codec": index.qp_codec,
                    "captions": index.captions,
                }
            ).encode(),
        )
        buf = io.BytesIO()
        np.savez_compressed(buf, thumbs=thumbs)
        thumbs_key = f"assets/{aid}/thumbs.npz"
        st.put_bytes(thumbs_key, buf.getvalue())
        sp.set_attributes(
            {
                "restora.asset_id": aid,
                "restora.frames": len(index),
                "restora.bytes": info.size_bytes,
                "restora.codec": info.video.codec,
                "restora.bit_depth": info.video.bit_depth,
                "restora.dynamic_range": info.video.hdr.format if info.video.hdr else "sdr",
                "restora.field_order": info.video.field_order,
            }
        )
        asset = AssetRef(
            asset_id=aid,
            sha256=digest,
            source_key=source_key,
            index_key=index_key,
            thumbs_key=thumbs_key,
            info=info,
            frames=len(index),
        )
        if field_rate:
            asset = asset.at_field_rate()
        sp.set_attribute("restora.field_rate", asset.info.video.field_rate)
        progress.start(asset.frames)
        return asset
