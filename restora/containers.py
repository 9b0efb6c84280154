"""Output containers: which one an extension names, and what each can carry of the source.

Restora writes MP4/MOV, Matroska/NUT, and the two broadcast delivery containers:

* **MXF** (SMPTE 377M, operational pattern OP1a, FFmpeg's ``mxf`` muxer): the file a playout
  server or an Avid ingests. Video is DNxHR (intra-only, so chunks join at any frame; see
  :func:`restora.media.choose_encode`), at one of the edit rates MXF defines, constant rate,
  at least 256x120; re-interlaced output is long-GOP MPEG-2 4:2:2 as XDCAM HD422 (DNxHR has no
  interlaced coding), closed GOPs so chunks still join. MXF holds audio only as PCM: every audio
  stream is decoded and stored as 24-bit PCM at 48 kHz (16-bit and 24-bit PCM sources keep every
  sample value), aligned to the first video frame (:func:`pcm_packets`). It holds no subtitle
  streams; the start timecode goes into the material package.
* **MPEG-TS** (``.ts``): H.264/HEVC video as for MP4, the audio and subtitle codecs a broadcast
  receiver decodes (:data:`TS_CODECS`), copied.

:func:`carry_plan` decides per source stream (copy, transcode to PCM, or refuse with a
:class:`ConfigError` naming the stream), before any restoration starts, and :func:`restora.media.package`
follows it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

from restora.errors import ConfigError

if TYPE_CHECKING:
    from restora.media import MediaInfo, OtherStreamInfo

OUTPUT_CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".nut": "nut",
    ".mxf": "mxf",
    ".ts": "mpegts",
}

# The edit rates FFmpeg's MXF muxer writes (libavformat/mxf.c, ``mxf_content_package_rates``).
MXF_RATES = frozenset(
    Fraction(n, d)
    for n, d in (
        (24, 1), (24000, 1001), (25, 1), (30, 1), (30000, 1001), (48, 1), (48000, 1001), (50, 1), (60, 1),
        (60000, 1001), (72, 1), (72000, 1001), (75, 1), (90, 1), (90000, 1001), (96, 1), (96000, 1001),
        (100, 1), (120, 1), (120000, 1001),
    )
)  # fmt: skip
MXF_MIN_SIZE = (256, 120)  # DNxHR's smallest picture (FFmpeg's dnxhd encoder refuses less)
MXF_MPEG2_MAX_SIZE = (1920, 1088)  # MPEG-2 4:2:2 Profile @ High Level: interlaced MXF's video
MXF_SAMPLE_RATE = 48000

# What a DVB / ATSC receiver decodes from a transport stream (FFmpeg would also write, say, SubRip
# into TS as private data, which no receiver reads: refused instead).
TS_CODECS = frozenset({"aac", "aac_latm", "mp2", "mp3", "ac3", "eac3", "opus", "dvb_subtitle", "dvb_teletext"})

# Audio that starts or resumes within this of where the video timeline puts it is taken as aligned
# (a resampler's delay is a few samples); a larger gap is filled with silence, an overlap dropped.
ALIGN_TOLERANCE_S = 0.002

Carry = Literal["copy", "pcm"]


def output_format(path: str | os.PathLike[str]) -> str:
    """FFmpeg muxer name for an output path's extension, or :class:`ConfigError`."""
    ext = Path(path).suffix.lower()
    if ext not in OUTPUT_CONTAINERS:
        raise ConfigError(
            f"unsupported output extension {ext or '(none)'!r}: use one of {', '.join(OUTPUT_CONTAINERS)}"
        )
    return OUTPUT_CONTAINERS[ext]


def _muxer_takes(fmt: str, codec: str) -> bool:
    """Whether FFmpeg's ``fmt`` muxer declares it can store ``codec`` (its codec tag tables)."""
    with av.open(io.BytesIO(), "w", format=fmt) as probe_out:
        try:
            probe_out.add_mux_stream(codec)
        except ValueError:
            return False
    return True


def _canonical(decoder: str) -> str:
    """The codec's own name for a decoder's (``mp3float`` -> ``mp3``, ``srt`` -> ``subrip``): probes name decoders."""
    try:
        return str(av.Codec(decoder, "r").canonical_name)
    except (ValueError, av.error.FFmpegError):
        return decoder


def _carry(s: OtherStreamInfo, fmt: str) -> Carry | str:
    """How stream ``s`` goes into ``fmt``: ``"copy"``, ``"pcm"``, or why it cannot."""
    codec = _canonical(s.codec)
    if fmt == "mxf":
        if s.type != "audio":
            return "MXF holds no subtitle streams"
        try:
            av.Codec(s.codec, "r")
        except (ValueError, av.error.FFmpegError):
            return "MXF holds audio as PCM, and this FFmpeg has no decoder for it"
        return "pcm"
    if fmt == "mpegts":
        return "copy" if codec in TS_CODECS else f"a transport stream carries only {', '.join(sorted(TS_CODECS))}"
    return "copy" if _muxer_takes(fmt, codec) else f"{fmt} cannot store {codec}"


