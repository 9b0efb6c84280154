"""Probe, frame index, decode ranges, encode chunks, package: on synthetic clips and real files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from restora import media
from restora.errors import ConfigError, InputError, UnsupportedInputError
from tests.conftest import cut_frames, encode_frames, make_audio_only, make_clip, one_chunk, with_display_matrix


def test_probe_real_clip_with_odd_frame_rate_and_audio(data: Path) -> None:
    info = media.probe(data / "video/misc/realshort.mp4")
    v = info.video
    assert (v.width, v.height, v.frames) == (320, 240, 36)
    assert v.frame_rate == "45000/1499"
    assert not v.vfr
    assert v.color.names == {"primaries": "smpte170m", "transfer": "smpte170m", "matrix": "smpte170m", "range": "tv"}
    assert v.color.inferred  # the file is untagged; SD reads as BT.601
    assert [a.codec for a in info.audio] == ["aac"]
    assert info.audio[0].sample_rate == 48000


def test_probe_untagged_hd_reads_as_bt709(data: Path) -> None:
    v = media.probe(data / "video/misc/bigbuckbunny.mp4").video
    assert (v.width, v.height, v.frames, v.frame_rate) == (1280, 720, 132, "25/1")
    assert v.color.names["matrix"] == "bt709" and v.color.names["primaries"] == "bt709"


def test_untagged_hdr_transfer_reads_as_bt2020() -> None:
    """PQ or HLG with untagged primaries/matrix: BT.2020 (HDR10 and HLG use no other), at any size."""
    for trc in (media.TRC_SMPTE2084, media.TRC_ARIB_STD_B67):
        c = media.infer_color(
            720, 576, media.PRI_UNSPEC, trc, media.SPC_UNSPEC, media.RANGE_UNSPEC, Fraction(25), False
        )
        assert (c.primaries, c.matrix, c.transfer, c.inferred) == (media.PRI_BT2020, media.SPC_BT2020NC, trc, True)
    sdr = media.infer_color(720, 576, media.PRI_UNSPEC, media.TRC_UNSPEC, media.SPC_UNSPEC, 0, Fraction(25), False)
    assert (sdr.primaries, sdr.matrix) == (media.PRI_BT470BG, media.SPC_BT470BG)


def test_probe_detects_variable_frame_rate(tmp_path: Path) -> None:
    frames = cut_frames(12, [])
    pts = [0, 3000, 6000, 12000, 15000, 21000, 24000, 27000, 36000, 39000, 42000, 45000]
    vfr = media.probe(make_clip(tmp_path / "vfr.mp4", frames, pts=pts))
    cfr = media.probe(make_clip(tmp_path / "cfr.mp4", frames))
    assert vfr.video.vfr and not cfr.video.vfr
    assert vfr.video.frames == cfr.video.frames == 12


@pytest.mark.parametrize("name", ["missing", "text", "truncated", "audio_only", "empty"])
def test_bad_inputs_raise_input_error(name: str, tmp_path: Path, data: Path) -> None:
    path = tmp_path / f"{name}.mp4"
    if name == "text":
        path.write_text("this is not a video\n" * 100)
    elif name == "truncated":
        src = (data / "video/misc/bigbuckbunny.mp4").read_bytes()
        path.write_bytes(src[: int(len(src) * 0.3)])
    elif name == "audio_only":
        make_audio_only(path)
    elif name == "empty":
        path.write_bytes(b"")
    with pytest.raises(InputError):
        info = media.probe(path)
        media.scan(path, info)


def test_truncated_stream_with_header_first_is_detected(tmp_path: Path) -> None:
    """A faststart MP4 cut short still probes (header intact) but must fail at scan."""
    src = make_clip(tmp_path / "full.mp4", cut_frames(50, [25], h=144, w=192))
    data = src.read_bytes()
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 50
    cut = tmp_path / "cut.mp4"
    remuxed = tmp_path / "fast.mp4"
    with av.open(str(src)) as i, av.open(str(remuxed), "w", options={"movflags": "+faststart"}) as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = s
                o.mux(p)
    data = remuxed.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(InputError, match=r"truncated|damaged|undecodable|frames"):
        info = media.probe(cut)
        media.scan(cut, info)


def test_read_frames_range_matches_index_after_seek(data: Path) -> None:
    path = data / "video/misc/realshort.mp4"
    info = media.probe(path)
    index, thumbs, digest = media.scan(path, info)
    assert len(index) == 36 and thumbs.shape == (36, 36, 64) and len(digest) == 64
    got_pts: list[int] = []
    for pts, frames in media.read_frames(path, info, index, 10, 20, batch=4):
        assert frames.dtype == np.uint8 and frames.shape[1:] == (240, 320, 3)
        got_pts += pts
    assert got_pts == index.pts[10:20]
    # the same frames decoded from the start (no seek) are identical
    whole = np.concatenate([f for _, f in media.read_frames(path, info, index, 0, 36, batch=36)])
    part = np.concatenate([f for _, f in media.read_frames(path, info, index, 10, 20)])
    assert np.array_equal(whole[10:20], part)


def broadcast_stream(path: Path, frames: list[np.ndarray], fmt: str, codec: str, interlaced: bool) -> Path:
    """``frames`` as a broadcast file: MPEG-TS, MPEG-PS or MXF, MPEG-2 (4:2:2 in MXF) or H.264 with
    B-frames, a GOP of 6 frames, interlaced (field/frame-adaptive coding) or progressive, 25 fps."""
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=25)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv422p" if fmt == "mxf" else "yuv420p"
        if codec == "mpeg2video":
            s.codec_context.options = {
                "g": "6",
                "bf": "2",
                "qscale": "3",
                **({"flags": "+ilme+ildct"} if interlaced else {}),
            }
        else:
            x264 = "keyint=6:min-keyint=6:scenecut=0:bframes=2" + (":interlaced=1:tff=1" if interlaced else "")
            s.codec_context.options = {"preset": "fast", "crf": "20", "x264-params": x264}
        encode_frames(out, s, frames)
    return path


@pytest.mark.parametrize(
    ("fmt", "codec", "interlaced"),
    [
        ("mpegts", "mpeg2video", True),
        ("mpegts", "libx264", False),
        ("mpegts", "libx264", True),
        ("mpeg", "mpeg2video", False),
        ("mpeg2video", "mpeg2video", True),  # elementary streams: .m2v (timestamps made up by the demuxer) ...
        ("h264", "libx264", True),  # ... and Annex B .264 (none: decoded from the start, frames counted)
        ("mxf", "mpeg2video", True),  # MXF OP1a with long-GOP 4:2:2 MPEG-2, as XDCAM HD422 delivers
    ],
)
def test_chunks_of_transport_and_program_streams_decode_as_one_pass(
    fmt: str, codec: str, interlaced: bool, tmp_path: Path, data: Path
) -> None:
    """MPEG-TS and MPEG-PS have no index: a seek lands on a packet whose decode timestamp is just
    before the target, not on a keyframe, and the decoder starts at the next keyframe. Every chunk
    but the first came out short (an InputError) before the seek was retried from further back;
    now every chunk, interlaced or not, decodes to exactly the frames of one pass. Raw elementary
    streams, the other broadcast deliverable, too, at frame and at field rate."""
    frames = media.first_frames(data / "video/misc/realshort.mp4", 30)
    ext = {"mpegts": "ts", "mpeg": "mpg", "mpeg2video": "m2v", "h264": "264", "mxf": "mxf"}[fmt]
    src = broadcast_stream(tmp_path / f"b.{ext}", frames, fmt, codec, interlaced)
    info = media.probe(src)
    assert info.video.interlaced == interlaced
    index, _, _ = media.scan(src, info)
    assert index.has_pts == (fmt != "h264")
    whole = np.concatenate([f for _, f in media.read_frames(src, info, index, 0, 30)])
    for a, b in ((4, 7), (7, 15), (15, 30), (13, 14), (29, 30)):  # (29, 30): no keyframe after the landing
        pts, part = zip(*media.read_frames(src, info, index, a, b), strict=True)
        assert np.array_equal(np.concatenate(part), whole[a:b]) and [t for ts in pts for t in ts] == index.pts[a:b]
    if interlaced:  # and at field rate, chunks starting on either field
        fields, findex = media.at_field_rate(info), index.at_field_rate()
        every = np.concatenate([f for _, f in media.read_frames(src, fields, findex, 0, 60)])
        for a, b in ((9, 14), (14, 31), (31, 60), (58, 60), (59, 60)):
            part = np.concatenate([f for _, f in media.read_frames(src, fields, findex, a, b)])
            assert np.array_equal(part, every[a:b])


def test_first_frames_equal_read_frames(data: Path) -> None:
    """The training/evaluation reader decodes and converts exactly as the pipeline's reader."""
    path = data / "video/misc/realshort.mp4"
    info = media.probe(path)
    index, _, _ = media.scan(path, info)
    head = media.first_frames(path, 7)
    ((_, ref),) = list(media.read_frames(path, info, index, 0, 7, batch=7))
    assert len(head) == 7 and np.array_equal(np.stack(head), ref)
    assert len(media.first_frames(path, 1000)) == 36  # a short clip: every frame, no error


