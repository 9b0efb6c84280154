"""The work of one run, as library functions the Prefect tasks wrap (no Prefect here).

``analyze`` (probe + one decode pass + shot detection) -> ``plan_chunks`` -> ``restore_chunk`` per
chunk (decode -> stages -> encode) -> ``media.package`` -> ``storage.publish_file``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from restora import media, telemetry
from restora.shots import ShotList, detect_shots
from restora.spec import ShotSpec
from restora.stages import Stage


@dataclass
class Analysis:
    """Result of :func:`analyze`."""

    info: media.MediaInfo
    index: media.FrameIndex
    shots: ShotList
    sha256: str


def analyze(path: Path, progress: Callable[[int], None] | None = None) -> Analysis:
    """Probe, decode every frame once (index + thumbnails + hash) and detect shots.

    Raises:
        InputError: the file is missing, not media, truncated, or has no video.
    """
    info = media.probe(path)
    index, thumbs, digest = media.scan(path, info, progress=progress)
    return Analysis(info=info, index=index, shots=detect_shots(thumbs), sha256=digest)


def plan_chunks(shots: ShotList, index: media.FrameIndex, chunk_frames: int) -> list[ShotSpec]:
    """Split shots into chunks of at most ``chunk_frames`` frames (the unit of work and of resume)."""
    tb = index.time_base
    out: list[ShotSpec] = []
    now = time.time()
    t0 = index.pts[0]
    for n, (start, stop) in enumerate(shots.shots()):
        for c, s in enumerate(range(start, stop, chunk_frames)):
            e = min(s + chunk_frames, stop)
            end_s = float((index.pts[e] - t0) * tb) if e < len(index) else float((index.pts[-1] - t0) * tb)
            out.append(
                ShotSpec(
                    shot=n,
                    chunk=c,
                    start=s,
                    stop=e,
                    start_s=float((index.pts[s] - t0) * tb),
                    end_s=end_s,
                    planned_at=now,
                )
            )
    return out


@dataclass
class ChunkResult:
    """What :func:`restore_chunk` did: frames, seconds per stage, decode and encode seconds."""

    frames: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "stage_seconds": self.stage_seconds,
            "decode_seconds": self.decode_seconds,
            "encode_seconds": self.encode_seconds,
        }


def restore_chunk(
    source: Path,
    analysis_info: media.MediaInfo,
    index: media.FrameIndex,
    chunk: ShotSpec,
    stages: Sequence[Stage],
    params: media.EncodeParams,
    out_path: Path,
    batch: int = 4,
    on_frames: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Decode the chunk's frames, run the stages in order, encode the result into ``out_path``.

    Each stage gets one span per chunk (``stage.<type>``) with frames, pixels and fps.
    On failure the partial chunk file is removed.
    """
    result = ChunkResult(frames=0, stage_seconds={s.type: 0.0 for s in stages})
    writer = media.ChunkWriter(out_path, params)
    tracer = telemetry.tracer()
    stage_spans = [tracer.start_span(f"stage.{s.type}") for s in stages]
    try:
        t = time.perf_counter()
        for pts, frames in media.read_frames(source, analysis_info, index, chunk.start, chunk.stop, batch=batch):
            result.decode_seconds += time.perf_counter() - t
            for stage, sp in zip(stages, stage_spans, strict=True):
                t = time.perf_counter()
                with trace.use_span(sp, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    frames = stage.process(frames)
                result.stage_seconds[stage.type] += time.perf_counter() - t
            t = time.perf_counter()
            writer.write(pts, frames)
            result.encode_seconds += time.perf_counter() - t
            result.frames += len(pts)
            telemetry.metrics().frames.add(len(pts), {"restora.stages": ",".join(s.type for s in stages)})
            if on_frames is not None:
                on_frames(len(pts))
            t = time.perf_counter()
        t = time.perf_counter()
        writer.close()
        result.encode_seconds += time.perf_counter() - t
    except BaseException as exc:
        writer.abort()
        for sp in stage_spans:
            sp.record_exception(exc)
            sp.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        w, h = analysis_info.video.width, analysis_info.video.height
        for stage, sp in zip(stages, stage_spans, strict=True):
            sp.set_attributes(
                {k: v for k, v in stage_span_attributes(stage, chunk, result, w, h).items() if v is not None}
            )
            sp.end()
            telemetry.metrics().stage_latency.record(result.stage_seconds[stage.type], {"restora.stage": stage.type})
    return result


def stage_span_attributes(
    stage: Stage, chunk: ShotSpec, result: ChunkResult, width: int, height: int
) -> dict[str, Any]:
    """Span attributes for one stage over one chunk."""
    d = stage.describe()
    secs = result.stage_seconds.get(stage.type, 0.0)
    return {
        "restora.stage": stage.type,
        "restora.shot": chunk.shot,
        "restora.chunk": chunk.chunk,
        "restora.chunk_range": f"{chunk.start}-{chunk.stop}",
        "restora.frames": result.frames,
        "restora.pixels": result.frames * width * height,
        "restora.seconds": round(secs, 6),
        "restora.fps": round(result.frames / secs, 3) if secs > 0 else None,
        "restora.model": d.get("model"),
        "restora.model_version": d.get("model_version"),
        "restora.backend": d.get("backend"),
    }


def frame_rate(info: media.MediaInfo) -> Fraction:
    """The stream's average frame rate."""
    return Fraction(info.video.frame_rate)
