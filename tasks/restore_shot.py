"""Task ``restore_shot``: decode one chunk of a shot, run the stages, encode, store (resumable)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path

from prefect import task

from restora import media, progress, telemetry
from restora.pipeline import restore_chunk
from restora.report import AssetRef, ChunkRef
from restora.spec import RestoreSpec, ShotSpec
from restora.stages import Stage, StageContext, build_chain
from tasks import _runtime
from tasks.shots import load_index


def build_stages(spec: RestoreSpec, shot: int | None = None) -> list[Stage]:
    """Instantiate the run's stages (with ``shot``'s option overrides) on the configured backend."""
    s = _runtime.settings()
    ctx = StageContext(backend=_runtime.backend(s), tile=s.models.tile)
    return build_chain([(st.type, st.options) for st in spec.stages_for(shot)], ctx)


def chunk_key(
    asset: AssetRef, spec: RestoreSpec, chunk: ShotSpec, stages: list[Stage], params: media.EncodeParams
) -> str:
    """Cache key of a restored chunk: asset, frame range, the stages with the options effective for
    the chunk's shot, model versions (and QP calibration) or the versions of the classical stages'
    methods, the deinterlacer of an interlaced source,
    the encoding chosen for the source (codec, sample format, HDR metadata, CRF, the encoder's
    options); with a temporal
    stage also the shot's frame range (its frames beyond the chunk are context).
    Layout: ``assets/<id>/chunks/<digest>/<start>-<stop>.mov``."""
    versions = "-".join(
        f"{d.get('model', '')}@{d.get('model_version', '')}"
        + (f"~qp{d['qp_ramps']}" if "qp_ramps" in d else "")
        + (f"~m{d['method_version']}" if "method_version" in d else "")
        for d in (s.describe() for s in stages)
    )  # a strength=auto stage: its calibration too (re-fitted for the same model version, it restores anew)
    if any(s.context for s in stages):
        versions += f"|context {sum(s.context for s in stages)} in shot {chunk.shot_start}-{chunk.shot_stop}"
    # the encoder's own options too: a change of them in the code (XDCAM's rate control) restores anew
    encoding = params.model_dump_json() + json.dumps(params.options(), sort_keys=True)
    encoding += f"|{asset.info.video.deinterlace or ''}"
    digest = hashlib.sha256(f"{spec.digest(chunk.shot)}|{versions}|{encoding}".encode()).hexdigest()[:16]
    return f"assets/{asset.asset_id}/chunks/{digest}/{chunk.start:08d}-{chunk.stop:08d}.mov"


@task(name="restore_shot", tags=["inference"], **_runtime.RETRY)
def restore_shot(asset: AssetRef, chunk: ShotSpec, spec: RestoreSpec, carrier: dict[str, str]) -> ChunkRef:
    """Restore one chunk, or reuse it when an identical one is already stored."""
    attrs = {
        "restora.asset_id": asset.asset_id,
        "restora.shot": chunk.shot,
        "restora.chunk": chunk.chunk,
        "restora.chunk_range": f"{chunk.start}-{chunk.stop}",
        "restora.frames": chunk.frames,
    }
    with telemetry.span("task.restore_shot", carrier, **attrs) as sp:
        if chunk.planned_at is not None:
            telemetry.metrics().queue_wait.record(max(0.0, time.time() - chunk.planned_at))
        st = _runtime.store()
        stages = build_stages(spec, chunk.shot)
        params = media.choose_encode(
            asset.info,
            spec.scale,
            spec.output,
            spec.crf,
            spec.x264_preset,
            spec.bit_depth,
            spec.reinterlace,
            spec.mxf_codec,
        )
        key = chunk_key(asset, spec, chunk, stages, params)
        if st.exists(key):
            sp.set_attribute("restora.reused", True)
            progress.advance(chunk.frames)
            return ChunkRef(key=key, chunk=chunk, frames=chunk.frames, reused=True)
        src = st.local_path(asset.source_key)
        with tempfile.TemporaryDirectory(prefix="restora-chunk-") as tmp:
            out = Path(tmp) / "chunk.mov"
            res = restore_chunk(
                src, asset.info, load_index(asset), chunk, stages, params, out, on_frames=progress.advance
            )
            st.put_file(key, out)
        sp.set_attributes({"restora.reused": False, "restora.encode_seconds": round(res.encode_seconds, 4)})
        return ChunkRef(key=key, chunk=chunk, frames=res.frames, timings=res.as_dict())
