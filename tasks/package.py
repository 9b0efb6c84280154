"""Task ``package``: concatenate chunks, mux the source's audio/subtitles untouched, write the report."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import task
from pydantic import BaseModel

from restora import media, telemetry
from restora.report import AssetRef, ChunkRef, build_report
from restora.spec import RestoreSpec
from tasks import _runtime
from tasks.restore_shot import build_stages
from tasks.shots import load_source_index

log = logging.getLogger(__name__)


class PackageRef(BaseModel):
    """The packaged output and its report, staged in the store (not yet published)."""

    output_key: str
    report_key: str
    report: dict[str, Any]


@task(name="package", tags=["io"], **_runtime.RETRY)
def package(
    asset: AssetRef,
    chunks: list[ChunkRef],
    spec: RestoreSpec,
    fades: list[dict[str, Any]],
    run_id: str,
    carrier: dict[str, str],
) -> PackageRef:
    """Build the final file in a staging area of the store."""
    with telemetry.span(
        "task.package", carrier, **{"restora.asset_id": asset.asset_id, "restora.chunks": len(chunks)}
    ) as sp:
        st = _runtime.store()
        ordered = sorted(chunks, key=lambda c: c.chunk.start)
        source_index = load_source_index(asset)  # the source's frames, with their captions
        index = source_index.at_field_rate() if asset.info.video.field_rate else source_index
        name = Path(spec.output).name
        with tempfile.TemporaryDirectory(prefix="restora-pkg-") as tmp:
            out = Path(tmp) / name
            t = time.perf_counter()
            starts = [index.pts[c.chunk.start] for c in ordered]
            info = asset.info
            if spec.reinterlace:  # woven chunks run at the source's rate, time base and timecode; a
                # chunk starts on a frame's first field: field 2k is source frame k
                starts = [source_index.pts[c.chunk.start // 2] for c in ordered]
                info = info.model_copy(update={"video": asset.source})
            with telemetry.span("mux", **{"restora.chunks": len(ordered)}):
                counts = media.package(
                    [(st.local_path(c.key), p) for c, p in zip(ordered, starts, strict=True)],
                    st.local_path(asset.source_key),
                    info,
                    out,
                    captions=source_index,
                )
            mux_s = time.perf_counter() - t
            out_info = media.probe(out)
            stages = [s.describe() for s in build_stages(spec)]
            report = build_report(spec, asset, ordered, stages, out_info, counts, fades, run_id, {"mux": mux_s})
            if lost := report["signal"]["not_carried"]:
                log.warning("the output does not carry the source's %s", ", ".join(lost))
            prefix = f"assets/{asset.asset_id}/outputs/{run_id}"
            st.put_file(f"{prefix}/{name}", out)
            st.put_bytes(f"{prefix}/report.json", json.dumps(report, indent=2).encode())
            sp.set_attributes({"restora.bytes": out.stat().st_size, "restora.frames": out_info.video.frames})
        return PackageRef(output_key=f"{prefix}/{name}", report_key=f"{prefix}/report.json", report=report)
