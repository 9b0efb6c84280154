"""All media I/O (PyAV): probe, frame index, decode a frame range, encode a chunk, package.

The loops follow PyAV's own examples: ``thread_type="AUTO"``, demux/decode, encoders flushed with
``stream.encode()``, empty packets skipped when remuxing, explicit ``time_base``, source PTS kept
(variable frame rate exists), consecutive decode failures capped.

Frames leave this module as ``(H, W, 3)`` RGB arrays, converted from YUV with the source's own
matrix and range (BT.709 for untagged HD, BT.601 for untagged SD), and go back to YUV with the
same matrix, so a restore never shifts colors. 8-bit sources give uint8; deeper ones (10-bit,
HDR) give uint16 on the full 16-bit scale, so no 8-bit step ever bands a 10-bit gradient. HDR
sources (PQ or HLG) keep their transfer and their static metadata (SMPTE ST 2086 mastering display,
content light level), which the encoder writes back into the output's HEVC stream. Interlaced
sources are deinterlaced on decode (bwdif, :func:`deinterlace_filter`), one progressive frame per source frame,
or at field rate one per field (:func:`at_field_rate`: 50i -> 50p), before any stage sees them: the
networks restore pictures, not pairs of fields.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import io
import itertools
import math
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, cast

import av
import av.error
import av.filter
import numpy as np
import numpy.typing as npt
from av.video.stream import VideoStream
from pydantic import BaseModel

from restora.color import Frames
from restora.containers import OUTPUT_CONTAINERS as OUTPUT_CONTAINERS
from restora.containers import carry_plan, check_mxf_video, pcm_packets, pcm_stream
from restora.containers import output_format as output_format
from restora.errors import ConfigError, InputError, UnsupportedInputError

U8 = npt.NDArray[np.uint8]

# ITU-T H.273 code points (what codec contexts and frames carry).
PRI_BT709, PRI_UNSPEC, PRI_BT470BG, PRI_SMPTE170M, PRI_BT2020 = 1, 2, 5, 6, 9
TRC_BT709, TRC_UNSPEC, TRC_SMPTE170M, TRC_SMPTE2084, TRC_ARIB_STD_B67 = 1, 2, 6, 16, 18
HDR_TRANSFERS = {TRC_SMPTE2084: "pq", TRC_ARIB_STD_B67: "hlg"}
SPC_RGB, SPC_BT709, SPC_UNSPEC, SPC_BT470BG, SPC_SMPTE170M, SPC_BT2020NC = 0, 1, 2, 5, 6, 9
RANGE_UNSPEC, RANGE_MPEG, RANGE_JPEG = 0, 1, 2

LOSSLESS_CODECS = frozenset({"ffv1", "huffyuv", "ffvhuff", "utvideo", "png", "rawvideo", "qtrle", "magicyuv"})
MAX_CONSECUTIVE_DECODE_ERRORS = 8
# A file that decodes to less than this share of the frames its header declares is truncated.
TRUNCATION_RATIO = 0.98
# No real decode timestamp precedes a chunk's first presentation timestamp by more than this many
# frames (B-frame reordering delay); one that does, or one after its own PTS, is an encoder bug
# (see ChunkWriter._mux).
MAX_DTS_LAG = 64
# FFmpeg's bwdif: one frame out per frame in (the first field's instant, the other field
# interpolated from both fields and the neighbouring frames), only on frames flagged interlaced,
# field order from each frame's own flags.
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=interlaced"
# ``AVFieldOrder`` -> name: progressive, or which field is coded / displayed first (t = top, b = bottom).
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


class ColorInfo(BaseModel):
    """Color description of a video stream (H.273 code points) and whether it was inferred."""

    primaries: int
    transfer: int
    matrix: int
    range: int
    inferred: bool = False

    @property
    def names(self) -> dict[str, str]:
        """Human-readable names, as ffprobe prints them."""
        pri = {1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
        trc = {
            1: "bt709",
            2: "unknown",
            6: "smpte170m",
            13: "iec61966-2-1",
            14: "bt2020-10",
            16: "smpte2084",
            18: "arib-std-b67",
        }
        spc = {0: "gbr", 1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
        rng = {0: "unknown", 1: "tv", 2: "pc"}
        return {
            "primaries": pri.get(self.primaries, str(self.primaries)),
            "transfer": trc.get(self.transfer, str(self.transfer)),
            "matrix": spc.get(self.matrix, str(self.matrix)),
            "range": rng.get(self.range, str(self.range)),
        }


class MasteringDisplay(BaseModel):
    """SMPTE ST 2086 mastering display colour volume: CIE 1931 xy chromaticities of the display's
    primaries and white point, and its luminance range in cd/m2."""

    red: tuple[float, float]
    green: tuple[float, float]
    blue: tuple[float, float]
    white_point: tuple[float, float]
    min_luminance: float
    max_luminance: float

    def x265(self) -> str:
        """As x265's ``master-display`` parameter (chromaticities in 0.00002, luminance in 0.0001 cd/m2)."""

        def xy(p: tuple[float, float]) -> str:
            return f"({round(p[0] * 50000)},{round(p[1] * 50000)})"

        lum = f"L({round(self.max_luminance * 10000)},{round(self.min_luminance * 10000)})"
        return f"G{xy(self.green)}B{xy(self.blue)}R{xy(self.red)}WP{xy(self.white_point)}{lum}"


class HdrInfo(BaseModel):
    """High-dynamic-range signalling of a stream: its transfer and static metadata.

    ``format`` is ``"hdr10"`` (PQ, SMPTE ST 2084) or ``"hlg"`` (ARIB STD-B67). ``max_cll`` /
    ``max_fall`` are the content light levels in cd/m2 (None: not signalled). ``dynamic`` names
    dynamic metadata the source carries (``"hdr10+"``, ``"dolby-vision"``), which Restora does not
    carry over: the output keeps the static metadata only.
    """

    format: str
    mastering_display: MasteringDisplay | None = None
    max_cll: int | None = None
    max_fall: int | None = None
    dynamic: list[str] = []

    def x265_params(self) -> list[str]:
        """x265 parameters that signal this metadata in the encoded stream (SEI)."""
        out = ["hdr10=1", "hdr10-opt=1"] if self.format == "hdr10" else []
        if self.mastering_display is not None:
            out.append(f"master-display={self.mastering_display.x265()}")
        if self.max_cll is not None or self.max_fall is not None:
            out.append(f"max-cll={self.max_cll or 0},{self.max_fall or 0}")
        return out


def side_data(frame: av.VideoFrame | None) -> list[tuple[str, bytes]]:
    """``(type name, payload)`` of a frame's side data; entries of types newer than PyAV's enum
    (which it cannot name: ``ValueError``) are skipped."""
    if frame is None:
        return []
    container: Any = frame.side_data
    out = []
    for i in range(len(container)):
        try:
            sd = container[i]
        except ValueError:
            continue
        out.append((sd.type.name, bytes(sd)))
    return out


def _rational_pairs(raw: bytes, n: int) -> list[float]:
    vals = struct.unpack(f"={2 * n}i", raw[: 8 * n])
    return [num / den if den else 0.0 for num, den in zip(vals[::2], vals[1::2], strict=True)]


def hdr_from_side_data(frame: av.VideoFrame | None, transfer: int) -> HdrInfo | None:
    """The HDR signalling of a decoded frame: its transfer (H.273 code point) and the static and
    dynamic metadata FFmpeg attached as side data (from SEI, or from the container's boxes).

    Returns:
        None for a transfer that is not PQ or HLG.
    """
    kind = HDR_TRANSFERS.get(transfer)
    if kind is None:
        return None
    info = HdrInfo(format="hdr10" if kind == "pq" else "hlg")
    for name, raw in side_data(frame):
        if name == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
            # AVMasteringDisplayMetadata: display_primaries[3][2] (R, G, B), white_point[2],
            # min_luminance, max_luminance (AVRational each), has_primaries, has_luminance (int)
            v = _rational_pairs(raw, 10)
            has_primaries, has_luminance = struct.unpack("=2i", raw[80:88])
            if has_primaries and has_luminance:
                info.mastering_display = MasteringDisplay(
                    red=(v[0], v[1]),
                    green=(v[2], v[3]),
                    blue=(v[4], v[5]),
                    white_point=(v[6], v[7]),
                    min_luminance=v[8],
                    max_luminance=v[9],
                )
        elif name == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
            info.max_cll, info.max_fall = struct.unpack("=2I", raw[:8])
        elif name == "DYNAMIC_HDR_PLUS" and "hdr10+" not in info.dynamic:
            info.dynamic.append("hdr10+")
        elif name.startswith("DOVI") and "dolby-vision" not in info.dynamic:
            info.dynamic.append("dolby-vision")
    return info


class VideoStreamInfo(BaseModel):
    """The video stream Restora restores (the first one, or the default-disposition one)."""

    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    is_rgb: bool
    frame_rate: str  # average frame rate as a fraction "num/den"
    time_base: str
    frames: int  # frames counted by demuxing
    vfr: bool
    duration_s: float
    start_pts: int | None
    color: ColorInfo
    sample_aspect_ratio: str | None
    lossless: bool
    hdr: HdrInfo | None = None  # PQ / HLG sources: their static metadata (first frame)
    # "progressive", or interlaced: "tt"/"bb"/"tb"/"bt" (coded/displayed first field) or "interlaced"
    # (frames flagged interlaced, order from each frame)
    field_order: str = "progressive"
    deinterlace: str | None = None  # the FFmpeg filter an interlaced stream is decoded through
    # interlaced: the field that filter takes as each frame's first in time, "top" or "bottom"
    # (:func:`_first_field`; what re-interlacing must follow, whatever the container declares)
    first_field: str | None = None
    # lines above the picture that carry no picture, cut on decode (IMX / D-10: 32 lines of vertical
    # blanking with VITC, WSS or teletext); ``height`` is the picture's, without them
    vbi_lines: int = 0
    # closed captions (CEA-608/708) travel inside the video stream (H.264 SEI, MPEG-2 user data): the
    # re-encoded output does not have them (PyAV cannot attach them to new frames)
    captions: bool = False
    # the Active Format Description (ETSI TS 101 154 / SMPTE 2016) code the first frames carry: how the
    # picture sits in the frame (9: 4:3 pillarboxed in 16:9), for downstream aspect switching; lost
    # with the re-encode like the captions
    afd: int | None = None
    timecode: str | None = None  # start timecode "HH:MM:SS:FF" (";" before FF: drop-frame), as the source declares it
    # display matrix of a rotated/mirrored recording (see display_orientation); frames are decoded
    # upright and ``width`` / ``height`` are the displayed size
    orientation: tuple[int, int, int, int] | None = None
    alpha: bool = False  # the pixel format carries an alpha channel (restored frames are opaque RGB)
    # decoded at one frame per field (:func:`at_field_rate`): ``frame_rate``, ``time_base``,
    # ``frames`` and ``timecode`` are then the field-rate output's, not the source stream's
    field_rate: bool = False

    @property
    def interlaced(self) -> bool:
        """Interlaced: decoded through :attr:`deinterlace`."""
        return self.deinterlace is not None

    @property
    def deep(self) -> bool:
        """More than 8 bits per sample: decoded to uint16 frames and encoded at 10 bits or more."""
        return self.bit_depth > 8