def test_chunks_concatenate_with_exact_timestamps_and_untouched_audio(tmp_path: Path) -> None:
    """VFR source, three chunks encoded separately (B-frames), packaged: same PTS, same audio bytes."""
    frames = cut_frames(40, [15], h=64, w=96)
    pts = [i * 3600 + (900 if i % 7 == 3 else 0) for i in range(40)]
    src = make_clip(tmp_path / "src.mp4", frames, pts=pts, audio_seconds=1.7)
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    params = media.choose_encode(info, 1, tmp_path / "out.mkv", crf=18, preset="fast")  # B-frames: negative DTS
    chunks = []
    for k, (a, b) in enumerate([(0, 15), (15, 30), (30, 40)]):
        w = media.ChunkWriter(tmp_path / f"c{k}.mov", params)
        for p, f in media.read_frames(src, info, index, a, b):
            w.write(p, f)
        assert w.close() == b - a
        chunks.append((tmp_path / f"c{k}.mov", index.pts[a]))
    for ext in (".mp4", ".mkv", ".mov"):
        out = tmp_path / f"out{ext}"
        counts = media.package(chunks, src, info, out)
        assert counts["video"] == 40
        with av.open(str(out)) as c:
            got = [f.pts * f.time_base for f in c.decode(video=0)]
        want = [p * index.time_base for p in index.pts]
        if ext == ".mkv":  # Matroska stores milliseconds and shifts all streams alike past AAC priming
            assert all(abs((g - got[0]) - (w - want[0])) <= Fraction(1, 1000) for g, w in zip(got, want, strict=True))
        else:
            assert got == want
        assert media.stream_packet_digest(out, "audio") == media.stream_packet_digest(src, "audio")


