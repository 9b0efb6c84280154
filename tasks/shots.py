"""Task ``detect_shots``: cut list from the stored thumbnails, split into chunks."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from fractions import Fraction

import numpy as np
from prefect import task

from restora import media, telemetry
from restora.pipeline import plan_chunks
from restora.report import AssetRef
from restora.shots import ShotList, detect_shots
from restora.spec import ShotSpec
from tasks import _runtime


def load_source_index(asset: AssetRef) -> media.FrameIndex:
    """The frame index stored by ``ingest``: the source's frames, with their captions."""
    d = json.loads(_runtime.store().get_bytes(asset.index_key))
    return media.FrameIndex(
        pts=d["pts"],
        time_base=Fraction(d["time_base"]),
        has_pts=d["has_pts"],
        qp=d.get("qp"),
        qp_codec=d.get("qp_codec"),
        captions=d.get("captions"),
    )


def load_index(asset: AssetRef) -> media.FrameIndex:
    """The frame index stored by ``ingest``, counted in fields for a field-rate asset."""
    index = load_source_index(asset)
    return index.at_field_rate() if asset.info.video.field_rate else index


@task(name="detect_shots", tags=["analysis"], **_runtime.RETRY)
def detect_shots_task(
    asset: AssetRef, chunk_frames: int, carrier: dict[str, str]
) -> tuple[list[ShotSpec], list[dict[str, object]]]:
    """Returns the chunks to restore and the fades found."""
    with telemetry.span("task.detect_shots", carrier, **{"restora.asset_id": asset.asset_id}) as sp:
        st = _runtime.store()
        thumbs = np.load(io.BytesIO(st.get_bytes(asset.thumbs_key)))["thumbs"]
        shots: ShotList = detect_shots(thumbs)  # on the source frames: a cut falls between frames
        if asset.info.video.field_rate:
            shots = shots.at_field_rate()
        chunks = plan_chunks(shots, load_index(asset), chunk_frames)
        fades = [asdict(f) for f in shots.fades]
        st.put_bytes(
            f"assets/{asset.asset_id}/shots.json",
            json.dumps(
                {"frames": shots.frames, "cuts": shots.cuts, "fades": fades, "shots": shots.shots()}, indent=1
            ).encode(),
        )
        sp.set_attributes(
            {"restora.shots": len(shots.shots()), "restora.cuts": len(shots.cuts), "restora.chunks": len(chunks)}
        )
        return chunks, fades
