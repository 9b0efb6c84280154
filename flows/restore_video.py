"""Flow ``restore-video``: ingest -> detect_shots -> restore_shot (per chunk) -> package -> publish."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import flow, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from restora import media, telemetry
from restora.containers import carry_plan
from restora.errors import ConfigError
from restora.s3 import parse_uri
from restora.spec import RestoreSpec
from tasks import _runtime
from tasks.ingest import ingest
from tasks.package import package
from tasks.publish import publish
from tasks.restore_shot import restore_shot
from tasks.shots import detect_shots_task


def validate(spec: RestoreSpec, info: media.MediaInfo | None = None) -> None:
    """Fail fast, before any work, on a spec that cannot succeed; with the source's ``info`` also on
    an output the source cannot have (odd 4:2:0 size, 8-bit HDR, MXF at a rate or size it cannot
    hold) or a source stream the output container cannot store (subtitles into MXF, SubRip into MP4)."""
    media.output_format(spec.output)
    if spec.field_rate and spec.reinterlace:
        raise ConfigError("field_rate (progressive at field rate) and reinterlace (interlaced out) exclude each other")
    if info is not None:
        if spec.decode_fields:
            info = media.at_field_rate(info)  # as ingest decodes it (unchanged if progressive)
        media.choose_encode(
            info, spec.scale, spec.output, spec.crf, spec.x264_preset, spec.bit_depth, spec.reinterlace, spec.mxf_codec
        )
        carry_plan(info, spec.output)  # a stream the container cannot hold fails now, not after the restore
    spec.resolved_stages()
    for uri in (spec.input, spec.output):
        if uri.startswith("s3://"):
            parse_uri(uri)
    if "://" in spec.input or "://" in spec.output:
        same = spec.input == spec.output
    else:
        same = Path(spec.input).resolve() == Path(spec.output).resolve()
    if same:
        raise ConfigError("output must differ from input")


@flow(name="restore-video", task_runner=ThreadPoolTaskRunner(max_workers=1), validate_parameters=True)  # type: ignore[arg-type]
def restore_video(spec: RestoreSpec) -> dict[str, Any]:
    """Restore one video. Returns the output path, the report path and the span file path."""
    validate(spec)
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    settings = _runtime.settings()
    run_dir = Path(settings.storage.root) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    span_file = run_dir / "spans.jsonl"
    attrs = {
        "restora.run_id": run_id,
        "restora.preset": spec.preset,
        "restora.scale": spec.scale,
        "restora.input": telemetry.safe_attr(spec.input),
        "restora.output": telemetry.safe_attr(spec.output),
    }
    root = None
    try:
        with telemetry.root_span("flow.restore_video", **attrs) as root:
            telemetry.route_trace_to_file(root, span_file)
            carrier = telemetry.carrier()
            asset = ingest(spec.input, carrier, spec.decode_fields)
            root.set_attribute("restora.asset_id", asset.asset_id)
            validate(spec, asset.info)  # now that the source is known, before any chunk
            # re-interlacing weaves pairs of fields: every chunk holds whole frames (an even count)
            chunk = spec.chunk_frames + spec.chunk_frames % 2 if spec.reinterlace else spec.chunk_frames
            chunks, fades = detect_shots_task(asset, chunk, carrier)
            futures = [restore_shot.submit(asset, c, spec, carrier) for c in chunks]
            refs = [f.result() for f in futures]
            pkg = package(asset, refs, spec, fades, run_id, carrier)
            out = publish(pkg, spec.output, carrier)
            root.set_attribute("restora.frames", asset.frames)
    finally:
        # A failed run's trace stays in the store's run folder (<store>/runs/<run id>/spans.jsonl).
        if root is not None:
            telemetry.unroute(root)
    spans = _runtime.deliver(span_file, out + ".spans.jsonl")
    return {
        "output": out,
        "report": out + ".report.json",
        "report_data": pkg.report,
        "spans": spans,
        "run_id": run_id,
        "reused_chunks": sum(r.reused for r in refs),
        "chunks": len(refs),
    }


def run(spec: RestoreSpec, workers: int | None = None) -> dict[str, Any]:
    """Run the flow with ``workers`` concurrent chunk restorations (default from settings)."""
    n = workers or _runtime.settings().limits.shot_workers
    f = restore_video.with_options(task_runner=ThreadPoolTaskRunner(max_workers=n))  # type: ignore[arg-type]
    return f(spec)