@pytest.mark.parametrize(("timecode", "rate"), [("10:00:00:00", Fraction(25)), ("01:00:00;00", Fraction(30000, 1001))])
def test_start_timecode_survives_packaging(timecode: str, rate: Fraction, tmp_path: Path) -> None:
    """A broadcast source's start timecode (here a QuickTime tmcd track; drop-frame at 29.97) is
    read by probe and written into every output container (MOV/MP4: a tmcd track; Matroska: a tag)."""
    src = make_clip(tmp_path / "tc.mov", cut_frames(10, [], h=48, w=64), rate=rate, timecode=timecode)
    info, index = one_chunk(src, tmp_path / "c.mov")
    assert info.video.timecode == timecode
    for ext in (".mov", ".mp4", ".mkv"):
        out = tmp_path / f"out{ext}"
        media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out)
        assert media.probe(out).video.timecode == timecode, ext
    with av.open(str(tmp_path / "out.mov")) as c:
        assert [s.type for s in c.streams] == ["video", "data"]  # the tmcd track
    assert media.probe(make_clip(tmp_path / "none.mov", cut_frames(2, [], h=48, w=64))).video.timecode is None


def test_chapters_survive_packaging(tmp_path: Path) -> None:
    """Chapter marks of the source (Matroska here) are in every output container, same times and titles."""
    src = tmp_path / "ch.mkv"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        tb = Fraction(1, 25)
        marks = [(1, 0, 10, "Opening"), (2, 10, 20, "Part 2")]
        out.set_chapters(
            [{"id": i, "start": a, "end": b, "time_base": tb, "metadata": {"title": t}} for i, a, b, t in marks]
        )
        encode_frames(out, s, cut_frames(20, [], h=48, w=64))
    info, index = one_chunk(src, tmp_path / "c.mov", "o.mkv")
    want = [(0.0, 0.4, "Opening"), (0.4, 0.8, "Part 2")]
    assert [(c.start_s, c.end_s, c.title) for c in info.chapters] == want
    for ext in (".mkv", ".mp4", ".mov"):
        out_path = tmp_path / f"out{ext}"
        media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out_path)
        got = [(round(c.start_s, 3), round(c.end_s, 3), c.title) for c in media.probe(out_path).chapters]
        assert got == want, ext