class OtherStreamInfo(BaseModel):
    """An audio, subtitle or data stream of the source (audio and subtitles are carried; data streams,
    except a timecode track, are not)."""

    index: int
    type: str
    codec: str
    language: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    layout: str | None = None
    timecode_track: bool = False  # a data stream that is a timecode track (QuickTime tmcd): carried as the timecode


class Chapter(BaseModel):
    """A chapter mark of the container (seconds on the source's timeline) and its title."""

    start_s: float
    end_s: float
    title: str | None = None


class MediaInfo(BaseModel):
    """What ``restora probe`` reports."""

    path: str
    container: str
    size_bytes: int
    duration_s: float
    video: VideoStreamInfo
    video_streams: int
    audio: list[OtherStreamInfo]
    subtitles: list[OtherStreamInfo]
    data: list[OtherStreamInfo]
    chapters: list[Chapter] = []


@dataclass
class FrameIndex:
    """Presentation timestamps of every decoded frame, in stream order.

    ``pts[i]`` is in ``time_base`` units; for streams without timestamps (raw Annex B) they are
    synthesised from the frame rate and ``has_pts`` is False (such inputs are decoded from the
    start rather than seeked).
    """

    pts: list[int]
    time_base: Fraction
    has_pts: bool
    qp: list[float] | None = None  # mean quantiser of each frame (:func:`frame_qp`); None: not exported
    qp_codec: str | None = None  # whose quantiser ``qp`` is: "h264" (QP 0-51), "mpeg2", "mpeg4" (2-62), ...
    # each frame's CEA-608 caption data (:func:`cea608_triplets`, hex; "" where none); None: no captions.
    # Source frames only: a field-rate index leaves them out (:func:`package` takes the source's index)
    captions: list[str] | None = None

    def __len__(self) -> int:
        return len(self.pts)

    def mean_qp(self, start: int, stop: int) -> float | None:
        """Mean quantiser (on the :attr:`qp_codec` scale) of frames ``[start, stop)``, or None when
        the source does not carry one."""
        if self.qp is None or not self.qp[start:stop]:
            return None
        return float(np.mean(self.qp[start:stop]))

    def at_field_rate(self) -> FrameIndex:
        """The index of a field-rate decode (:func:`at_field_rate`): two entries per frame, at
        :func:`field_pts` in half the time base; each frame's quantiser for both of its fields."""
        return FrameIndex(
            pts=field_pts(self.pts),
            time_base=self.time_base / 2,
            has_pts=self.has_pts,
            qp=[q for q in self.qp for _ in range(2)] if self.qp is not None else None,
            qp_codec=self.qp_codec,
        )


def cea608_triplets(frame: av.VideoFrame) -> bytes:
    """The CEA-608 part of a frame's ATSC A/53 caption data (H.264 SEI, MPEG-2 user data):
    ``cc_data`` triplets (marker bits, ``cc_valid``, ``cc_type``; two data bytes) that are valid
    and of type 0 or 1 (608 field 1 / field 2). CEA-708 packets (types 2, 3) are left out: a
    QuickTime ``c608`` track, where :func:`package` puts these, holds 608 only."""
    for name, payload in side_data(frame):
        if name == "A53_CC":
            triplets = (payload[i : i + 3] for i in range(0, len(payload) - 2, 3))
            return b"".join(t for t in triplets if t[0] & 0x04 and t[0] & 0x03 in (0, 1))
    return b""


# The decoder option that makes FFmpeg's H.264, MPEG-2 and VP9 decoders attach each frame's
# quantisers as AV_FRAME_DATA_VIDEO_ENC_PARAMS side data (read by :func:`frame_qp`).
EXPORT_QP = {"export_side_data": "venc_params"}
# AVVideoEncParamsType -> the quantiser scale's name: H.264 QP 0-51; MPEG-2 as FFmpeg exports it
# (twice the quantiser_scale with a linear q_scale_type: 2-62). VP9 (0) is not read.
QP_CODECS = {1: "h264", 2: "mpeg2"}


def frame_qp(frame: av.VideoFrame) -> tuple[str, float] | None:
    """``(codec, mean quantiser)`` over the macroblocks of a frame decoded with :data:`EXPORT_QP`
    (:data:`QP_CODECS`; higher = coarser), or None (another codec, or the option was not set).

    Parses FFmpeg's ``AVVideoEncParams`` (``libavutil/video_enc_params.h``, 64-bit layout):
    ``nb_blocks`` u32 at 0, ``blocks_offset`` and ``block_size`` size_t at 8 and 16, ``type`` at 24,
    frame ``qp`` i32 at 28; each ``AVVideoBlockParams`` holds its ``delta_qp`` i32 at byte 16.
    """
    sd = cast(Any, frame.side_data)  # typed as a TypedDict; it is indexable by position
    for i in range(len(sd)):  # PyAV's mapping iteration fails on some side data types; index instead
        item = sd[i]
        if item.type.name != "VIDEO_ENC_PARAMS":
            continue
        raw = bytes(item)
        nb, offset, size, kind, qp = struct.unpack_from("<I4xQQiI", raw, 0)
        if kind not in QP_CODECS:
            return None
        if nb == 0 or size < 20 or offset + nb * size > len(raw):
            return QP_CODECS[kind], float(qp)
        blocks = np.frombuffer(raw, dtype=np.uint8, count=nb * size, offset=offset).reshape(nb, size)
        delta = blocks[:, 16:20].copy().view("<i4")[:, 0]
        return QP_CODECS[kind], float(qp + delta.mean())
    return None