def carry_plan(info: MediaInfo, output: str | os.PathLike[str]) -> dict[int, Carry]:
    """For each audio and subtitle stream of the source (by stream index), how it reaches ``output``.

    Raises:
        ConfigError: a stream the container cannot hold, naming it and the containers that can.
    """
    fmt = output_format(output)
    plan: dict[int, Carry] = {}
    for s in [*info.audio, *info.subtitles]:
        how = _carry(s, fmt)
        if how not in ("copy", "pcm"):
            raise ConfigError(
                f"{s.type} stream {s.index} ({_canonical(s.codec)}) cannot go into {Path(output).suffix}: {how}; "
                "choose another output extension (.mkv holds most)"
            )
        plan[s.index] = how  # type: ignore[assignment]
    return plan


def check_mxf_video(width: int, height: int, rate: str, vfr: bool, mpeg2: bool = False) -> None:
    """Refuse a picture MXF cannot hold: variable frame rate, a rate MXF has no edit rate for;
    DNxHR smaller than :data:`MXF_MIN_SIZE`; ``mpeg2`` (MPEG-2 4:2:2 Profile at High Level, as XDCAM
    HD422: interlaced MXF, or ``--mxf-codec xdcam``) larger than :data:`MXF_MPEG2_MAX_SIZE`."""
    if vfr:
        raise ConfigError("MXF needs a constant frame rate; this source varies: use .mkv or .mov")
    if Fraction(rate) not in MXF_RATES:
        raise ConfigError(f"MXF has no edit rate {rate} fps: use .mkv or .mov")
    if mpeg2:
        if width > MXF_MPEG2_MAX_SIZE[0] or height > MXF_MPEG2_MAX_SIZE[1]:
            raise ConfigError(f"XDCAM HD422 (MPEG-2 4:2:2) is at most 1920x1088: {width}x{height} is larger")
        return
    if width < MXF_MIN_SIZE[0] or height < MXF_MIN_SIZE[1]:
        raise ConfigError(
            f"{width}x{height} is below DNxHR's {MXF_MIN_SIZE[0]}x{MXF_MIN_SIZE[1]}, MXF's video codec here: "
            "use --scale 2 or .mkv"
        )


def pcm_stream(out: av.container.OutputContainer, s: OtherStreamInfo) -> AudioStream:
    """Add the 24-bit, 48 kHz PCM stream that replaces source stream ``s`` (same channels and layout)."""
    so = out.add_stream("pcm_s24le", rate=MXF_SAMPLE_RATE)
    so.layout = s.layout or av.AudioLayout(cast(Any, s.channels or 2)).name  # FFmpeg's default for the count
    if s.language:
        so.metadata["language"] = s.language
    return so


def pcm_packets(decoded: Iterable[av.AudioFrame], so: AudioStream, start_s: float) -> Iterator[av.Packet[Any]]:
    """Encode ``decoded``, an audio stream's frames in order, into ``so`` (:func:`pcm_stream`),
    resampled to 48 kHz and aligned to the video: the output's first sample is at ``start_s`` (the
    first video frame's time) on the source's timeline. Audio starting later is preceded by silence,
    audio starting earlier is cut there, and a gap inside the stream (a transport stream's lost
    packets) is filled with silence, so every sample stays at its source time. Packets carry times
    in 1/48000 s from the source's zero, as the video's do in theirs."""
    rate = MXF_SAMPLE_RATE
    layout = so.layout.name
    resampler = av.AudioResampler(format="s32", layout=layout, rate=rate)
    origin = round(start_s * rate)  # the output's sample 0 on the source timeline, in 1/48000 s
    pos = 0  # samples emitted so far, counted from the first video frame
    skip = 0  # samples still to drop (audio before the video starts, or overlapping what was emitted)
    channels = so.layout.nb_channels

    def emit(samples: npt.NDArray[np.int32]) -> Iterator[av.Packet[Any]]:
        nonlocal pos
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.reshape(1, -1)), format="s32", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, origin + pos, Fraction(1, rate)
        pos += samples.shape[0]
        yield from so.encode(frame)

    def place(frames: list[av.AudioFrame]) -> Iterator[av.Packet[Any]]:
        nonlocal skip
        for r in frames:
            data = r.to_ndarray().astype(np.int32, copy=False).reshape(-1, channels)  # packed s32: (samples, channels)
            cut = min(skip, data.shape[0])
            skip -= cut
            if data.shape[0] > cut:
                yield from emit(data[cut:])

    for frame in decoded:
        if frame.pts is not None and frame.time_base is not None:
            target = round(float(frame.pts * frame.time_base) * rate) - origin  # where its first sample belongs
            if abs(target - (pos - skip)) > ALIGN_TOLERANCE_S * rate:  # not where the last frame ended
                # drain what the resampler holds of the samples before the jump, then start afresh
                yield from place(resampler.resample(None))
                resampler = av.AudioResampler(format="s32", layout=layout, rate=rate)
                if target > pos:
                    skip = 0
                    for n in range(target - pos, 0, -rate):  # silence up to it, a second at a time
                        yield from emit(np.zeros((min(n, rate), channels), np.int32))
                else:
                    skip = pos - target  # before the video's start, or already covered
        yield from place(resampler.resample(frame))
    yield from place(resampler.resample(None))
    yield from so.encode(None)