@pytest.mark.parametrize(
    ("matrix", "upright"),
    [
        ((0, 1, -1, 0), lambda f: np.rot90(f, -1)),  # a phone held upright: 90 degrees clockwise
        ((-1, 0, 0, -1), lambda f: np.rot90(f, 2)),
        ((0, -1, 1, 0), lambda f: np.rot90(f, 1)),
        ((-1, 0, 0, 1), lambda f: f[:, ::-1]),  # mirrored (a selfie camera)
    ],
)
def test_rotated_recordings_are_decoded_upright(
    matrix: tuple[int, int, int, int], upright: Any, tmp_path: Path
) -> None:
    """A display matrix (tkhd) is applied on decode as FFmpeg applies it: the frames, the size the
    output is encoded at and the packaged output are upright, and the output carries no matrix."""
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:8, :16] = 255  # a white block in the coded top-left corner
    src = with_display_matrix(make_clip(tmp_path / "c.mp4", [frame] * 3), tmp_path / "r.mp4", matrix)
    info = media.probe(src)
    assert info.video.orientation == matrix
    want = upright(frame)
    assert (info.video.height, info.video.width) == want.shape[:2]
    index, _, _ = media.scan(src, info)
    ((pts, got),) = list(media.read_frames(src, info, index, 0, 3))
    assert got.shape[1:] == want.shape and np.abs(got[0].astype(int) - want).mean() < 3
    params = media.choose_encode(info, 2, tmp_path / "o.mp4", 18, "fast")
    assert (params.height, params.width) == (2 * want.shape[0], 2 * want.shape[1])
    w = media.ChunkWriter(tmp_path / "chunk.mov", media.choose_encode(info, 1, tmp_path / "o.mp4", 18, "fast"))
    w.write(pts, got)
    w.close()
    media.package([(tmp_path / "chunk.mov", index.pts[0])], src, info, tmp_path / "o.mp4")
    out = media.probe(tmp_path / "o.mp4").video
    assert out.orientation is None and (out.height, out.width) == want.shape[:2]
    assert np.abs(media.frame_at(tmp_path / "o.mp4").astype(int) - want).mean() < 3


def test_alpha_channel_is_reported_as_not_carried(tmp_path: Path) -> None:
    """Restored frames are opaque RGB: a source with alpha (FFV1 BGRA here) says so in the report."""
    from restora.report import signal_report

    src = make_clip(tmp_path / "a.mkv", cut_frames(1, [], h=48, w=64), codec="ffv1", pix_fmt="bgra")
    info = media.probe(src)
    assert info.video.alpha and media.choose_encode(info, 1, tmp_path / "o.mkv", 16, "fast").pix_fmt == "bgr0"
    opaque = info.video.model_copy(update={"alpha": False, "pix_fmt": "bgr0"})
    assert signal_report(info.video, opaque)["not_carried"] == ["alpha"]


def test_display_matrix_right_angles_only_and_scale_is_no_rotation() -> None:
    one = 1 << 16
    r45 = round(one / 2**0.5)
    with pytest.raises(UnsupportedInputError, match=r"45\.0 degrees"):
        media.orientation_of((r45, r45, 0, -r45, r45, 0, 0, 0, 1 << 30))
    assert media.orientation_of((2 * one, 0, 0, 0, one, 0, 0, 0, 1 << 30)) is None  # anamorphic scale only
    assert media.orientation_of((0, 3 * one, 0, -one, 0, 0, 0, 0, 1 << 30)) == (0, 1, -1, 0)


def test_output_extension_is_validated() -> None:
    with pytest.raises(ConfigError, match="extension"):
        media.output_format("clip.xyz")
    assert media.output_format("a.MKV") == "matroska"


def test_lossless_rgb_source_stays_lossless(tmp_path: Path) -> None:
    frame = cut_frames(1, [], h=48, w=64)
    src = make_clip(tmp_path / "one.mkv", frame, codec="ffv1", pix_fmt="bgr0")
    info = media.probe(src)
    assert info.video.lossless and info.video.is_rgb and not info.video.alpha
    p = media.choose_encode(info, 2, tmp_path / "o.mkv", 16, "fast")
    assert (p.codec, p.pix_fmt, p.width, p.height) == ("ffv1", "bgr0", 128, 96)
    index, _, _ = media.scan(src, info)
    ((_, got),) = list(media.read_frames(src, info, index, 0, 1))
    assert np.array_equal(got[0], frame[0])  # RGB decode of a lossless RGB frame is exact