def qp_series(qps: Sequence[tuple[str, float] | None]) -> tuple[str, list[float]] | None:
    """The per-frame :func:`frame_qp` results of a stream as ``(codec, quantisers)``, or None unless
    all but one frame or 10 % carry one, all on the same scale. Frames without one (FFmpeg's MPEG-2
    decoder attaches none to the frame it flushes last) get the mean of the others."""
    present = [q for q in qps if q is not None]
    codecs = {c for c, _ in present}
    if len(codecs) != 1 or len(qps) - len(present) > max(1, len(qps) // 10):
        return None
    fill = float(np.mean([v for _, v in present]))
    return codecs.pop(), [fill if q is None else q[1] for q in qps]


def _open_input(path: str | os.PathLike[str]) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file")
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: not a readable media file ({exc.strerror or exc})") from exc


def _pick_video(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    videos = [s for s in container.streams.video if s.codec_context is not None]
    if not videos:
        raise InputError(f"{path}: no video stream")
    for s in videos:
        if s.disposition & 1:  # AV_DISPOSITION_DEFAULT
            return s
    return videos[0]


def infer_color(
    width: int, height: int, pri: int, trc: int, spc: int, rng: int, rate: Fraction, rgb: bool
) -> ColorInfo:
    """Fill unspecified color tags the way broadcast practice reads untagged video.

    HD and larger (width >= 1280 or height >= 720): BT.709. SD: BT.601 (``bt470bg`` primaries
    at 25/50 fps, ``smpte170m`` otherwise). A PQ or HLG transfer: BT.2020 primaries and matrix (the
    only ones HDR10 and HLG use). Range: limited (tv) for YUV, full for RGB.
    """
    inferred = False
    hd = width >= 1280 or height >= 720
    pal = rate in (Fraction(25), Fraction(50))
    if trc in HDR_TRANSFERS:
        if pri == PRI_UNSPEC:
            pri, inferred = PRI_BT2020, True
        if spc == SPC_UNSPEC and not rgb:
            spc, inferred = SPC_BT2020NC, True
    if pri == PRI_UNSPEC:
        pri, inferred = (PRI_BT709 if hd else PRI_BT470BG if pal else PRI_SMPTE170M), True
    if trc == TRC_UNSPEC:
        trc, inferred = (TRC_BT709 if hd else TRC_SMPTE170M), True
    if spc == SPC_UNSPEC and not rgb:
        spc, inferred = (SPC_BT709 if hd else SPC_BT470BG if pal else SPC_SMPTE170M), True
    if rgb:
        spc = SPC_RGB
    if rng == RANGE_UNSPEC:
        rng, inferred = (RANGE_JPEG if rgb else RANGE_MPEG), True
    return ColorInfo(primaries=pri, transfer=trc, matrix=spc, range=rng, inferred=inferred)


def _bit_depth(fmt: av.VideoFormat) -> int:
    return max((c.bits for c in fmt.components), default=8)


def _is_rgb(fmt: av.VideoFormat) -> bool:
    return bool(fmt.is_rgb) or fmt.name.startswith(("gbr", "bgr", "rgb"))


Orientation = tuple[int, int, int, int]  # (a, b, c, d) of a display matrix, each -1, 0 or 1


def display_orientation(frame: av.VideoFrame | None, path: Path) -> Orientation | None:
    """The rotation/mirroring a frame's display matrix asks for (phones record upright video as
    rotated landscape): ``(a, b, c, d)`` of FFmpeg's matrix, mapping a coded pixel ``(x, y)`` to
    ``(a x + c y, b x + d y)`` plus a translation; None when absent or the identity.

    Raises:
        UnsupportedInputError: a rotation that is not a multiple of 90 degrees.
    """
    for name, raw in side_data(frame):
        if name == "DISPLAYMATRIX":
            return orientation_of(struct.unpack("=9i", raw[:36]), path)
    return None


def orientation_of(m: Sequence[int], path: Path | str = "input") -> Orientation | None:
    """:func:`display_orientation` of FFmpeg's 3x3 display matrix ``m`` (row-major, 16.16 fixed point)."""
    # each column normalised by its length, as av_display_rotation_get does (a scale is no rotation)
    s0, s1 = math.hypot(m[0], m[3]) or 1.0, math.hypot(m[1], m[4]) or 1.0
    unit = (m[0] / s0, m[1] / s1, m[3] / s0, m[4] / s1)
    a, b, c, d = (round(v) for v in unit)
    right = all(abs(v - r) < 1e-3 for v, r in zip(unit, (a, b, c, d), strict=True)) and abs(a * d - b * c) == 1
    if not right:
        angle = math.degrees(math.atan2(unit[1], unit[0]))
        raise UnsupportedInputError(f"{path}: the display matrix rotates by {angle:.1f} degrees, not a right angle")
    return None if (a, b, c, d) == (1, 0, 0, 1) else (a, b, c, d)


def orient(rgb: Frames, m: Orientation | None) -> Frames:
    """``(H, W, 3)`` coded picture -> as displayed under orientation ``m`` (:func:`display_orientation`)."""
    if m is None:
        return rgb
    a, b, c, d = m
    out = rgb.transpose(1, 0, 2) if a == 0 else rgb  # a = 0: x' follows y and y' follows x
    x_sign, y_sign = (c, b) if a == 0 else (a, d)
    if x_sign < 0:
        out = out[:, ::-1]
    if y_sign < 0:
        out = out[::-1]
    return np.ascontiguousarray(out)


def rotation_text(m: Orientation | None) -> str:
    """``"none"``, or the clockwise rotation in degrees, with ``", mirrored"`` for a reflection."""
    if m is None:
        return "none"
    a, b, c, d = m
    degrees = round(math.degrees(math.atan2(b, a))) % 360
    return f"{degrees} degrees clockwise" + (", mirrored" if a * d - b * c < 0 else "")


def deinterlace_filter(field_order: str, flagged: bool) -> str | None:
    """The bwdif filter for a stream: None if progressive; :data:`DEINTERLACE` (per-frame flags and
    order) when the decoder flags its frames interlaced; else, for a field order only the container
    declares (codecs whose decoders set no flag: HuffYUV, MJPEG...), every frame at that order."""
    if field_order == "progressive":
        return None
    if flagged or field_order not in ("tt", "bb", "tb", "bt"):
        return DEINTERLACE
    parity = "tff" if field_order in ("tt", "bt") else "bff"  # the field displayed first
    return f"bwdif=mode=send_frame:parity={parity}:deint=all"


def second_field_pts(pts: int, next_pts: int | None, prev_pts: int | None) -> int:
    """Timestamp, in half the stream's time base, of the second field of a frame at ``pts``:
    halfway to the next frame's, or for the last frame one field after its first field's at the
    previous frame's spacing (as bwdif stamps them). The first field is at ``2 * pts``."""
    if next_pts is not None:
        return pts + next_pts
    if prev_pts is None:
        raise ValueError("a field-rate decode needs at least two frames")
    return 3 * pts - prev_pts


def field_pts(pts: Sequence[int]) -> list[int]:
    """Both fields' timestamps (:func:`second_field_pts`) of frames at ``pts`` (stream order,
    at least two frames), in half the stream's time base."""
    out: list[int] = []
    for k, p in enumerate(pts):
        nxt = pts[k + 1] if k + 1 < len(pts) else None
        out += [2 * p, second_field_pts(p, nxt, pts[k - 1] if k else None)]
    return out


def field_rate_filter(spec: str) -> str:
    """The field-rate form of a bwdif ``spec`` (:func:`deinterlace_filter`): one frame out per
    field, and every frame deinterlaced (``deint=all``: a frame flagged progressive would give
    one frame, not two, and the output would lose its constant rate)."""
    return spec.replace("mode=send_frame", "mode=send_field").replace("deint=interlaced", "deint=all")


def _timecode_at_double_rate(tc: str) -> str:
    """A start timecode ``HH:MM:SS:FF`` (``;`` before FF: drop-frame) counted at twice the frame
    rate: the same instant, frame number doubled."""
    head, sep, ff = tc[:-3], tc[-3], tc[-2:]
    return f"{head}{sep}{2 * int(ff):02d}" if sep in ":;." and ff.isdigit() else tc


def at_field_rate(info: MediaInfo) -> MediaInfo:
    """``info`` of an interlaced source as restored at one frame per field (50i -> 50p, 59.94i ->
    59.94p): twice the frame rate and the frames, half the time base (the second field's instant
    lies between two frames' timestamps, :func:`field_pts`), bwdif in field mode
    (:func:`field_rate_filter`), the start timecode counted at the new rate. Progressive sources
    and single-frame ones are returned unchanged.

    The frame index goes with it: :meth:`FrameIndex.at_field_rate`.
    """
    v = info.video
    if v.deinterlace is None or v.field_rate or v.frames < 2:
        return info
    rate, tb = Fraction(v.frame_rate) * 2, Fraction(v.time_base) / 2
    video = v.model_copy(
        update={
            "frame_rate": f"{rate.numerator}/{rate.denominator}",
            "time_base": f"{tb.numerator}/{tb.denominator}",
            "frames": 2 * v.frames,
            "start_pts": None if v.start_pts is None else 2 * v.start_pts,
            "deinterlace": field_rate_filter(v.deinterlace),
            "timecode": None if v.timecode is None else _timecode_at_double_rate(v.timecode),
            "field_rate": True,
        }
    )
    return info.model_copy(update={"video": video})


# IMX / D-10 (SMPTE 356M): MPEG-2 4:2:2 frames of 608 (625-line) or 512 (525-line) lines, the top 32
# of them vertical blanking recorded with the picture; the picture is the 576 / 480 below
IMX_SIZES = frozenset({(720, 608), (720, 512)})
IMX_VBI_LINES = 32

FIRST_FIELD_FRAMES = 8  # frames looked at to tell which field bwdif takes first (a still one cannot tell)


class _Peek(NamedTuple):
    """What :func:`_peek` read off the first decoded frames."""

    hdr: HdrInfo | None
    field_order: str
    deinterlace: str | None
    first_field: str | None
    orientation: Orientation | None
    captions: bool
    afd: int | None


def _peek(path: Path, transfer: int, field_order: int, frames: int = 4) -> _Peek:
    """What only decoded frames tell, from one decode of the first few: the HDR metadata and
    display orientation of the first frame (both per stream); for a stream not declared
    progressive, whether its first ``frames`` are flagged interlaced, hence its field order and
    deinterlacer (:func:`deinterlace_filter`), and then which field that takes first
    (:func:`_first_field`, over :data:`FIRST_FIELD_FRAMES`); whether they carry closed captions
    (CEA-608/708 in the video stream's SEI or user data) and an Active Format Description (its code)."""
    order = FIELD_ORDERS.get(field_order, "unknown")
    with _open_input(path) as c:
        vs = _pick_video(c, path)
        n = frames if order == "progressive" else max(frames, FIRST_FIELD_FRAMES)
        raw = list(itertools.islice(_decode(c, vs, path), n))
        peeked = raw[:frames]
        flagged = any(f.interlaced_frame for f in peeked)
        if order == "unknown":
            order = "interlaced" if flagged else "progressive"
        spec = deinterlace_filter(order, flagged)
        first_field = None if spec is None else _first_field(vs, raw, spec, order)
    first = peeked[0] if peeked else None
    marks = [(name, payload) for f in peeked for name, payload in side_data(f)]
    return _Peek(
        hdr=hdr_from_side_data(first, transfer),
        field_order=order,
        deinterlace=spec,
        first_field=first_field,
        orientation=display_orientation(first, path),
        captions=any(name == "A53_CC" for name, _ in marks),
        afd=next((payload[0] for name, payload in marks if name == "AFD" and payload), None),
    )


def _luma_rows(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The luma plane's bytes, ``(height, width * bytes per sample)``, padding cut."""
    plane = frame.planes[0]
    n = plane.width * (2 if frame.format.components[0].bits > 8 else 1)
    return np.frombuffer(bytes(plane), np.uint8).reshape(plane.height, plane.line_size)[:, :n]


def _first_field(vs: VideoStream, raw: list[av.VideoFrame], spec: str, declared: str) -> str:
    """``"top"`` or ``"bottom"``: the field bwdif (``spec``, at field rate) takes as the first in
    time, read off the ``raw`` first frames of ``vs``: a field-rate picture keeps its own field's
    lines of the source frame untouched and interpolates the others. PyAV exposes no frame's
    field-order flag, and the container's declaration can disagree with the frames' flags bwdif
    follows (x264 ``tff=1`` streams decode as bottom first). Frames where both or neither parity
    match (still or flat pictures) are skipped; if none tells, the ``declared`` order (``"tt"``...)
    decides."""
    fields = list(deinterlaced(vs, iter(raw), field_rate_filter(spec))) if len(raw) > 1 else []
    for src, first in zip(raw, fields[0::2], strict=False):
        a, b = _luma_rows(src), _luma_rows(first)
        top, bottom = np.array_equal(a[0::2], b[0::2]), np.array_equal(a[1::2], b[1::2])
        if top != bottom:
            return "top" if top else "bottom"
    return "bottom" if declared in ("bb", "tb") else "top"


def _timecode(c: av.container.InputContainer, vs: VideoStream) -> str | None:
    """The start timecode: the video stream's ``timecode`` tag, else a timecode track's (QuickTime
    tmcd, another stream), else the container's; any letter case (Matroska writes ``TIMECODE``)."""
    for meta in (vs.metadata, *(s.metadata for s in c.streams if s is not vs), c.metadata):
        for key, value in meta.items():
            if key.lower() == "timecode" and value:
                return str(value)
    return None


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe a media file by demuxing it, and decoding its first frame or four (HDR metadata,
    display matrix, interlacing: what only frames carry).

    Raises:
        InputError: missing file, not media, no video stream, or no video packets.
    """
    p = Path(path)
    with _open_input(p) as c:
        vs = _pick_video(c, p)
        cc = vs.codec_context
        if cc.format is None or not cc.width or not cc.height:
            raise InputError(f"{p}: video stream {vs.index} has no decodable picture size")
        pts: list[int] = []
        n_packets = 0
        try:
            for pkt in c.demux(vs):
                if pkt.size == 0:
                    continue
                n_packets += 1
                if pkt.pts is not None:
                    pts.append(pkt.pts)
        except av.error.FFmpegError as exc:
            raise InputError(f"{p}: damaged stream while demuxing ({exc})") from exc
        if n_packets == 0:
            raise InputError(f"{p}: video stream has no packets")
        tb = vs.time_base or Fraction(1, 90000)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(25)
        pts.sort()
        deltas = np.diff(np.asarray(pts, dtype=np.int64)) if len(pts) > 2 else np.asarray([], dtype=np.int64)
        vfr = False
        if deltas.size:
            med = float(np.median(deltas))
            vfr = bool(med > 0 and np.any(np.abs(deltas.astype(np.float64) - med) > max(1.5, 0.02 * med)))
        if len(pts) == n_packets and len(pts) > 1:
            dur = float((pts[-1] - pts[0]) * tb) + float(1 / rate)
            if len(pts) > 2:
                rate = Fraction(len(pts) - 1) / Fraction((pts[-1] - pts[0]) * tb)
                rate = rate.limit_denominator(1001 * 1000)
                if vs.average_rate and abs(float(vs.average_rate) - float(rate)) < 1e-3 * float(rate):
                    rate = Fraction(vs.average_rate)
        else:
            dur = n_packets / float(rate)
        fmt = cc.format
        rgb = _is_rgb(fmt)
        color = infer_color(
            cc.width,
            cc.height,
            int(cc.color_primaries),
            int(cc.color_trc),
            int(cc.colorspace),
            int(cc.color_range),
            Fraction(rate),
            rgb,
        )
        others: dict[str, list[OtherStreamInfo]] = {"audio": [], "subtitle": [], "data": []}
        for s in c.streams:
            if s.type == "video" or s.type not in others:
                continue
            sc = s.codec_context
            info = OtherStreamInfo(
                index=s.index,
                type=s.type,
                codec=sc.name if sc is not None else "unknown",
                language=s.metadata.get("language"),
                timecode_track=s.type == "data" and any(k.lower() == "timecode" for k in s.metadata),
            )
            if s.type == "audio" and isinstance(sc, av.audio.codeccontext.AudioCodecContext):
                info.sample_rate, info.channels = sc.sample_rate, sc.channels
                info.layout = sc.layout.name if sc.layout is not None else None
            others[s.type].append(info)
        sar = cc.sample_aspect_ratio
        peek = _peek(p, color.transfer, int(cc.field_order))
        orientation = peek.orientation
        width, height = (cc.height, cc.width) if orientation and orientation[0] == 0 else (cc.width, cc.height)
        vbi = IMX_VBI_LINES if cc.name == "mpeg2video" and (cc.width, cc.height) in IMX_SIZES else 0
        height -= vbi
        if sar and orientation and orientation[0] == 0:
            sar = Fraction(sar.denominator, sar.numerator)  # pixels turned on their side
        timecode = _timecode(c, vs)
        video = VideoStreamInfo(
            index=vs.index,
            codec=cc.name,
            profile=cc.profile,
            width=width,
            height=height,
            pix_fmt=fmt.name,
            bit_depth=_bit_depth(fmt),
            is_rgb=rgb,
            frame_rate=f"{rate.numerator}/{rate.denominator}",
            time_base=f"{tb.numerator}/{tb.denominator}",
            frames=n_packets,
            vfr=vfr,
            duration_s=round(dur, 6),
            start_pts=pts[0] if pts else None,
            color=color,
            sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar else None,
            lossless=cc.name in LOSSLESS_CODECS,
            hdr=peek.hdr,
            field_order=peek.field_order,
            deinterlace=peek.deinterlace,
            first_field=peek.first_field,
            vbi_lines=vbi,
            captions=peek.captions,
            afd=peek.afd,
            timecode=timecode,
            orientation=orientation,
            alpha=len(fmt.components) in (2, 4),  # gray + alpha, or color + alpha
        )
        container_dur = float(c.duration) / 1e6 if c.duration else dur
        chapters = [
            Chapter(
                start_s=float(ch["start"] * (ch["time_base"] or Fraction(1, 1_000_000))),
                end_s=float(ch["end"] * (ch["time_base"] or Fraction(1, 1_000_000))),  # AV_TIME_BASE if unset
                title=ch["metadata"].get("title"),
            )
            for ch in c.chapters()
        ]
        return MediaInfo(
            path=str(p),
            container=c.format.name,
            size_bytes=p.stat().st_size,
            duration_s=round(container_dur, 6),
            video=video,
            video_streams=len(c.streams.video),
            audio=others["audio"],
            subtitles=others["subtitle"],
            data=others["data"],
            chapters=chapters,
        )


def _src_colorspace(color: ColorInfo) -> int | None:
    from av.video.reformatter import Colorspace

    return {
        SPC_BT709: Colorspace.ITU709,
        SPC_BT470BG: Colorspace.ITU601,
        SPC_SMPTE170M: Colorspace.SMPTE170M,
        SPC_BT2020NC: Colorspace.BT2020,
    }.get(color.matrix)


def _to_rgb(frame: av.VideoFrame, video: VideoStreamInfo, deep: bool = False) -> Frames:
    """``(H, W, 3)`` RGB as displayed (IMX's blanking lines cut, :attr:`VideoStreamInfo.vbi_lines`;
    oriented by the stream's display matrix): uint8 (``rgb24``), or uint16 on the full 16-bit scale
    (``rgb48le``) if ``deep``."""
    fmt, color = ("rgb48le" if deep else "rgb24"), video.color
    rgb: Frames
    if _is_rgb(frame.format):
        rgb = np.asarray(frame.to_ndarray(format=fmt))
    else:
        rgb = np.asarray(
            frame.to_ndarray(
                format=fmt, src_colorspace=_src_colorspace(color), src_color_range=color.range or RANGE_MPEG
            )
        )
    return orient(rgb[video.vbi_lines :] if video.vbi_lines else rgb, video.orientation)


def _decode(c: av.container.InputContainer, vs: av.video.stream.VideoStream, path: Path) -> Iterator[av.VideoFrame]:
    """Decode ``vs`` in presentation order, tolerating isolated corrupt packets."""
    failures = 0
    for pkt in c.demux(vs):
        try:
            frames = pkt.decode()
            failures = 0
        except av.error.InvalidDataError as exc:
            failures += 1
            if failures > MAX_CONSECUTIVE_DECODE_ERRORS:
                raise InputError(f"{path}: {failures} consecutive undecodable packets ({exc})") from exc
            continue
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding failed ({exc})") from exc
        yield from frames


def deinterlaced(
    vs: av.video.stream.VideoStream, frames: Iterable[av.VideoFrame], spec: str = DEINTERLACE
) -> Iterator[av.VideoFrame]:
    """``frames`` of ``vs`` through the bwdif filter ``spec``: one frame out per frame in, same PTS and
    order, each made of its first field and an interpolated second one. The filter reads a frame's
    neighbours, so it lags one frame; the end of ``frames`` flushes it.

    In field mode (``mode=send_field``, :func:`field_rate_filter`) two frames come out per frame in,
    one per field, stamped in half the stream's time base by :func:`second_field_pts` (the
    timestamps :meth:`FrameIndex.at_field_rate` lists); a frame without PTS gives fields without.
    (bwdif halves the time base for its field-rate mode: outputs are re-stamped here either way.)"""
    graph = av.filter.Graph()
    name, _, args = spec.partition("=")
    graph.link_nodes(graph.add_buffer(template=vs), graph.add(name, args), graph.add("buffersink")).configure()
    fields = "mode=send_field" in spec
    stamps: collections.deque[tuple[int | None, Fraction | None]] = collections.deque()
    prev: list[int | None] = [None]  # field mode: PTS of the last frame whose fields are out
    pulled = [0]

    def stamp(out: av.VideoFrame) -> None:
        if not fields:
            out.pts, out.time_base = stamps.popleft()
            return
        pts, tb = stamps[0]
        nxt = stamps[1][0] if len(stamps) > 1 else None
        if pulled[0] % 2 == 0:
            out.pts = None if pts is None else 2 * pts
        else:
            out.pts = None if pts is None else second_field_pts(pts, nxt, prev[0])
            prev[0] = pts
            stamps.popleft()
        out.time_base = tb / 2 if tb is not None else None
        pulled[0] += 1

    def drain() -> Iterator[av.VideoFrame]:
        while True:
            try:
                out = graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            stamp(out)
            yield out

    for frame in frames:
        stamps.append((frame.pts, frame.time_base))
        graph.vpush(frame)
        yield from drain()
    graph.vpush(None)
    yield from drain()


SEEK_START_MARGIN_S = 10  # a seek this long before the first frame's PTS lands at the file's start


def _pictures(
    c: av.container.InputContainer,
    vs: av.video.stream.VideoStream,
    path: Path,
    video: VideoStreamInfo,
    decoded: Iterator[av.VideoFrame] | None = None,
) -> Iterator[av.VideoFrame]:
    """Decoded pictures in presentation order (``decoded``, else from where ``c`` stands),
    deinterlaced when the stream is interlaced."""
    decoded = decoded if decoded is not None else _decode(c, vs, path)
    return deinterlaced(vs, decoded, video.deinterlace) if video.deinterlace else decoded


def _decode_at_or_before(
    c: av.container.InputContainer, vs: av.video.stream.VideoStream, path: Path, pts: Sequence[int], k: int
) -> Iterator[av.VideoFrame]:
    """Decoded frames from a keyframe at or before frame ``k`` (``pts``: every frame's, stream order).

    Demuxers without an index (MPEG-TS and MPEG-PS: the broadcast containers) bisect the file for a
    decode timestamp and do not know which packets are keyframes: the seek lands on a packet just
    before the target, and the decoder starts at the next keyframe, past frame ``k`` (or, near the
    end, finds none). Such a seek is retried from frames further back (1, 2, 4, ... frames), then
    from before the first frame (its keyframe's DTS can lie below every PTS): the file's start.
    """
    tb = vs.time_base or Fraction(1, 90000)
    targets = [pts[max(k - back, 0)] for back in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256) if back < 2 * max(k, 1)]
    for target in [*dict.fromkeys(targets), pts[0] - int(SEEK_START_MARGIN_S / tb)]:
        c.seek(target, stream=vs, backward=True, any_frame=False)
        decoded = _decode(c, vs, path)
        head = next(decoded, None)
        if head is not None and (head.pts is None or head.pts <= pts[k]):
            break
    return decoded if head is None else itertools.chain([head], decoded)


def scan(
    path: str | os.PathLike[str],
    info: MediaInfo,
    thumb: tuple[int, int] = (64, 36),
    progress: Callable[[int], None] | None = None,
) -> tuple[FrameIndex, npt.NDArray[np.uint8], str]:
    """Decode every frame once: timestamps, small luma thumbnails for shot detection, quantisers,
    closed captions (wherever in the stream they start), and a hash.

    Args:
        path: the media file.
        info: its :func:`probe` result.
        thumb: thumbnail ``(width, height)``.
        progress: called with the number of frames decoded so far.

    Returns:
        ``(index, thumbs, digest)``: the frame index, ``(T, th, tw)`` uint8 luma thumbnails, and the
        sha256 of the file's bytes.

    Raises:
        InputError: the stream is truncated (fewer frames decode than its packets promise) or
            undecodable.
    """
    p = Path(path)
    tw, th = thumb
    pts: list[int] = []
    qps: list[tuple[str, float] | None] = []
    thumbs: list[U8] = []
    captions: list[str] = []
    with _open_input(p) as c:
        vs = _pick_video(c, p)
        vs.thread_type = "AUTO"
        vs.codec_context.options = EXPORT_QP
        tb = vs.time_base or Fraction(1, 90000)
        rate = Fraction(info.video.frame_rate)
        vbi = round(th * info.video.vbi_lines / info.video.height)  # thumbnail rows of blanking
        has_pts = True
        for frame in _decode(c, vs, p):
            if frame.pts is None:
                has_pts = False
            pts.append(frame.pts if frame.pts is not None else 0)
            qps.append(frame_qp(frame))
            captions.append(cea608_triplets(frame).hex())  # every frame: captions may start after probe's peek
            g = frame.reformat(width=tw, height=th + vbi, format="gray")
            thumbs.append(np.asarray(g.to_ndarray()[vbi:], dtype=np.uint8))  # IMX: the picture, not its blanking
            if progress is not None and len(pts) % 25 == 0:
                progress(len(pts))
    if not pts:
        raise InputError(f"{p}: no video frame could be decoded")
    if len(pts) < TRUNCATION_RATIO * info.video.frames:
        raise InputError(f"{p}: truncated or damaged: decoded {len(pts)} of {info.video.frames} frames")
    if not has_pts:
        step = 1 / (rate * tb)
        pts = [round(i * step) for i in range(len(pts))]
    digest = sha256_file(p)
    series = qp_series(qps)
    if series and series[0] == "mpeg2" and info.video.codec != "mpeg2video":
        # FFmpeg's MPEG-1, MPEG-4 Part 2 and H.263 decoders share the MPEG-2 code and export the same
        # kind of quantiser: keep it under the stream's own codec name ("mpeg4": its own ramp; the
        # others, not calibrated: none)
        series = (info.video.codec, series[1])
    index = FrameIndex(pts=pts, time_base=Fraction(tb), has_pts=has_pts,
                       qp=series[1] if series else None, qp_codec=series[0] if series else None,
                       captions=captions if any(captions) else None)  # fmt: skip
    return index, np.stack(thumbs), digest


def first_frames(path: str | os.PathLike[str], limit: int) -> list[U8]:
    """The first ``limit`` frames in presentation order as ``(H, W, 3)`` uint8 RGB, converted as
    :func:`read_frames` converts them (the stream's own matrix and range). For training and
    evaluation material that needs no frame index; the pipeline reads with :func:`read_frames`.

    Raises:
        InputError: as :func:`probe`, or undecodable.
    """
    p = Path(path)
    video = probe(p).video
    out: list[U8] = []
    with _open_input(p) as c:
        vs = _pick_video(c, p)
        vs.thread_type = "AUTO"
        for frame in _pictures(c, vs, p, video):
            out.append(_to_rgb(frame, video))
            if len(out) >= limit:
                break
    return out


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_frames(
    path: str | os.PathLike[str],
    info: MediaInfo,
    index: FrameIndex,
    start: int,
    stop: int,
    batch: int = 8,
    deep: bool | None = None,
) -> Iterator[tuple[list[int], Frames]]:
    """Decode frames ``[start, stop)`` (stream order) as RGB batches.

    Seeks to the keyframe before ``start`` when the stream has timestamps, else decodes from the
    beginning and counts frames.

    Yields:
        ``(pts, frames)``: source timestamps and ``(n, H, W, 3)`` RGB, ``n <= batch``: uint8 for
        8-bit sources, uint16 (0-65535) for deeper ones (:attr:`VideoStreamInfo.deep`) or if ``deep``.
    """
    p = Path(path)
    if not 0 <= start < stop <= len(index):
        raise ValueError(f"frame range [{start}, {stop}) outside 0..{len(index)}")
    deep, interlaced = (info.video.deep if deep is None else deep), info.video.interlaced
    want = index.pts[start:stop]
    buf: list[Frames] = []
    buf_pts: list[int] = []
    delivered = 0
    with _open_input(p) as c:
        vs = _pick_video(c, p)
        vs.thread_type = "AUTO"
        counter = 0
        decoded: Iterator[av.VideoFrame] | None = None
        if index.has_pts and start > 0:
            # the deinterlacer reads the frame before: start decoding at or before it (at field
            # rate, frame k's fields are entries 2k and 2k + 1, the first at twice its PTS)
            if info.video.field_rate:
                frame_pts, first = [t // 2 for t in index.pts[::2]], max(start // 2 - 1, 0)
            else:
                frame_pts, first = index.pts, start - 1 if interlaced else start
            decoded = _decode_at_or_before(c, vs, p, frame_pts, first)
            counter = -1  # frame numbers unknown after a seek: match on pts instead
        wanted = set(want) if counter < 0 else None
        for frame in _pictures(c, vs, p, info.video, decoded):
            if wanted is not None:
                if frame.pts is None or frame.pts < want[0]:
                    continue
                if frame.pts not in wanted:
                    if frame.pts > want[-1]:
                        break
                    continue
                fpts = frame.pts
            else:
                i = counter
                counter += 1
                if i < start:
                    continue
                if i >= stop:
                    break
                fpts = index.pts[i]
            buf.append(_to_rgb(frame, info.video, deep))
            buf_pts.append(fpts)
            delivered += 1
            if len(buf) == batch:
                yield buf_pts, np.stack(buf)
                buf, buf_pts = [], []
            if delivered == len(want):
                break
    if buf:
        yield buf_pts, np.stack(buf)
    if delivered != len(want):
        raise InputError(f"{p}: expected {len(want)} frames in [{start}, {stop}), decoded {delivered}")


class EncodeParams(BaseModel):
    """How the video stream of an output is encoded (the same for every chunk of a run)."""

    # "libx264", "libx265" (HDR), "prores_ks" (ProRes sources), "ffv1" (lossless), "dnxhd" (MXF) or
    # "mpeg2video" (interlaced MXF)
    codec: str
    pix_fmt: str
    width: int
    height: int
    time_base: str
    frame_rate: str
    color: ColorInfo
    crf: float = 16.0
    preset: str = "fast"
    sample_aspect_ratio: str | None = None
    hdr: HdrInfo | None = None
    profile: str | None = None  # prores_ks: the source's ProRes profile number (PRORES_PROFILES); dnxhd: DNxHR profile
    # "tt" / "bb": interlaced output, top / bottom field first: the chunk writer weaves pairs of
    # field-rate pictures into frames (:func:`weave`) at ``frame_rate`` (half the decode's)
    field_order: str | None = None

    @property
    def bits(self) -> int:
        """Bits per sample of ``pix_fmt`` (8, 10, 12 or 16): frames deeper than 8 are decoded as uint16."""
        return next((b for b in (10, 12, 16) if f"{b}le" in self.pix_fmt or f"{b}be" in self.pix_fmt), 8)

    def options(self) -> dict[str, str]:
        """Encoder options for PyAV's ``codec_context.options``."""
        if self.codec == "libx264":  # interlaced: MBAFF, the field order taken from each frame's flag
            interlaced = {"x264-params": "interlaced=1"} if self.field_order else {}
            return {"crf": f"{self.crf:g}", "preset": self.preset, **interlaced}
        if self.codec == "prores_ks":
            return {
                "profile": self.profile or "3",
                "vendor": "apl0",
                **({"flags": "+ildct"} if self.field_order else {}),
            }
        if self.codec == "libx265":
            # repeat-headers: every chunk (and every keyframe) carries its parameter sets and HDR SEI
            params = ["log-level=error", "repeat-headers=1", *(self.hdr.x265_params() if self.hdr else [])]
            return {"crf": f"{self.crf:g}", "preset": self.preset, "x265-params": ":".join(params)}
        if self.codec == "ffv1":
            return {"level": "3", "slicecrc": "1", "g": "1"}
        if self.codec == "dnxhd":
            return {"profile": self.profile or "dnxhr_hq"}
        if self.codec == "mpeg2video":  # XDCAM HD422 style: constant 50 Mbit/s (SD 30), closed long GOP of 12
            bps = "50M" if self.width >= 1280 else "30M"
            return {
                "b": bps,
                "minrate": bps,  # constant rate, as XDCAM HD422 is (the encoder pads easy pictures)
                "maxrate": bps,
                "bufsize": "17825792",
                "rc_init_occupancy": "17825792",
                "g": "12",
                "bf": "2",
                "flags": "+ilme+ildct+cgop" if self.field_order else "+cgop",
                "sc_threshold": "1000000000",  # closed GOPs need a fixed GOP (no scene-cut I-frames)
                "intra_vlc": "1",
                "non_linear_quant": "1",
                "dc": "10",
                "qmin": "1",
                "qmax": "28",  # the non-linear quantiser's limit
            }
        return {}


# FFmpeg's names of the ProRes profiles -> prores_ks ``profile`` numbers.
PRORES_PROFILES = {"Proxy": "0", "LT": "1", "Standard": "2", "HQ": "3", "4444": "4", "XQ": "5"}


def choose_encode(
    info: MediaInfo,
    scale: int,
    output: str | os.PathLike[str],
    crf: float,
    preset: str,
    bit_depth: int | None = None,
    reinterlace: bool = False,
    mxf_codec: str | None = None,
) -> EncodeParams:
    """Pick the output codec and sample format from the source (and ``bit_depth``, 8 or 10, when
    the user asks for one: 10-bit output of an 8-bit source keeps the restored gradients' precision).

    ``reinterlace``: ``info`` is an interlaced source decoded at field rate (:func:`at_field_rate`),
    and the output weaves each pair of restored field pictures back into an interlaced frame, at the
    source's frame rate, time base and first field (H.264 MBAFF, interlaced ProRes, FFV1 with its
    field order declared, or in MXF long-GOP MPEG-2 4:2:2 as XDCAM HD422: DNxHR has no interlaced
    coding). Not HEVC (x265 codes fields as separate pictures): :class:`ConfigError`.

    ``mxf_codec`` (MXF output only): ``"xdcam"`` makes progressive MXF XDCAM HD422 too (8-bit MPEG-2
    4:2:2, closed long GOP of 12, 50 Mbit/s HD, 30 SD), what many playout servers take; ``"dnxhr"``
    refuses re-interlacing; None: DNxHR, or XDCAM HD422 re-interlaced.

    - Lossless sources stay lossless (FFV1) in Matroska/NUT, at their chroma subsampling and bit
      depth (8, 10, 12 or 16 bits; RGB stays RGB).
    - HDR sources (PQ or HLG transfer) become 10-bit HEVC (x265 Main 10 / Main 4:2:2 10 / Main 4:4:4
      10) with their transfer, BT.2020 tags and static metadata (mastering display, content light
      level) written as SEI: what HDR10 and HLG delivery expects, and what 8-bit would band.
    - ProRes sources stay ProRes (the same profile, 4:2:2 or 4:4:4 10-bit) in MOV/Matroska: the
      mezzanine a post-production chain expects back (intra-only, so chunks join at any frame).
    - MXF output is DNxHR (intra-only, what playout and Avid ingest take): HQ (8-bit 4:2:2) for
      8-bit sources, HQX (10-bit 4:2:2) for deeper or HDR ones, 444 (10-bit 4:4:4) for 4:4:4 and
      RGB sources; 4:2:0 becomes 4:2:2. Constant frame rate at an MXF edit rate and at least
      256x120 (:func:`restora.containers.check_mxf_video`).
    - Everything else is H.264 at the source's chroma subsampling, High 10 for sources deeper than 8 bits.
    """
    v = info.video
    fmt = output_format(output)
    if reinterlace and (not v.field_rate or v.first_field is None):
        raise ConfigError("--reinterlace needs an interlaced source; this one is progressive")
    deep = v.deep if bit_depth is None else bit_depth > 8
    if not deep and v.color.transfer in HDR_TRANSFERS:
        raise ConfigError("an HDR (PQ/HLG) source needs 10-bit output: 8 bits would band it; drop --bit-depth 8")
    sub = "444" if ("444" in v.pix_fmt or v.is_rgb) else "422" if "422" in v.pix_fmt else "420"
    hdr, profile = None, None
    if mxf_codec is not None and fmt != "mxf":
        raise ConfigError(f"--mxf-codec is for .mxf output, not {Path(output).suffix or 'this output'}")
    if fmt == "mxf" and reinterlace and mxf_codec == "dnxhr":
        raise ConfigError("DNxHR has no interlaced coding: re-interlaced MXF is XDCAM HD422 (drop --mxf-codec dnxhr)")
    if fmt == "mxf" and (reinterlace or mxf_codec == "xdcam"):  # XDCAM HD422
        if deep:
            raise ConfigError("XDCAM HD422 is 8-bit MPEG-2 4:2:2: add --bit-depth 8 for this deeper source")
        frame_rate = str(Fraction(v.frame_rate) / 2) if reinterlace else v.frame_rate  # fields -> frames
        check_mxf_video(v.width * scale, v.height * scale, frame_rate, v.vfr, mpeg2=True)
        codec, pix_fmt = "mpeg2video", "yuv422p"
    elif fmt == "mxf":
        check_mxf_video(v.width * scale, v.height * scale, v.frame_rate, v.vfr)
        codec = "dnxhd"
        if sub == "444":
            profile, pix_fmt = "dnxhr_444", "yuv444p10le"
        else:
            profile, pix_fmt = ("dnxhr_hqx", "yuv422p10le") if deep else ("dnxhr_hq", "yuv422p")
    elif v.lossless and fmt in ("matroska", "nut"):
        codec = "ffv1"
        depth = "" if not deep else next(f"{d}le" for d in (10, 12, 16) if max(v.bit_depth, 10) <= d)
        pix_fmt = ("bgr0" if not deep else f"gbrp{depth}") if v.is_rgb else f"yuv{sub}p{depth}"
    elif v.codec == "prores" and fmt in ("mov", "matroska") and deep:
        full = sub == "444"  # 4444 / XQ decode to 4:4:4 (12-bit); 422 profiles to 4:2:2 10-bit
        profile = PRORES_PROFILES.get(v.profile or "", "4" if full else "3")
        codec, pix_fmt = "prores_ks", "yuv444p10le" if full or profile in ("4", "5") else "yuv422p10le"
    elif v.color.transfer in HDR_TRANSFERS:
        codec, pix_fmt = "libx265", f"yuv{sub}p10le"
        hdr = v.hdr or HdrInfo(format="hdr10" if HDR_TRANSFERS[v.color.transfer] == "pq" else "hlg")
    else:
        codec = "libx264"
        pix_fmt = f"yuv{sub}p10le" if deep else f"yuv{sub}p"
    w, h = v.width * scale, v.height * scale
    if pix_fmt.startswith("yuv420") and (w % 2 or h % 2):
        raise UnsupportedInputError(f"{w}x{h} output cannot be 4:2:0 (odd size); use --scale 2 or an even-sized input")
    rate, tb, field_order = Fraction(v.frame_rate), Fraction(v.time_base), None
    if reinterlace:
        if codec == "libx265":
            raise ConfigError("interlaced HEVC (HDR) output is not supported: x265 codes fields as separate pictures")
        if pix_fmt.startswith("yuv420") and h % 4:
            raise UnsupportedInputError(f"{w}x{h} interlaced 4:2:0 needs a height divisible by 4 (each field 4:2:0)")
        rate, tb, field_order = rate / 2, tb * 2, "tt" if v.first_field == "top" else "bb"
    color = v.color
    if codec != "ffv1" and v.is_rgb:
        hd = w >= 1280 or h >= 720
        color = ColorInfo(
            primaries=color.primaries,
            transfer=color.transfer,
            matrix=SPC_BT709 if hd else SPC_SMPTE170M,
            range=RANGE_MPEG,
            inferred=True,
        )
    return EncodeParams(
        codec=codec,
        pix_fmt=pix_fmt,
        width=w,
        height=h,
        time_base=f"{tb.numerator}/{tb.denominator}",
        frame_rate=f"{rate.numerator}/{rate.denominator}",
        color=color,
        crf=crf,
        preset=preset,
        sample_aspect_ratio=v.sample_aspect_ratio,
        hdr=hdr,
        profile=profile,
        field_order=field_order,
    )


def repair_dts(pts: int, dts: int, last_dts: int | None, floor: int) -> int:
    """``dts`` if it is possible (not after ``pts``, not below ``floor``, the chunk's first PTS less
    the longest reorder delay, and above ``last_dts``), else the DTS of a stream without
    reordering: ``pts``, or just above ``last_dts`` to stay increasing."""
    if floor <= dts <= pts and (last_dts is None or dts > last_dts):
        return dts
    return pts if last_dts is None or pts > last_dts else last_dts + 1


def weave(first: Frames, second: Frames, top_first: bool) -> Frames:
    """One interlaced frame from the pictures at a frame's two field instants: the first field's
    lines (the even rows if ``top_first``, else the odd ones) from ``first``, the other field's from
    ``second``. ``(H, W, 3)`` arrays of any dtype. The inverse of bwdif at field rate on the lines it
    keeps: weaving its two untouched fields gives the source frame back."""
    out = second.copy()
    r = 0 if top_first else 1
    out[r::2] = first[r::2]
    return out


# scale's names for the YUV matrices (swscale: the same coefficients as ``reformat``'s dst_colorspace)
SCALE_MATRIX = {SPC_BT709: "bt709", SPC_BT470BG: "bt470", SPC_SMPTE170M: "smpte170m", SPC_BT2020NC: "bt2020"}


def interlaced_converter(params: EncodeParams, rgb_format: str) -> av.filter.Graph:
    """RGB frames (``rgb_format``) -> ``params.pix_fmt``, flagged interlaced with ``params.field_order``
    (``setfield``: what libx264 and prores_ks read the field order from; PyAV cannot set a frame's
    flags). 4:2:0 chroma is subsampled within each field (``scale=interl=1``), not across the two
    fields' lines, which would smear one field's colour into the other's instant."""
    g = av.filter.Graph()
    nodes = [
        g.add_buffer(
            width=params.width,
            height=params.height,
            format=av.VideoFormat(rgb_format),
            time_base=Fraction(params.time_base),
        )
    ]
    if not params.pix_fmt.startswith(("bgr", "gbr", "rgb")):
        matrix = SCALE_MATRIX.get(params.color.matrix, "bt601")
        out_range = "pc" if params.color.range == RANGE_JPEG else "tv"
        nodes.append(g.add("scale", f"interl=1:out_color_matrix={matrix}:out_range={out_range}"))
    nodes += [
        g.add("format", params.pix_fmt),
        g.add("setfield", "tff" if params.field_order == "tt" else "bff"),
        g.add("buffersink"),
    ]
    g.link_nodes(*nodes).configure()
    return g


class ChunkWriter:
    """Encode RGB frames with their source timestamps into one chunk file (QuickTime container);
    with ``params.field_order``, field-rate pictures woven two by two into interlaced frames.

    QuickTime keeps the stream time base and stores the encoder's negative decode timestamps (through
    an edit list), so chunks carry the source PTS and real DTS (NUT, tried first, drops DTS); :func:`package`
    later copies their packets into the final container without re-encoding.
    """

    def __init__(self, path: str | os.PathLike[str], params: EncodeParams) -> None:
        self.path = Path(path)
        self.params = params
        # QuickTime for inter-frame codecs (keeps negative DTS); NUT for intra-only FFV1 (DTS == PTS).
        self._out = av.open(str(self.path), mode="w", format="nut" if params.codec == "ffv1" else "mov")
        tb = Fraction(params.time_base)
        s = cast(VideoStream, self._out.add_stream(params.codec, rate=Fraction(params.frame_rate)))
        s.width, s.height, s.pix_fmt = params.width, params.height, params.pix_fmt
        s.time_base = tb
        # MPEG-2 codes a frame rate, not a time base: its encoder counts in frames (PyAV rescales the PTS)
        s.codec_context.time_base = 1 / Fraction(params.frame_rate) if params.codec == "mpeg2video" else tb
        s.codec_context.options = params.options()
        s.codec_context.color_primaries = params.color.primaries
        s.codec_context.color_trc = params.color.transfer
        s.codec_context.colorspace = params.color.matrix
        s.codec_context.color_range = params.color.range
        if params.field_order:
            s.codec_context.field_order = 2 if params.field_order == "tt" else 3  # AV_FIELD_TT / AV_FIELD_BB
        if params.sample_aspect_ratio and params.sample_aspect_ratio not in ("0:1", "1:1"):
            num, den = params.sample_aspect_ratio.split(":")
            s.codec_context.sample_aspect_ratio = Fraction(int(num), int(den))
        self._stream = s
        self._frames = 0
        self._last_dts: int | None = None
        self._first_pts: int | None = None
        self._held: tuple[int, Frames] | None = None  # interlaced: a first field picture awaiting its second
        self._converter: av.filter.Graph | None = None

    def _pairs(self, pts: Sequence[int], frames: Frames) -> tuple[list[int], Frames]:
        """Interlaced output: field-rate pictures (first fields at even PTS, twice their frame's, in
        half its time base) -> woven frames at their source PTS; an unpaired last one is held."""
        if self._held is not None:
            pts, frames = [self._held[0], *pts], np.concatenate([self._held[1][None], frames])
            self._held = None
        n = len(pts) // 2 * 2
        if n < len(pts):
            self._held = (pts[-1], frames[-1].copy())
        if any(pts[i] % 2 for i in range(0, n, 2)):
            raise ValueError("interlaced output: a chunk must start on a frame's first field")
        top = self.params.field_order == "tt"
        woven = [weave(frames[i], frames[i + 1], top) for i in range(0, n, 2)]
        return [pts[i] // 2 for i in range(0, n, 2)], np.stack(woven) if woven else frames[:0]

    def write(self, pts: Sequence[int], frames: Frames) -> None:
        """Encode ``(n, H, W, 3)`` RGB frames (uint8, or uint16 on the 16-bit scale) with their source
        ``pts`` (interlaced output: pictures at field rate, two per frame, :meth:`_pairs`)."""
        p = self.params
        fmt = "rgb48le" if frames.dtype == np.uint16 else "rgb24"
        if p.field_order:
            pts, frames = self._pairs(pts, frames)
            if self._converter is None:
                self._converter = interlaced_converter(p, fmt)
        if self._first_pts is None and len(pts):
            self._first_pts = min(pts)
        for t, rgb in zip(pts, frames, strict=True):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
            if self._converter is not None:
                vf.pts, vf.time_base = t, Fraction(p.time_base)
                self._converter.vpush(vf)
                vf = self._converter.vpull()
            elif p.pix_fmt.startswith(("bgr", "gbr", "rgb")):
                vf = vf.reformat(format=p.pix_fmt)
            else:
                vf = vf.reformat(
                    format=p.pix_fmt, dst_colorspace=_src_colorspace(p.color), dst_color_range=p.color.range
                )
            vf.pts = t
            vf.time_base = Fraction(p.time_base)
            for pkt in self._stream.encode(vf):
                self._mux(pkt)
            self._frames += 1

    def _mux(self, pkt: av.Packet[Any]) -> None:
        """Mux one packet, repairing an impossible decode timestamp first.

        libx265 leaves the DTS of a stream shorter than its B-frame delay (a chunk of one or two
        frames) uninitialised: a random 64-bit value, which the QuickTime muxer refuses. Such a
        stream is not reordered, so its DTS is its PTS; a DTS after the PTS, or more than
        ``MAX_DTS_LAG`` frames before the chunk's first PTS, is treated so (:func:`repair_dts`).
        Real decode timestamps are kept, however far apart the frames of a variable-rate source.

        The packet is first put in the stream's time base: MPEG-2's encoder counts in frames, and its
        packets come in 1/rate; compared with the chunk's first PTS in the source's time base (1/12800
        in an MP4), every DTS looked uninitialised and the "repair" put one after its PTS.
        """
        tb = Fraction(self.params.time_base)
        if pkt.time_base is not None and Fraction(pkt.time_base) != tb:
            scale = Fraction(pkt.time_base) / tb
            pkt.pts, pkt.dts = (None if v is None else round(v * scale) for v in (pkt.pts, pkt.dts))
            pkt.time_base = tb
        if pkt.pts is not None and pkt.dts is not None and self._first_pts is not None:
            lag = MAX_DTS_LAG / (Fraction(self.params.frame_rate) * Fraction(self.params.time_base))
            pkt.dts = self._last_dts = repair_dts(pkt.pts, pkt.dts, self._last_dts, self._first_pts - int(lag))
        self._out.mux(pkt)

    def close(self) -> int:
        """Flush the encoder and close the file; returns the number of frames written."""
        if self._held is not None:
            raise ValueError("interlaced output: a field picture without its pair (chunks hold whole frames)")
        for pkt in self._stream.encode():
            self._mux(pkt)
        self._out.close()
        return self._frames

    def abort(self) -> None:
        """Close without flushing and delete the partial file."""
        with contextlib.suppress(Exception):
            self._out.close()
        self.path.unlink(missing_ok=True)


def _packets(path: Path, stream_index: int | None = None) -> Iterator[av.Packet[Any]]:
    with av.open(str(path)) as c:
        s = c.streams[stream_index] if stream_index is not None else c.streams.video[0]
        for pkt in c.demux(s):
            if pkt.size == 0 or (pkt.dts is None and pkt.pts is None):
                continue
            yield pkt


def package(
    chunks: Sequence[tuple[str | os.PathLike[str], int]],
    source: str | os.PathLike[str],
    info: MediaInfo,
    output: str | os.PathLike[str],
    captions: FrameIndex | None = None,
) -> dict[str, Any]:
    """Concatenate encoded chunks into ``output`` and mux the source's audio, subtitles and chapters.

    ``chunks`` are ``(path, first_pts)`` pairs: ``first_pts`` is the source PTS of the chunk's first
    frame. Edit-list rounding or containers without negative timestamps can shift a chunk by a few
    ticks; that shift is measured and undone here, so every frame keeps exactly its source PTS.
    Video packets are copied (no re-encode); decode timestamps are kept monotonic across chunk
    joins. Audio and subtitle packets are copied from the source as they are (bit-identical
    payloads), except into MXF, whose audio is 24-bit PCM at 48 kHz aligned to the first frame
    (:func:`restora.containers.carry_plan`). Packets of all streams are interleaved by time.
    Closed captions, which the source carried inside its video stream and the re-encode drops, go
    into MOV as a CEA-608 track (QuickTime ``c608``), one sample per source frame at its PTS,
    from the source's frame index (``captions``, :attr:`FrameIndex.captions`); other containers
    have no such track.

    Returns:
        Counts of packets written per stream kind (``"captions"``: CEA-608 samples), and under
        ``"pcm"`` the source stream indices that were decoded to PCM.

    Raises:
        ConfigError: a source stream's codec cannot be stored in the chosen container.
    """
    out_path = Path(output)
    fmt = output_format(out_path)
    src = Path(source)
    carried = {s.index: s for s in [*info.audio, *info.subtitles]}
    plan = carry_plan(info, out_path)
    counts: dict[str, Any] = {"video": 0, "audio": 0, "subtitle": 0, "captions": 0}
    src_tb = Fraction(info.video.time_base)
    with (
        av.open(str(chunks[0][0])) as first,
        av.open(str(src)) as source_c,
        av.open(str(out_path), mode="w", format=fmt) as out,
    ):
        tmpl = first.streams.video[0]
        vout = out.add_stream_from_template(tmpl)
        vout.time_base = tmpl.time_base
        if tmpl.codec_context.name == "hevc" and fmt in ("mp4", "mov"):
            vout.codec_tag = "hvc1"  # what Apple players require (FFmpeg's default is hev1)
        if tmpl.codec_context.name == "prores":
            vout.codec_tag = tmpl.codec_context.codec_tag  # the fourcc names the profile (apch: 422 HQ)
        if fmt == "mxf":  # one edit unit per frame: the muxer takes its edit rate from these
            vout.time_base = 1 / Fraction(info.video.frame_rate)
            vout.codec_context.framerate = Fraction(info.video.frame_rate)
        if info.video.timecode:
            # MOV/MP4 muxers make a tmcd track of it (counting at the stream's frame rate), Matroska a
            # tag, MXF the material package's timecode track
            vout.metadata["timecode"] = info.video.timecode
            vout.codec_context.framerate = Fraction(info.video.frame_rate)
        mapping: dict[int, Any] = {}
        caption_key = max([info.video.index, *carried], default=0) + 1  # after every source stream
        if captions is not None and captions.captions and fmt == "mov":  # FFmpeg's MP4 muxer has no c608
            cc = out.add_mux_stream("eia_608")
            cc.time_base = captions.time_base
            mapping[caption_key] = cc
        for idx, how in plan.items():
            if how == "pcm":
                mapping[idx] = pcm_stream(out, carried[idx])
                continue
            sin = source_c.streams[idx]
            so = out.add_stream_from_template(sin)
            so.time_base = sin.time_base
            so.metadata.update(dict(sin.metadata))
            mapping[idx] = so
        out.set_chapters(source_c.chapters())  # frames keep their source PTS: the marks stay valid
        out.start_encoding()

        # Per chunk: the PTS shift its container introduced, and its encoder's reorder delay (first PTS
        # minus first DTS). Chunks can differ in delay (a 2-frame chunk has no B-frames); every chunk's
        # DTS is lowered to the largest delay, so DTS stay monotonic across joins and the stream keeps
        # one constant decode delay (stored by MP4/MOV as an edit list).
        # ``first_pts`` is in the source's time base; a muxer may have chosen a finer one for the chunk
        # (NUT, the lossless chunks' container, doubles a 1/1000 base up to 1/64000): compare in the chunk's.
        plans = []
        for ch, first_src_pts in chunks:
            with av.open(str(ch)) as c:
                chunk_tb = c.streams.video[0].time_base or src_tb
            first_pts = round(first_src_pts * src_tb / chunk_tb)
            stamps = [(p.pts, p.dts) for p in _packets(Path(ch)) if p.pts is not None]
            shift = min((pts for pts, _ in stamps), default=first_pts) - first_pts
            first_dts = stamps[0][1] if stamps and stamps[0][1] is not None else first_pts + shift
            plans.append((ch, shift, first_pts - (first_dts - shift)))
        max_delay = max((d for _, _, d in plans), default=0)

        def video_packets() -> Iterator[tuple[float, int, av.Packet[Any]]]:
            last_dts: int | None = None
            for ch, shift, delay in plans:
                for pkt in _packets(Path(ch)):
                    if pkt.dts is None:  # NUT omits DTS of intra-only streams, where it equals PTS
                        pkt.dts = pkt.pts
                    if pkt.pts is not None:
                        pkt.pts -= shift
                    if pkt.dts is not None:
                        pkt.dts -= shift + (max_delay - delay)
                    if pkt.dts is not None and last_dts is not None and pkt.dts <= last_dts:
                        pkt.dts = last_dts + 1  # safety net; not expected after the delay alignment
                        if pkt.pts is not None and pkt.pts < pkt.dts:
                            pkt.dts = pkt.pts
                    last_dts = pkt.dts
                    t = pkt.dts if pkt.dts is not None else pkt.pts
                    assert t is not None and pkt.time_base is not None
                    yield float(t * pkt.time_base), 0, pkt

        def other_packets(idx: int) -> Iterator[tuple[float, int, av.Packet[Any]]]:
            if plan[idx] == "pcm":  # decoded as the video is (a corrupt packet skipped, not fatal)
                start_s = float(chunks[0][1] * src_tb)
                with av.open(str(src)) as c:
                    decoded = cast(Iterator[av.AudioFrame], _decode(c, cast(Any, c.streams[idx]), src))
                    for pkt in pcm_packets(decoded, mapping[idx], start_s):
                        assert pkt.pts is not None and pkt.time_base is not None
                        yield float(pkt.pts * pkt.time_base), 1 + idx, pkt
                return
            with av.open(str(src)) as c:
                for pkt in c.demux(c.streams[idx]):
                    if pkt.size == 0:
                        continue
                    t = pkt.dts if pkt.dts is not None else pkt.pts
                    yield (float(t * pkt.time_base) if t is not None and pkt.time_base else 0.0), 1 + idx, pkt

        def caption_packets() -> Iterator[tuple[float, int, av.Packet[Any]]]:
            assert captions is not None and captions.captions is not None
            p = captions.pts
            for k, triplets in enumerate(captions.captions):
                if triplets:
                    pkt = av.Packet(bytes.fromhex(triplets))
                    pkt.pts = pkt.dts = p[k]
                    # a sample lasts until the next frame (the last one as long as the one before)
                    pkt.duration = p[k + 1] - p[k] if k + 1 < len(p) else (p[k] - p[k - 1] if k else 1)
                    pkt.time_base = captions.time_base
                    yield float(p[k] * captions.time_base), 1 + caption_key, pkt

        streams = [video_packets(), *(other_packets(i) for i in plan)]
        if caption_key in mapping:
            streams.append(caption_packets())
        for _, key, pkt in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
            if key == 0:
                pkt.stream = vout
                counts["video"] += 1
            else:
                so = mapping[key - 1]
                pkt.stream = so
                counts["captions" if key - 1 == caption_key else so.type] += 1
            out.mux(pkt)
    counts["pcm"] = [i for i, how in plan.items() if how == "pcm"]
    return counts


def stream_packet_digest(path: str | os.PathLike[str], stream_type: str = "audio", nth: int = 0) -> tuple[int, str]:
    """``(packets, sha256)`` over the payload bytes of the ``nth`` stream of a type (for tests/reports)."""
    h = hashlib.sha256()
    n = 0
    with av.open(str(path)) as c:
        s = [x for x in c.streams if x.type == stream_type][nth]
        for pkt in c.demux(s):
            if pkt.size == 0:
                continue
            h.update(bytes(pkt))
            n += 1
    return n, h.hexdigest()


def write_still(rgb: U8, path: str | os.PathLike[str]) -> None:
    """Save one ``(H, W, 3)`` uint8 RGB frame as PNG."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    with av.open(str(path), mode="w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        for pkt in s.encode(frame):
            out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def frame_at(path: str | os.PathLike[str], n: int = 0, info: MediaInfo | None = None) -> U8:
    """Decode frame ``n`` (stream order) of a file as ``(H, W, 3)`` uint8 RGB (``info``: its
    :func:`probe`, when the caller has it)."""
    p = Path(path)
    info = info or probe(p)
    with _open_input(p) as c:
        vs = _pick_video(c, p)
        vs.thread_type = "AUTO"
        for i, frame in enumerate(_pictures(c, vs, p, info.video)):
            if i == n:
                return _to_rgb(frame, info.video)
    raise InputError(f"{p}: has no frame {n}")


def codec_roundtrip(
    frames: Sequence[av.VideoFrame],
    codec: str = "libx264",
    crf: float | None = 28,
    bitrate: int | None = None,
    preset: str = "medium",
    rate: int = 25,
) -> list[av.VideoFrame]:
    """Encode ``frames`` with a real video encoder in memory and decode them back, in display order.

    What compressed delivery does to pictures, for degradation and evaluation (no file, no
    container: a raw elementary stream has no timestamp rules to trip over; a matroska muxer once
    refused an x265 packet with EINVAL under load in CI).

    Args:
        frames: ``yuv420p`` frames of one even size (``av.VideoFrame``).
        codec: ``libx264`` (H.264), ``libx265`` (HEVC), ``mpeg2video`` (MPEG-2, GOP 12 with 2
            B-frames, as broadcast and DVD) or ``mpeg4`` (MPEG-4 Part 2, as DivX/Xvid, same GOP).
        crf: constant rate factor (higher = worse); for ``mpeg2video`` and ``mpeg4`` the fixed
            quantiser scale (1-31); ignored when ``bitrate`` is set.
        bitrate: target bits/s instead of CRF.
        preset: encoder speed preset (x264/x265).
        rate: frame rate the encoder assumes (rate control depends on it with ``bitrate``).

    Returns:
        the decoded ``yuv420p`` frames, as many as went in (decoded with :data:`EXPORT_QP`: H.264
        and MPEG-2 frames give their quantiser to :func:`frame_qp`).

    Raises:
        ConfigError: an unknown codec. RuntimeError: the decoder returned another frame count.
    """
    formats = {"libx264": "h264", "libx265": "hevc", "mpeg2video": "mpeg2video", "mpeg4": "m4v"}
    if codec not in formats:
        raise ConfigError(f"codec must be one of {sorted(formats)}, not {codec!r}")
    buf = io.BytesIO()
    with av.open(buf, "w", format=formats[codec]) as out:
        vs = cast(VideoStream, out.add_stream(codec, rate=rate))
        vs.width, vs.height, vs.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        vs.time_base = Fraction(1, rate)
        fixed_q = codec in ("mpeg2video", "mpeg4")
        opts = {"g": "12", "bf": "2"} if fixed_q else {"preset": preset}
        if bitrate:
            vs.codec_context.bit_rate = int(bitrate)
        elif fixed_q:  # constant quantiser: qmin = qmax, rate control out of the way
            opts.update(qmin=str(int(crf or 2)), qmax=str(int(crf or 2)))
            vs.codec_context.bit_rate = 100_000_000
        else:
            opts["crf"] = str(crf)
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        vs.codec_context.options = opts
        for i, f in enumerate(frames):
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf, "r", format=formats[codec]) as inp:
        inp.streams.video[0].codec_context.options = EXPORT_QP  # :func:`frame_qp` works on the result
        dec = list(inp.decode(video=0))
    if len(dec) != len(frames):
        raise RuntimeError(f"{codec} round trip returned {len(dec)} frames for {len(frames)}")
    return dec
