"""The work of one run, as library functions the Prefect tasks wrap (no Prefect here).

``analyze`` (probe + one decode pass + shot detection) -> ``plan_chunks`` -> ``restore_chunk`` per
chunk (decode -> stages -> encode) -> ``media.package`` -> ``storage.publish_file``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from restora import media, telemetry
from restora.color import Frames
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
                    shot_start=start,
                    shot_stop=stop,
                )
            )
    return out


@dataclass
class ChunkResult:
    """What :func:`restore_chunk` did: frames, seconds per stage, decode and encode seconds, the
    source's mean quantiser over the chunk (and whose scale) and the strength each stage ran at (``strength=auto``
    follows that QP)."""

    frames: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0
    source_qp: float | None = None
    source_qp_codec: str | None = None
    strengths: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "stage_seconds": self.stage_seconds,
            "decode_seconds": self.decode_seconds,
            "encode_seconds": self.encode_seconds,
            "source_qp": self.source_qp,
            "source_qp_codec": self.source_qp_codec,
            "strengths": self.strengths,
        }


Keys = list[tuple[int, int]]  # (frame number in stream order, pts) of each frame of a batch


def stream_stage(
    process_span: Callable[[Frames, int, int], Frames], context: int, batches: Iterable[tuple[Keys, Frames]]
) -> Iterator[tuple[Keys, Frames]]:
    """Run a stage over a stream of frame batches, giving every frame ``context`` neighbours on each
    side whatever the batch boundaries (clamped only at the ends of the stream).

    ``process_span(frames, start, stop)`` restores ``frames[start:stop]`` reading the rest as context
    (:meth:`Stage.process_span`). A batch goes out once its last frame's ``context`` successors have
    come in; at most ``2 * context`` frames beyond the current batch are held.
    """
    if context == 0:
        for keys, frames in batches:
            yield keys, process_span(frames, 0, len(frames))
        return
    held_keys: Keys = []
    held: Frames | None = None
    done = 0  # held frames already restored (kept as the past context of the next ones)
    for keys, frames in batches:
        held_keys += keys
        held = frames if held is None else np.concatenate([held, frames])
        ready = len(held) - done - context  # frames whose successors are all in
        if ready > 0:
            yield held_keys[done : done + ready], process_span(held, done, done + ready)
            drop = max(0, done + ready - context)
            held, held_keys, done = held[drop:], held_keys[drop:], done + ready - drop
    if held is not None and len(held) > done:
        yield held_keys[done:], process_span(held, done, len(held))


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

    Stages with temporal ``context`` see the neighbouring frames of the shot beyond the chunk: the
    decode starts and ends up to the sum of the stages' contexts outside ``[start, stop)`` (within
    the shot), and only the chunk's own frames are encoded. Before any frame, every stage is
    :meth:`~restora.stages.Stage.adapt`-ed to the chunk's mean source QP. Each stage gets one span per chunk
    (``stage.<type>``) with frames, pixels and fps. On failure the partial chunk file is removed.
    """
    result = ChunkResult(frames=0, stage_seconds={s.type: 0.0 for s in stages})
    writer = media.ChunkWriter(out_path, params)
    tracer = telemetry.tracer()
    stage_spans = [tracer.start_span(f"stage.{s.type}") for s in stages]
    margin = sum(s.context for s in stages)
    result.source_qp = index.mean_qp(chunk.start, chunk.stop)
    result.source_qp_codec = index.qp_codec if result.source_qp is not None else None
    for stage in stages:
        stage.adapt(result.source_qp, result.source_qp_codec)
        strength = stage.describe().get("strength")
        if isinstance(strength, float):
            result.strengths[stage.type] = strength
    first = max(chunk.start - margin, chunk.start if chunk.shot_start is None else chunk.shot_start)
    last = min(chunk.stop + margin, chunk.stop if chunk.shot_stop is None else chunk.shot_stop)

    def decoded() -> Iterator[tuple[Keys, Frames]]:
        n, t = first, time.perf_counter()
        deep = params.bits > 8  # decode at the precision the output keeps
        for pts, frames in media.read_frames(source, analysis_info, index, first, last, batch=batch, deep=deep):
            result.decode_seconds += time.perf_counter() - t
            yield list(zip(range(n, n + len(pts)), pts, strict=True)), frames
            n, t = n + len(pts), time.perf_counter()

    def timed(stage: Stage, sp: trace.Span) -> Callable[[Frames, int, int], Frames]:
        def run(frames: Frames, start: int, stop: int) -> Frames:
            t = time.perf_counter()
            with trace.use_span(sp, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                out = stage.process_span(frames, start, stop)
            result.stage_seconds[stage.type] += time.perf_counter() - t
            return out

        return run

    try:
        stream = decoded()
        for stage, sp in zip(stages, stage_spans, strict=True):
            stream = stream_stage(timed(stage, sp), stage.context, stream)
        for keys, frames in stream:
            keep = [i for i, (n, _) in enumerate(keys) if chunk.start <= n < chunk.stop]  # contiguous
            if not keep:
                continue
            pts = [keys[i][1] for i in keep]
            t = time.perf_counter()
            writer.write(pts, frames[keep[0] : keep[-1] + 1])
            result.encode_seconds += time.perf_counter() - t
            result.frames += len(pts)
            telemetry.metrics().frames.add(len(pts), {"restora.stages": ",".join(s.type for s in stages)})
            if on_frames is not None:
                on_frames(len(pts))
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
        "restora.strength": d.get("strength"),
        "restora.source_qp": d.get("source_qp"),
        "restora.source_qp_codec": d.get("source_qp_codec"),
    }


def frame_rate(info: media.MediaInfo) -> Fraction:
    """The stream's average frame rate."""
    return Fraction(info.video.frame_rate)
