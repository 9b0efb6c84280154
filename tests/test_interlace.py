"""Interlaced sources: detected by probe, deinterlaced on decode (bwdif), chunk by chunk as a whole."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from restora import media
from restora.errors import ConfigError
from restora.metrics import psnr
from restora.shots import Fade, ShotList
from tests.conftest import encode_frames, make_clip

H, W, BAR = 96, 128, 12


def bar_at(t: int) -> int:
    """Left edge of the bright bar at field instant ``t`` (4 pixels per field)."""
    return (8 + 4 * t) % (W - 2 * BAR)


def progressive(t: int) -> np.ndarray:
    """The scene as a progressive picture at field instant ``t``: ``(H, W, 3)`` uint8."""
    f = np.full((H, W, 3), 40, np.uint8)
    f[:, bar_at(t) : bar_at(t) + BAR] = 220
    return f


def woven(i: int) -> np.ndarray:
    """Frame ``i`` as an interlaced camera records it: even lines at instant ``2i``, odd lines at ``2i + 1``."""
    f = progressive(2 * i)
    f[1::2] = progressive(2 * i + 1)[1::2]
    return f


def interlaced_clip(
    path: Path,
    n: int = 20,
    keyint: int = 5,
    interlaced: bool = True,
    codec: str = "libx264",
    timecode: str = "09:59:30:00",
) -> Path:
    """``n`` woven frames at 25 fps as interlaced H.264 (x264 field coding, a keyframe every
    ``keyint`` frames), or with ``codec="ffv1"`` as FFV1 whose frames carry no interlace flag, the
    container declaring top field first; ``timecode`` is the start timecode tag."""
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        if codec == "libx264":
            x264 = f"keyint={keyint}:min-keyint={keyint}:scenecut=0" + (":interlaced=1:tff=1" if interlaced else "")
            s.codec_context.options = {"crf": "10", "preset": "ultrafast", "x264-params": x264}
        else:
            s.codec_context.field_order = 2 if interlaced else 1  # AV_FIELD_TT / AV_FIELD_PROGRESSIVE
        s.metadata["timecode"] = timecode  # as broadcast masters carry one
        encode_frames(out, s, (woven(i) for i in range(n)))
    return path


def combing(frames: np.ndarray) -> float:
    """Mean distance of each line from the average of its neighbours (green channel): high where
    the two fields of a frame disagree."""
    g = frames[..., 1].astype(np.float64)
    return float(np.abs(g[:, 1:-1] - (g[:, :-2] + g[:, 2:]) / 2).mean())


def test_probe_tells_interlaced_from_progressive(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restora.cli import main

    v = media.probe(interlaced_clip(tmp_path / "i.mp4")).video
    assert v.interlaced and v.field_order in ("tt", "bb", "tb", "bt", "interlaced")
    assert main(["probe", str(tmp_path / "i.mp4")]) == 0
    assert "scan:       interlaced (declared top first, decoded bottom field first)" in capsys.readouterr().out
    p = media.probe(interlaced_clip(tmp_path / "p.mp4", interlaced=False)).video
    assert not p.interlaced and p.field_order == "progressive"
    assert media.probe(data / "video/misc/bigbuckbunny.mp4").video.field_order == "progressive"


def test_interlaced_frames_are_deinterlaced_the_same_in_any_chunking(tmp_path: Path) -> None:
    """Decoded, the woven frames lose their combing and become one of the two field instants as a
    whole picture; chunks that start on a keyframe (whose previous frame the deinterlacer reads)
    decode to exactly the frames of one whole pass."""
    src = interlaced_clip(tmp_path / "i.mp4")
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    whole = np.concatenate([f for _, f in media.read_frames(src, info, index, 0, 20)])
    parts = [f for a, b in ((0, 5), (5, 10), (10, 17), (17, 20)) for _, f in media.read_frames(src, info, index, a, b)]
    assert np.array_equal(whole, np.concatenate(parts))

    with av.open(str(src)) as c:  # the woven frames, without the deinterlacer
        raw = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert np.array_equal(np.stack(media.first_frames(src, 20)), whole)  # stills decode as the pipeline
    assert combing(raw) > 5.0 and combing(whole) < 0.5

    def nearest_instant(frames: np.ndarray) -> list[float]:  # PSNR to the closer of the frame's two instants
        return [
            max(psnr(f, progressive(2 * i), 255), psnr(f, progressive(2 * i + 1), 255)) for i, f in enumerate(frames)
        ]

    print(f"combing {combing(raw):.2f} -> {combing(whole):.3f}; PSNR to the nearest instant, min "
          f"{min(nearest_instant(whole)[1:]):.1f} dB, first frame {nearest_instant(whole)[0]:.1f} dB "
          f"(woven, max {max(nearest_instant(raw)):.1f} dB)")  # fmt: skip
    # measured 48.5 dB but 30.0 on the first frame, which has no previous frame to interpolate from
    assert min(nearest_instant(whole)[1:]) > 40.0 and nearest_instant(whole)[0] > 28.0
    assert max(nearest_instant(raw)) < 25.0


def test_field_order_declared_only_by_the_container_is_deinterlaced_too(tmp_path: Path) -> None:
    """FFV1 frames carry no interlace flag; Matroska's FieldOrder says top field first: every frame
    goes through the deinterlacer at that order."""
    src = interlaced_clip(tmp_path / "woven.mkv", 8, codec="ffv1")
    v = media.probe(src).video
    assert (v.field_order, v.deinterlace) == ("tt", "bwdif=mode=send_frame:parity=tff:deint=all")
    frames = np.stack(media.first_frames(src, 8))
    left_edges = [int(np.nonzero(f[H // 2 - 1, :, 1] > 130)[0].min()) for f in frames]  # an odd line
    assert combing(frames) < 0.5 and left_edges == [bar_at(2 * i) for i in range(8)]  # the top field's instant


def test_field_rate_timestamps_shots_and_timecode_count_fields() -> None:
    """Frame ``k`` becomes fields ``2k`` and ``2k + 1``: the first at twice its PTS (half the time
    base), the second halfway to the next frame's, the last frame's second one field after its
    first at the previous spacing; cuts and fades move to the fields; the timecode counts fields."""
    index = media.FrameIndex(pts=[100, 140, 180, 230], time_base=Fraction(1, 1000), has_pts=True,
                             qp=[20.0, 30.0, 25.0, 22.0], qp_codec="h264")  # fmt: skip
    fields = index.at_field_rate()
    assert fields.pts == [200, 240, 280, 320, 360, 410, 460, 510] and fields.time_base == Fraction(1, 2000)
    assert fields.qp == [20.0, 20.0, 30.0, 30.0, 25.0, 25.0, 22.0, 22.0] and fields.mean_qp(2, 4) == 30.0
    with pytest.raises(ValueError, match="two frames"):
        media.field_pts([100])
    shots = ShotList(frames=10, cuts=[4], fades=[Fade("out", 6, 9)]).at_field_rate()
    assert (shots.frames, shots.cuts, shots.fades) == (20, [8], [Fade("out", 12, 19)])
    assert shots.shots() == [(0, 8), (8, 12), (12, 20)]
    assert media._timecode_at_double_rate("10:00:00:12") == "10:00:00:24"
    assert media._timecode_at_double_rate("01:00:00;29") == "01:00:00;58"  # 29.97 drop-frame -> 59.94
    assert media.field_rate_filter(media.DEINTERLACE) == "bwdif=mode=send_field:parity=auto:deint=all"


@pytest.mark.parametrize("codec", ["libx264", "ffv1"])
def test_field_rate_decode_gives_every_field_its_own_picture_in_any_chunking(tmp_path: Path, codec: str) -> None:
    """At field rate (25i -> 50p) each field becomes a whole picture of its own instant, stamped as
    :meth:`FrameIndex.at_field_rate` lists, and chunks starting on any field (odd ones too, the
    second field of a frame) decode to the frames of one whole pass.

    FFV1's container declares top field first: the order is exact. x264's field-coded frames,
    although encoded with ``tff=1``, come out of FFmpeg's decoder not flagged top field first, and
    bwdif follows each frame's flags (as ``ffmpeg -vf bwdif=1`` does): there the test takes the
    order of the first pair and requires every pair to keep it."""
    src = interlaced_clip(tmp_path / ("i.mp4" if codec == "libx264" else "i.mkv"), codec=codec)
    probed = media.probe(src)
    info, index = media.at_field_rate(probed), media.scan(src, probed)[0].at_field_rate()
    assert (info.video.frame_rate, info.video.frames, len(index), info.video.field_rate) == ("50/1", 40, 40, True)
    assert Fraction(info.video.time_base) == Fraction(probed.video.time_base) / 2
    batches = list(media.read_frames(src, info, index, 0, 40))
    whole = np.concatenate([f for _, f in batches])
    assert [p for ps, _ in batches for p in ps] == index.pts == sorted(set(index.pts))
    parts = [f for a, b in ((0, 5), (5, 11), (11, 30), (30, 40)) for _, f in media.read_frames(src, info, index, a, b)]
    assert np.array_equal(whole, np.concatenate(parts))

    swapped = 0 if codec == "ffv1" else int(psnr(whole[2], progressive(3), 255) > psnr(whole[2], progressive(2), 255))
    quality = [psnr(f, progressive(j ^ swapped), 255) for j, f in enumerate(whole)]
    print(f"{codec}: field pictures against their instants, min {min(quality[2:-2]):.1f} dB (first and last "
          f"frames {min(quality[:2] + quality[-2:]):.1f}), combing {combing(whole):.3f}")  # fmt: skip
    # measured 48.5 dB both ways; x264's first and last frames 30.0 dB (a field interpolated
    # without a previous, or a next, frame)
    assert min(quality[2:-2]) > 40.0 and min(quality[:2] + quality[-2:]) > 28.0 and combing(whole) < 0.5


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_interlaced_source_restores_at_field_rate_on_request(tmp_path: Path) -> None:
    """``field_rate=True``: 20 interlaced frames at 25 fps become 40 progressive ones at 50 fps,
    each at its field's instant, the timecode counted at 50 fps, chunk boundaries on odd fields
    too, the audio carried bit for bit; the report keeps the source's own probe and says what was done."""
    from flows.restore_video import run
    from restora.spec import RestoreSpec

    woven_frames = [woven(i) for i in range(20)]
    src = make_clip(tmp_path / "i.mkv", woven_frames, time_base=Fraction(1, 1000), codec="ffv1",
                    audio_seconds=0.8, timecode="09:59:30:12", field_order=2)  # fmt: skip
    out = tmp_path / "i_50p.mkv"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=1, chunk_frames=7, field_rate=True))
    v = media.probe(out).video
    assert (v.frames, v.frame_rate, v.field_order, v.timecode) == (40, "50/1", "progressive", "09:59:30:24")
    audio = media.stream_packet_digest(src)
    assert audio[0] > 0 and media.stream_packet_digest(out) == audio  # the same audio packets
    with av.open(str(out)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert times == pytest.approx([i / 50 for i in range(40)], abs=1e-3)
    frames = np.stack(media.first_frames(out, 40))
    quality = [psnr(f, progressive(j), 255) for j, f in enumerate(frames)]
    assert min(quality) > 40.0, quality  # lossless FFV1 in and out: the field pictures themselves
    report = json.loads(Path(result["report"]).read_text())
    assert report["signal"]["scan"]["field_rate"] is True
    assert report["signal"]["frame_rate"] == {"source": "25/1", "output": "50/1"}
    assert report["signal"]["timecode"] == {"source": "09:59:30:12", "output": "09:59:30:24"}
    assert report["signal"]["not_carried"] == []
    assert report["input"]["probe"]["video"]["frame_rate"] == "25/1"
    assert report["provenance"]["deinterlace"] == "bwdif=mode=send_field:parity=tff:deint=all"
    assert [c["start"] for c in report["chunks"]][:3] == [0, 7, 14]
    # a before/after still pairs source frame 5 with restored frame 10, the same instant (its first field)
    from restora.compare import before_after

    assert before_after(src, out, tmp_path / "still.png", frame=5)["psnr_y_vs_bicubic"] > 45.0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_interlaced_source_restores_to_progressive_with_the_deinterlacer_on_record(tmp_path: Path) -> None:
    from flows.restore_video import run
    from restora.spec import RestoreSpec

    src = interlaced_clip(tmp_path / "i.mp4")
    out = tmp_path / "i_x2.mp4"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=2, chunk_frames=8))
    v = media.probe(out).video
    assert (v.width, v.height, v.frames, v.field_order) == (2 * W, 2 * H, 20, "progressive")
    with av.open(str(out)) as c, av.open(str(src)) as s:
        assert [f.pts for f in c.decode(video=0)] == [f.pts for f in s.decode(video=0)]
    report = json.loads(Path(result["report"]).read_text())
    assert report["signal"]["scan"]["output"] == "progressive"
    assert report["signal"]["timecode"] == {"source": "09:59:30:00", "output": "09:59:30:00"}
    assert report["signal"]["not_carried"] == []
    assert (
        report["signal"]["scan"]["deinterlaced"] == report["provenance"]["deinterlace"] == media.DEINTERLACE
    )  # frames flagged
    frames = np.stack(media.first_frames(out, 20))
    assert combing(frames) < 1.0