def test_chunks_with_different_encoder_delays_keep_duration(tmp_path: Path) -> None:
    """A 2-frame chunk (no B-frames) followed by long ones (B-frames): no frame time is lost."""
    frames = cut_frames(40, [], h=64, w=96)
    src = make_clip(tmp_path / "src.mp4", frames)
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    params = media.choose_encode(info, 1, tmp_path / "out.mp4", crf=18, preset="fast")
    chunks = []
    for k, (a, b) in enumerate([(0, 2), (2, 30), (30, 40)]):
        w = media.ChunkWriter(tmp_path / f"c{k}.mov", params)
        for p, f in media.read_frames(src, info, index, a, b):
            w.write(p, f)
        w.close()
        chunks.append((tmp_path / f"c{k}.mov", index.pts[a]))
    out = tmp_path / "out.mp4"
    media.package(chunks, src, info, out)
    with av.open(str(out)) as c, av.open(str(src)) as s:
        assert [f.pts for f in c.decode(video=0)] == [f.pts for f in s.decode(video=0)]
        vo, vs = c.streams.video[0], s.streams.video[0]
        assert vo.duration * vo.time_base == vs.duration * vs.time_base


def _roundtrip(frames: list[np.ndarray], codec: str, crf: int) -> list[av.VideoFrame]:
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]
    return media.codec_roundtrip(yuv, codec, crf)


def test_frame_qp_reads_the_h264_and_mpeg2_quantisers(tmp_path: Path) -> None:
    """The decoder's exported macroblock quantisers: H.264 QP near the CRF asked for and rising with
    it, MPEG-2 twice the fixed quantiser scale; none for HEVC or a lossless source; ``scan`` stores
    them, with their scale, in the frame index."""
    frames = cut_frames(12, [], h=64, w=96)
    means = {}
    for crf in (18, 30, 42):
        qps = [media.frame_qp(f) for f in _roundtrip(frames, "libx264", crf)]
        assert all(q is not None and q[0] == "h264" and 0 <= q[1] <= 51 for q in qps)
        means[crf] = float(np.mean([q[1] for q in qps if q is not None]))
        assert abs(means[crf] - crf) < 8, means
    assert means[18] < means[30] < means[42]
    for qscale in (3, 12):
        series = media.qp_series([media.frame_qp(f) for f in _roundtrip(frames, "mpeg2video", qscale)])
        assert series is not None and series[0] == "mpeg2" and np.allclose(series[1], 2 * qscale)
    assert {media.frame_qp(f) for f in _roundtrip(frames, "libx265", 30)} == {None}
    h264 = make_clip(tmp_path / "a.mp4", frames)  # libx264 CRF 12
    index, _, _ = media.scan(h264, media.probe(h264))
    assert index.qp_codec == "h264" and index.qp is not None and len(index.qp) == 12
    assert 5 < (index.mean_qp(0, 12) or 0) < 20
    assert index.mean_qp(3, 6) == pytest.approx(float(np.mean(index.qp[3:6])))
    mpeg2 = make_clip(tmp_path / "m.ts", frames, codec="mpeg2video", time_base=Fraction(1, 25))
    index, _, _ = media.scan(mpeg2, media.probe(mpeg2))
    assert index.qp_codec == "mpeg2" and index.qp is not None and len(index.qp) == 12
    mpeg4 = make_clip(tmp_path / "p.avi", frames, codec="mpeg4", time_base=Fraction(1, 25))
    index, _, _ = media.scan(mpeg4, media.probe(mpeg4))
    assert index.qp_codec == "mpeg4" and index.qp is not None  # MPEG-2's kind of quantiser, its own name and ramp
    ffv1 = make_clip(tmp_path / "b.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    index, _, _ = media.scan(ffv1, media.probe(ffv1))
    assert index.qp is None and index.qp_codec is None and index.mean_qp(0, 12) is None


def test_qp_series_fills_gaps_and_refuses_mixed_or_sparse() -> None:
    """MPEG-2's last flushed frame carries no quantiser: it gets the others' mean; a stream with more
    than one frame and 10 % missing, or two scales, has no series."""
    h = ("h264", 30.0)
    assert media.qp_series([h, ("h264", 39.0), None, *[h] * 7]) == ("h264", [30.0, 39.0, 31.0, *[30.0] * 7])
    assert media.qp_series([h, None, None, *[h] * 7]) is None
    assert media.qp_series([h, ("mpeg2", 8.0), *[h] * 8]) is None
    assert media.qp_series([]) is None
    assert media.qp_series([("mpeg2", 8.0), None]) == ("mpeg2", [8.0, 8.0])
