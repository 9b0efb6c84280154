"""The run report (JSON written next to the output) and the asset manifest."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from restora.media import MediaInfo, VideoStreamInfo, at_field_rate, rotation_text
from restora.spec import RestoreSpec, ShotSpec


class ChunkRef(BaseModel):
    """A restored chunk stored in the asset store."""

    key: str
    chunk: ShotSpec
    frames: int
    reused: bool = False  # found in the store from an earlier run (resume)
    timings: dict[str, Any] = Field(default_factory=dict)


class AssetRef(BaseModel):
    """An ingested source: where it is in the store and what it is."""

    asset_id: str
    sha256: str
    source_key: str
    index_key: str
    thumbs_key: str
    info: MediaInfo  # what the run decodes and restores (at field rate: :meth:`at_field_rate`)
    frames: int
    source_video: VideoStreamInfo | None = None  # the probed stream, when ``info`` is its field-rate decode

    def at_field_rate(self) -> AssetRef:
        """This asset restored at one frame per field (``media.at_field_rate``), the probed stream
        kept as :attr:`source_video`. A progressive (or single-frame) source: itself."""
        info = at_field_rate(self.info)
        if info is self.info:
            return self
        return self.model_copy(update={"info": info, "frames": 2 * self.frames, "source_video": self.info.video})

    @property
    def source(self) -> VideoStreamInfo:
        """The video stream as probed (not its field-rate decode)."""
        return self.source_video or self.info.video


def signal_report(
    source: VideoStreamInfo, output: VideoStreamInfo, decoded: VideoStreamInfo | None = None
) -> dict[str, Any]:
    """Bit depth, scan (field order, the deinterlacer an interlaced source went through, and
    whether at field rate), frame rate, HDR signalling, start timecode and display orientation (a
    rotated source is decoded upright) of source and output, and what of the source's metadata the
    output does not carry (``not_carried``: ``"mastering_display"``, ``"content_light_level"``,
    dynamic HDR metadata such as ``"hdr10+"``, ``"timecode"``, ``"alpha"``, ``"afd"``). ``decoded`` is the
    stream as the run decoded it when that differs from ``source`` (field rate: its timecode is
    counted in fields; a re-interlaced output, back at the source's rate, keeps the source's)."""
    decoded = decoded or source
    expected_tc = source.timecode if output.frame_rate == source.frame_rate else decoded.timecode
    lost: list[str] = []
    if source.hdr is not None:
        out = output.hdr
        if source.hdr.mastering_display is not None and (out is None or out.mastering_display is None):
            lost.append("mastering_display")
        if source.hdr.max_cll is not None and (out is None or out.max_cll is None):
            lost.append("content_light_level")
        lost += [d for d in source.hdr.dynamic if out is None or d not in out.dynamic]
    if source.timecode is not None and output.timecode != expected_tc:
        lost.append("timecode")
    if source.alpha and not output.alpha:
        lost.append("alpha")
    if source.afd is not None and output.afd is None:
        lost.append("afd")  # Active Format Description: in the video stream, lost with the re-encode
    return {
        "bit_depth": {"source": source.bit_depth, "output": output.bit_depth},
        "scan": {
            "source": source.field_order,
            "output": output.field_order,
            "deinterlaced": decoded.deinterlace,
            "field_rate": decoded.field_rate,
            # the field each frame shows first, as deinterlaced / as the output's frames are flagged
            "first_field": {"source": source.first_field, "output": output.first_field},
            # restored per field and woven back into interlaced frames at the source's rate
            "reinterlaced": decoded.field_rate and output.interlaced,
        },
        "frame_rate": {"source": source.frame_rate, "output": output.frame_rate},
        "hdr": {
            "source": source.hdr.model_dump() if source.hdr else None,
            "output": output.hdr.model_dump() if output.hdr else None,
        },
        "timecode": {"source": source.timecode, "output": output.timecode},
        "orientation": {"source": rotation_text(source.orientation), "output": rotation_text(output.orientation)},
        "vbi_lines_cut": source.vbi_lines,  # IMX / D-10: blanking lines above the picture, not restored
        "not_carried": lost,
    }


def streams_not_carried(source: MediaInfo, output: MediaInfo) -> list[str]:
    """What of the source's streams and container the output lacks: ``"other_video_streams"`` (one
    video stream is restored), ``"data_streams"`` (metadata, KLV, SCTE-35, ancillary data; a
    timecode track is carried as the timecode), ``"chapters"`` (MXF and MPEG-TS have none),
    ``"audio_channel_layout"`` (FFmpeg's MXF writes no channel labels: six channels arrive in
    FFmpeg's order, L R C LFE Ls Rs), ``"closed_captions"`` (CEA-608/708 inside the source's video
    stream, which the re-encode drops, and no CEA-608 track for them: only MOV has one)."""
    lost = []
    caption_track = any(s.codec in ("cc_dec", "eia_608") for s in output.subtitles)
    if source.video.captions and not (output.video.captions or caption_track):
        lost.append("closed_captions")
    if source.video_streams > 1:
        lost.append("other_video_streams")
    if any(not d.timecode_track for d in source.data):
        lost.append("data_streams")
    if source.chapters and not output.chapters:
        lost.append("chapters")
    pairs = zip(source.audio, output.audio, strict=False)
    if any(a.layout and not a.layout.endswith("channels") and a.layout != b.layout for a, b in pairs):
        lost.append("audio_channel_layout")
    return lost


def build_report(
    spec: RestoreSpec,
    asset: AssetRef,
    chunks: list[ChunkRef],
    stages: list[dict[str, Any]],
    output_info: MediaInfo,
    packets: dict[str, Any],
    fades: list[dict[str, Any]],
    run_id: str,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """Assemble the JSON report: input, output, shots, per-stage timings, provenance."""
    per_stage: dict[str, dict[str, float]] = {}
    decode = encode = 0.0
    for c in chunks:
        for name, secs in c.timings.get("stage_seconds", {}).items():
            d = per_stage.setdefault(name, {"seconds": 0.0, "frames": 0})
            d["seconds"] += secs
            d["frames"] += c.frames
        decode += c.timings.get("decode_seconds", 0.0)
        encode += c.timings.get("encode_seconds", 0.0)
    for d in per_stage.values():
        d["seconds"] = round(d["seconds"], 4)
        d["fps"] = round(d["frames"] / d["seconds"], 3) if d["seconds"] > 0 else 0.0
    shots: dict[int, dict[str, Any]] = {}
    for c in chunks:
        s = shots.setdefault(
            c.chunk.shot,
            {
                "shot": c.chunk.shot,
                "start_frame": c.chunk.start,
                "stop_frame": c.chunk.stop,
                "start_s": c.chunk.start_s,
                "end_s": c.chunk.end_s,
                "chunks": 0,
            },
        )
        s["start_frame"] = min(s["start_frame"], c.chunk.start)
        s["stop_frame"] = max(s["stop_frame"], c.chunk.stop)
        s["start_s"] = min(s["start_s"], c.chunk.start_s)
        s["end_s"] = max(s["end_s"], c.chunk.end_s)
        s["chunks"] += 1
    signal = signal_report(asset.source, output_info.video, asset.info.video)
    signal["not_carried"] += streams_not_carried(asset.info, output_info)
    return {
        "restora_report": 1,
        "run_id": run_id,
        "input": {
            "uri": spec.input,
            "sha256": asset.sha256,
            "asset_id": asset.asset_id,
            "source_key": asset.source_key,
            "probe": {**asset.info.model_dump(), "video": asset.source.model_dump()},
        },
        "output": {"uri": spec.output, "probe": output_info.model_dump(), "packets": packets},
        "signal": signal,
        "preset": spec.preset,
        "scale": spec.scale,
        "shots": sorted(shots.values(), key=lambda s: s["shot"]),
        "fades": fades,
        "chunks": [
            {
                "shot": c.chunk.shot,
                "chunk": c.chunk.chunk,
                "start": c.chunk.start,
                "stop": c.chunk.stop,
                "frames": c.frames,
                "reused": c.reused,
                "key": c.key,
                "source_qp": c.timings.get("source_qp"),
                "source_qp_codec": c.timings.get("source_qp_codec"),
                "strengths": c.timings.get("strengths", {}),
            }
            for c in chunks
        ],
        "stages": per_stage,
        "timings_s": {
            "decode": round(decode, 4),
            "encode": round(encode, 4),
            **{k: round(v, 4) for k, v in seconds.items()},
        },
        "provenance": {
            "stages": stages,
            "synthesized_pixels": any(bool(s.get("synthesizes")) for s in stages),
            "deinterlace": asset.info.video.deinterlace,
            # CRF and preset drive x264 / x265 only (DNxHR, ProRes, MPEG-2 and FFV1 have their own settings)
            "encode": {"codec": output_info.video.codec}
            | (
                {"crf": spec.crf, "x264_preset": spec.x264_preset}
                if output_info.video.codec in ("h264", "hevc")
                else {}
            ),
            # audio streams (source indices) decoded to 24-bit 48 kHz PCM, aligned to the first frame (MXF)
            "audio_to_pcm": packets.get("pcm", []),
            "spec": [st.model_dump() for st in spec.resolved_stages()],
        },
    }