@pytest.mark.parametrize(
    ("codec", "field_order", "first"), [("ffv1", 2, "top"), ("ffv1", 3, "bottom"), ("libx264", None, "bottom")]
)
def test_probe_tells_which_field_the_deinterlacer_takes_first(
    codec: str, field_order: int | None, first: str, tmp_path: Path
) -> None:
    """Read off the pictures (PyAV exposes no frame's field flag): FFV1 at the order its container
    declares; x264 ``tff=1`` as FFmpeg's decoder flags its frames, bottom first, whatever the
    stream declares (``tt``). Re-interlacing follows this, so fields go back where bwdif took them."""
    if codec == "ffv1":
        frames = [woven(i) for i in range(4)]
        src = make_clip(tmp_path / "f.mkv", frames, codec="ffv1", field_order=field_order)
    else:
        src = interlaced_clip(tmp_path / "x.mp4", n=4)
    v = media.probe(src).video
    assert v.interlaced and v.first_field == first
    progressive_src = media.probe(make_clip(tmp_path / "p.mp4", [progressive(0)] * 2))
    assert progressive_src.video.first_field is None


def test_weave_inverts_the_field_rate_decode_and_subsamples_chroma_per_field() -> None:
    """``weave`` puts the first field's lines from the first picture and the other's from the second;
    the converter makes 4:2:0 chroma from each field's own lines (within one code of converting the
    two fields apart), where a progressive conversion mixes the fields' colours (77 codes off here)."""
    a, b = progressive(0), progressive(1)
    assert np.array_equal(media.weave(a, b, top_first=True), woven(0))
    bottom_first = media.weave(a, b, top_first=False)
    assert np.array_equal(bottom_first[1::2], a[1::2]) and np.array_equal(bottom_first[0::2], b[0::2])

    top = np.zeros((32, 96, 3), np.uint8)
    top[..., 0], top[:, 10:40] = 220, (20, 200, 30)
    bottom = np.zeros((32, 96, 3), np.uint8)
    bottom[..., 2], bottom[:, 50:80] = 220, (250, 240, 10)
    frame = media.weave(np.repeat(top, 2, 0), np.repeat(bottom, 2, 0), top_first=True)
    color = media.ColorInfo(primaries=1, transfer=1, matrix=1, range=1)
    params = media.EncodeParams(codec="libx264", pix_fmt="yuv420p", width=96, height=64, time_base="1/25",
                                frame_rate="25", color=color, field_order="tt")  # fmt: skip

    def planes(f: av.VideoFrame) -> tuple[np.ndarray, ...]:
        x, h = f.to_ndarray().astype(int), f.height
        return x[:h], x[h : h + h // 4].reshape(h // 2, -1), x[h + h // 4 :].reshape(h // 2, -1)

    def convert(rgb: np.ndarray) -> tuple[np.ndarray, ...]:
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return planes(vf.reformat(format="yuv420p", dst_colorspace=media._src_colorspace(color), dst_color_range=1))

    g = media.interlaced_converter(params, "rgb24")
    vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
    vf.pts = 0
    g.vpush(vf)
    out = g.vpull()
    assert out.interlaced_frame
    y, u, v = planes(out)
    (yt, ut, vt), (yb, ub, vb) = convert(top), convert(bottom)
    for got, want in ((y[0::2], yt), (y[1::2], yb), (u[0::2], ut), (u[1::2], ub), (v[0::2], vt), (v[1::2], vb)):
        assert np.abs(got - want).max() <= 1
    mixed = int(np.abs(convert(frame)[1][0::2] - ut).max())
    print(f"4:2:0 chroma of a woven frame converted as progressive: {mixed} codes off a field's own")
    assert mixed > 20  # the progressive conversion, for contrast


def test_weaving_follows_the_first_field_and_the_wrong_one_shows(tmp_path: Path) -> None:
    """The field-rate decode of a lossless interlaced source, woven back by the chunk writer at the
    first field probe found, gives the source's frames (above 40 dB); woven at the other parity
    every field is bwdif's interpolated lines instead, far below (``-s`` prints both)."""
    src = make_clip(tmp_path / "i.mkv", [woven(i) for i in range(8)], codec="ffv1", field_order=2)
    fields = media.at_field_rate(media.probe(src))
    index = media.scan(src, media.probe(src))[0].at_field_rate()
    right = media.choose_encode(fields, 1, "o.mkv", 16, "fast", reinterlace=True)
    quality = {}
    for order in (right.field_order, "bb" if right.field_order == "tt" else "tt"):
        out = tmp_path / f"{order}.nut"
        writer = media.ChunkWriter(out, right.model_copy(update={"field_order": order}))
        for pts, frames in media.read_frames(src, fields, index, 0, len(index), batch=3):
            writer.write(pts, frames)
        writer.close()
        with av.open(str(out)) as c:
            got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        quality[order] = min(psnr(g, woven(i), 255) for i, g in enumerate(got))
    wrong = next(v for k, v in quality.items() if k != right.field_order)
    print(f"woven at the first field: {quality[right.field_order]:.2f} dB at worst, at the other: {wrong:.2f} dB")
    assert quality[right.field_order] > 40.0 and wrong < 36.0


def test_reinterlace_encoding_follows_the_source_and_refuses_what_cannot_be_interlaced(tmp_path: Path) -> None:
    src = media.probe(interlaced_clip(tmp_path / "i.mp4", n=4))
    fields = media.at_field_rate(src)
    enc = media.choose_encode(fields, 2, "o.mov", 16, "fast", reinterlace=True)
    assert (enc.frame_rate, enc.time_base, enc.field_order) == ("25/1", src.video.time_base, "bb")
    assert enc.options()["x264-params"] == "interlaced=1"
    with pytest.raises(ConfigError, match="needs an interlaced source"):
        media.choose_encode(media.probe(make_clip(tmp_path / "p.mp4", [progressive(0)] * 2)), 1, "o.mp4", 16, "fast",
                            reinterlace=True)  # fmt: skip
    xdcam = media.choose_encode(fields, 2, "o.mxf", 16, "fast", reinterlace=True)  # DNxHR has no interlaced coding
    assert (xdcam.codec, xdcam.pix_fmt, xdcam.field_order, xdcam.options()["flags"]) == (
        "mpeg2video", "yuv422p", "bb", "+ilme+ildct+cgop")  # fmt: skip
    with pytest.raises(ConfigError, match="DNxHR has no interlaced coding"):
        media.choose_encode(fields, 2, "o.mxf", 16, "fast", reinterlace=True, mxf_codec="dnxhr")
    wide = fields.model_copy(update={"video": fields.video.model_copy(update={"width": 1000})})
    with pytest.raises(ConfigError, match="at most 1920x1088"):  # MPEG-2 4:2:2 @ High Level
        media.choose_encode(wide, 2, "o.mxf", 16, "fast", reinterlace=True)
    hdr = fields.model_copy(update={"video": fields.video.model_copy(update={"color": fields.video.color.model_copy(
        update={"transfer": media.TRC_SMPTE2084}), "bit_depth": 10, "pix_fmt": "yuv420p10le"})})  # fmt: skip
    with pytest.raises(ConfigError, match="interlaced HEVC"):
        media.choose_encode(hdr, 1, "o.mp4", 16, "fast", reinterlace=True)
    from flows.restore_video import validate
    from restora.spec import RestoreSpec

    with pytest.raises(ConfigError, match="exclude each other"):
        validate(RestoreSpec(input="i.mp4", output="o.mp4", field_rate=True, reinterlace=True))
    validate(RestoreSpec(input="i.mp4", output="o.mov", reinterlace=True), src)  # checked as decoded: per field


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_interlaced_source_restores_per_field_and_is_delivered_interlaced(tmp_path: Path) -> None:
    """``reinterlace=True``: 20 interlaced frames (FFV1, top field first, audio, timecode) are restored
    as 40 field pictures and woven back: 20 interlaced frames at 25 fps, top field first, at the
    source's timestamps and timecode, each field the source's own (lossless in and out), in chunks of
    whole frames (7 asked, 8 used). Woven at the wrong parity, each field would be bwdif's
    interpolated lines instead (15 dB: ``test_weaving_follows_the_first_field_and_the_wrong_one_shows``)."""
    from flows.restore_video import run
    from restora.compare import before_after
    from restora.spec import RestoreSpec

    src = make_clip(tmp_path / "i.mkv", [woven(i) for i in range(20)], time_base=Fraction(1, 1000), codec="ffv1",
                    audio_seconds=0.8, timecode="09:59:30:12", field_order=2)  # fmt: skip
    out = tmp_path / "i_50i.mkv"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=1, chunk_frames=7, reinterlace=True))
    v = media.probe(out).video
    assert (v.frames, v.frame_rate, v.timecode, v.interlaced, v.first_field) == (20, "25/1", "09:59:30:12", True, "top")
    assert media.stream_packet_digest(out) == media.stream_packet_digest(src)
    with av.open(str(out)) as c, av.open(str(src)) as s:
        assert [f.pts for f in c.decode(video=0)] == [f.pts for f in s.decode(video=0)]
        c.seek(0)
        raw = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]  # not deinterlaced: the woven frames
    quality = [psnr(f, woven(i), 255) for i, f in enumerate(raw)]
    print(f"re-interlaced frames against the source's woven frames: {min(quality):.2f} dB at worst")
    assert min(quality) > 40.0, quality
    report = json.loads(Path(result["report"]).read_text())
    scan = report["signal"]["scan"]
    assert scan["reinterlaced"] is True and scan["first_field"] == {"source": "top", "output": "top"}
    assert report["signal"]["frame_rate"] == {"source": "25/1", "output": "25/1"}
    assert report["signal"]["timecode"] == {"source": "09:59:30:12", "output": "09:59:30:12"}
    assert report["signal"]["not_carried"] == []
    assert [c["start"] for c in report["chunks"]] == [0, 8, 16, 24, 32]
    # a still pairs source frame 5 with output frame 5, both deinterlaced the same way
    assert before_after(src, out, tmp_path / "still.png", frame=5)["psnr_y_vs_bicubic"] > 40.0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("ext", "codec"), [(".mov", "h264"), (".mxf", "mpeg2video")])
def test_reinterlace_from_the_command_line_keeps_the_motion_between_fields(
    ext: str, codec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``restora restore i.mp4 -o o.mov --scale 2 --reinterlace``: x264 MBAFF at twice the size
    (into MXF: long-GOP MPEG-2 4:2:2, as XDCAM HD422), bottom field first as the source was
    deinterlaced, the timecode kept, and the two fields of each frame still at their own instants
    (combed where the bar moves, like the source; a progressive restore is not)."""
    from restora.cli import main

    src = interlaced_clip(tmp_path / "i.mp4")
    out = tmp_path / f"o{ext}"
    assert main(["restore", str(src), "-o", str(out), "--scale", "2", "--reinterlace", "--chunk-frames", "9"]) == 0
    assert "restored per field and re-interlaced (bottom field first, 25/1 fps)" in capsys.readouterr().out
    v = media.probe(out).video
    assert (v.codec, v.width, v.height, v.frames, v.first_field) == (codec, 2 * W, 2 * H, 20, "bottom")
    assert v.timecode == "09:59:30:00"
    with av.open(str(out)) as c, av.open(str(src)) as s:
        decoded = list(c.decode(video=0))
        raw = np.stack([f.to_ndarray(format="rgb24") for f in decoded])
        source = np.stack([f.to_ndarray(format="rgb24") for f in s.decode(video=0)])
    assert [float(f.pts * f.time_base) for f in decoded] == pytest.approx([i / 25 for i in range(20)], abs=1e-3)
    again = combing(np.stack(media.first_frames(out, 20)))
    print(f"{ext} combing: source {combing(source):.2f}, re-interlaced x2 {combing(raw):.2f}, deinterlaced {again:.2f}")
    assert combing(raw) > 0.5 * combing(source) > 2.0, (combing(raw), combing(source))
    assert again < 1.0  # and they deinterlace cleanly again
