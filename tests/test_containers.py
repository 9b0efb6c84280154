"""Broadcast delivery containers: MXF OP1a (DNxHR, 24-bit PCM aligned to the picture, timecode) and
MPEG-TS, and the check that refuses a source stream a container cannot hold before any work."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from restora import media
from restora.containers import carry_plan, output_format
from restora.errors import ConfigError
from restora.metrics import psnr
from tests.conftest import cut_frames, encode_frames, make_clip, one_chunk, with_subtitles

TONE_HZ = 440.0
TONE_AMP = 0.3


def tone_clip(
    path: Path, audio_start_s: float, video_start_s: float = 0.0, rate: int = 44100, channels: int = 2
) -> Path:
    """Matroska: 25 frames of 256x128 H.264 at 25 fps from ``video_start_s``, and 16-bit PCM audio
    (``rate`` Hz, ``channels``) of a 440 Hz sine whose phase is 0 at ``audio_start_s``, lasting past
    the video's end."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 256, 128, "yuv420p"
        vs.codec_context.options = {"crf": "18", "preset": "ultrafast"}
        aus = out.add_stream("pcm_s16le", rate=rate)
        aus.layout = layout  # type: ignore[union-attr]
        v0 = round(video_start_s * 25)
        for i, rgb in enumerate(cut_frames(25, [], h=128, w=256)):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = v0 + i, Fraction(1, 25)
            out.mux(vs.encode(f))
        out.mux(vs.encode())
        n = int(rate * (video_start_s + 1.5 - audio_start_s))
        wave = TONE_AMP * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / rate)
        pcm = np.repeat((wave * 32767).astype(np.int16)[:, None], channels, 1)
        a0 = round(audio_start_s * rate)
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(pcm[i : i + 1024].reshape(1, -1).copy(), format="s16", layout=layout)
            af.sample_rate, af.pts, af.time_base = rate, a0 + i, Fraction(1, rate)
            out.mux(aus.encode(af))
        out.mux(aus.encode())
    return path


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream as float ``(samples, channels)`` in [-1, 1], and its sample rate."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        parts = [f.to_ndarray().reshape(-1, st.channels) for f in c.decode(st)]
        scale = 2.0**31 if parts[0].dtype == np.int32 else 2.0**15
        return np.concatenate(parts).astype(np.float64) / scale, st.sample_rate


def aac_payloads(path: Path) -> list[bytes]:
    """The raw AAC frames of the first audio stream, less the ADTS header (7 or 9 bytes) that a
    transport stream puts before each (MP4 stores them bare)."""
    with av.open(str(path)) as c:
        frames = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    return [f[(7 if f[1] & 1 else 9) :] if f[:2] in (b"\xff\xf1", b"\xff\xf9") else f for f in frames]


def test_output_extensions_name_the_broadcast_containers() -> None:
    from restora.cli import default_output

    assert output_format("a.MXF") == "mxf" and output_format("b.ts") == "mpegts"
    with pytest.raises(ConfigError, match="unsupported output extension"):
        output_format("c.m2ts")
    # without -o, a broadcast source is delivered in its own container
    assert default_output("/in/tape.MXF", False) == "/in/tape.restored.mxf"
    assert default_output("/in/feed.ts", False) == "/in/feed.restored.ts"
    assert default_output("/in/old.avi", False) == "/in/old.restored.mp4"
    assert default_output("/in/master.mxf", True) == "/in/master.restored.mkv"


@pytest.mark.parametrize(
    ("pix_fmt", "codec", "profile", "out_fmt"),
    [
        ("yuv420p", "libx264", "dnxhr_hq", "yuv422p"),
        ("yuv420p10le", "libx264", "dnxhr_hqx", "yuv422p10le"),
        ("yuv444p", "libx264", "dnxhr_444", "yuv444p10le"),
        ("bgr0", "ffv1", "dnxhr_444", "yuv444p10le"),
    ],
)
def test_mxf_video_is_dnxhr_at_the_source_depth_and_subsampling(
    pix_fmt: str, codec: str, profile: str, out_fmt: str, tmp_path: Path
) -> None:
    src = make_clip(tmp_path / "s.mkv", cut_frames(2, [], h=64, w=128), codec=codec, pix_fmt=pix_fmt)
    enc = media.choose_encode(media.probe(src), 2, "o.mxf", 16, "fast")
    assert (enc.codec, enc.profile, enc.pix_fmt, enc.options()) == ("dnxhd", profile, out_fmt, {"profile": profile})


def test_xdcam_makes_progressive_mxf_mpeg2_422(tmp_path: Path) -> None:
    """``--mxf-codec xdcam``: 8-bit MPEG-2 4:2:2, closed GOPs of 12, 30 Mbit/s SD and 50 HD; a deeper
    source needs ``--bit-depth 8``; the option is refused for other containers."""
    src = media.probe(make_clip(tmp_path / "s.mp4", cut_frames(2, [], h=64, w=128)))
    sd = media.choose_encode(src, 2, "o.mxf", 16, "fast", mxf_codec="xdcam")
    assert (sd.codec, sd.pix_fmt, sd.field_order) == ("mpeg2video", "yuv422p", None)
    assert {k: sd.options()[k] for k in ("b", "g", "flags")} == {"b": "30M", "g": "12", "flags": "+cgop"}
    hd = src.model_copy(update={"video": src.video.model_copy(update={"width": 640, "height": 360})})
    assert media.choose_encode(hd, 2, "o.mxf", 16, "fast", mxf_codec="xdcam").options()["b"] == "50M"
    assert media.choose_encode(src, 2, "o.mxf", 16, "fast", mxf_codec="dnxhr").codec == "dnxhd"
    deep = media.probe(make_clip(tmp_path / "d.mkv", cut_frames(2, [], h=64, w=128), pix_fmt="yuv420p10le"))
    with pytest.raises(ConfigError, match="XDCAM HD422 is 8-bit"):
        media.choose_encode(deep, 2, "o.mxf", 16, "fast", mxf_codec="xdcam")
    assert media.choose_encode(deep, 2, "o.mxf", 16, "fast", 8, mxf_codec="xdcam").pix_fmt == "yuv422p"
    with pytest.raises(ConfigError, match=re.escape("--mxf-codec is for .mxf output, not .mov")):
        media.choose_encode(src, 2, "o.mov", 16, "fast", mxf_codec="xdcam")


def test_mpeg2_chunk_late_in_a_source_with_a_fine_time_base(tmp_path: Path) -> None:
    """An MPEG-2 (XDCAM) chunk starting at frame 96 of a source timed in 1/12800 (an MP4's): the
    encoder's packets come in 1/25, and the DTS repair compared them with the chunk's first PTS in
    1/12800, took every DTS for uninitialised and put one after its PTS: the muxer refused the chunk
    (found on Big Buck Bunny). Now every frame is written and decodes at its source time."""
    src = media.probe(make_clip(tmp_path / "s.mp4", cut_frames(2, [], h=128, w=256), time_base=Fraction(1, 12800)))
    params = media.choose_encode(src, 1, "o.mxf", 16, "fast", mxf_codec="xdcam")
    assert params.time_base == "1/12800"
    pts = [(96 + i) * 512 for i in range(12)]
    frames = np.stack(cut_frames(12, [], h=128, w=256))
    w = media.ChunkWriter(tmp_path / "c.mov", params)
    w.write(pts, frames)
    assert w.close() == 12
    with av.open(str(tmp_path / "c.mov")) as c:
        got = sorted(f.pts for f in c.decode(video=0))
    assert got == pts


def test_restore_to_xdcam_mxf_end_to_end(tmp_path: Path) -> None:
    """``restora restore in.mov -o out.mxf --mxf-codec xdcam`` in chunks of 8 over three shots: every
    frame decodes, in order and at the source's rate, at a constant 30 Mbit/s (SD; the encoder pads
    easy pictures), the PCM audio and timecode are there, and the
    pictures are those of the DNxHR delivery of the same restore within the codec's loss (measured:
    40.5 dB), each chunk opening on a keyframe (closed GOPs join)."""
    from restora.cli import main

    src = make_clip(tmp_path / "s.mov", cut_frames(20, [2, 11], h=64, w=128), audio_seconds=0.8, timecode="10:00:00:00")
    outs = {}
    for codec in ("xdcam", "dnxhr"):
        outs[codec] = tmp_path / f"{codec}.mxf"
        argv = [
            "restore",
            str(src),
            "-o",
            str(outs[codec]),
            "--scale",
            "2",
            "--chunk-frames",
            "8",
            "--mxf-codec",
            codec,
        ]
        assert main(argv) == 0
    got = media.probe(outs["xdcam"])
    assert (got.video.codec, got.video.pix_fmt, got.video.width, got.video.height) == (
        "mpeg2video",
        "yuv422p",
        256,
        128,
    )
    assert (got.video.frames, got.video.frame_rate, got.video.timecode) == (20, "25/1", "10:00:00:00")
    assert got.audio[0].codec == "pcm_s24le"
    with av.open(str(outs["xdcam"])) as c:
        pts = [f.pts for f in c.decode(video=0)]
    assert pts == sorted(pts) and len(pts) == 20
    with av.open(str(outs["xdcam"])) as c:
        keys = [i for i, pkt in enumerate(p for p in c.demux(video=0) if p.size) if pkt.is_keyframe]
    assert {0, 2, 10, 11, 19}.issubset(keys)  # shot and chunk starts (shots 0-1, 2-10, 11-19; chunks of 8)
    with av.open(str(outs["xdcam"])) as c:
        video_bits = 8 * sum(p.size for p in c.demux(video=0) if p.size)
    assert video_bits / 0.8 == pytest.approx(30e6, rel=0.05)  # constant 30 Mbit/s (SD), as XDCAM HD422 is
    xd, dn = (np.stack(media.first_frames(outs[k], 20)) for k in ("xdcam", "dnxhr"))
    db = psnr(xd, dn, 255.0)
    print(f"\nXDCAM HD422 against DNxHR HQ of the same restore: {db:.1f} dB")
    assert db > 35.0


def test_mxf_refuses_a_picture_it_cannot_hold(tmp_path: Path) -> None:
    small = media.probe(make_clip(tmp_path / "s.mp4", cut_frames(3, [], h=64, w=128)))
    with pytest.raises(ConfigError, match="below DNxHR's 256x120"):
        media.choose_encode(small, 1, "o.mxf", 16, "fast")
    media.choose_encode(small, 2, "o.mxf", 16, "fast")  # 256x128: enough
    odd_rate = media.probe(
        make_clip(tmp_path / "r.mp4", cut_frames(3, [], h=64, w=128), rate=Fraction(15), time_base=Fraction(1, 15))
    )
    with pytest.raises(ConfigError, match="no edit rate 15/1"):
        media.choose_encode(odd_rate, 2, "o.mxf", 16, "fast")
    pts = [0, 3000, 6000, 12000, 15000, 21000, 24000, 27000]  # 1/90000: 30 fps with frames missing
    vfr = media.probe(make_clip(tmp_path / "v.mp4", cut_frames(8, [], h=64, w=128), pts=pts))
    assert vfr.video.vfr
    with pytest.raises(ConfigError, match="constant frame rate"):
        media.choose_encode(vfr, 2, "o.mxf", 16, "fast")


def test_carry_plan_follows_each_containers_rules(tmp_path: Path) -> None:
    """Per stream: copy, PCM (MXF audio), or a ConfigError naming the stream. The muxers' own codec
    tables decide for MP4/MOV/Matroska, so PGS subtitles go into Matroska (PyAV's encoder-only
    ``supported_codecs``, checked before, refused them: FFmpeg has no PGS encoder)."""
    info = media.probe(make_clip(tmp_path / "s.mp4", cut_frames(2, [], h=64, w=128), audio_seconds=0.1))
    audio = info.audio[0]

    def with_streams(*codecs: tuple[str, str]) -> media.MediaInfo:
        streams = [audio.model_copy(update={"index": 1 + i, "type": t, "codec": c}) for i, (t, c) in enumerate(codecs)]
        return info.model_copy(
            update={
                "audio": [s for s in streams if s.type == "audio"],
                "subtitles": [s for s in streams if s.type != "audio"],
            }
        )

    assert carry_plan(with_streams(("audio", "aac"), ("audio", "pcm_s24le")), "o.mxf") == {1: "pcm", 2: "pcm"}
    assert carry_plan(with_streams(("audio", "aac"), ("subtitle", "hdmv_pgs_subtitle")), "o.mkv") == {
        1: "copy",
        2: "copy",
    }
    assert carry_plan(with_streams(("audio", "pcm_s24le"), ("subtitle", "mov_text")), "o.mp4") == {1: "copy", 2: "copy"}
    assert carry_plan(with_streams(("audio", "ac3"), ("subtitle", "dvb_teletext")), "o.ts") == {1: "copy", 2: "copy"}
    refused = [
        ("o.mxf", ("subtitle", "subrip"), "subtitle stream 1 \\(subrip\\) cannot go into .mxf: MXF holds no subtitle"),
        ("o.mxf", ("audio", "unknown"), "no decoder for it"),
        ("o.mp4", ("subtitle", "subrip"), "mp4 cannot store subrip"),
        ("o.mkv", ("subtitle", "mov_text"), "matroska cannot store mov_text"),
        ("o.ts", ("subtitle", "subrip"), "a transport stream carries only"),
        ("o.ts", ("audio", "pcm_s24le"), "audio stream 1 \\(pcm_s24le\\)"),
    ]
    for output, stream, message in refused:
        with pytest.raises(ConfigError, match=message):
            carry_plan(with_streams(stream), output)


@pytest.mark.parametrize(
    ("audio_start_s", "video_start_s", "rate", "channels"),
    # offsets that are not whole periods of the tone, so a misplaced start shows as a phase error
    [(0.21, 0.0, 44100, 2), (0.0, 0.44, 48000, 1), (0.0, 0.0, 32000, 6)],
    ids=["audio-starts-late-44k1", "video-starts-late-48k", "aligned-32k-5.1"],
)
def test_mxf_audio_is_pcm_48k_at_the_pictures_time(
    audio_start_s: float, video_start_s: float, rate: int, channels: int, tmp_path: Path
) -> None:
    """Whatever the source's rate, channels and start offsets, the MXF's 24-bit 48 kHz audio has every
    sample at its source time relative to the first picture: silence where the audio had not begun,
    the part before the first picture cut, and the tone's phase where it was (within 1 ms, lip sync
    needs 40); the start timecode goes into the MXF."""
    src = tone_clip(tmp_path / "s.mkv", audio_start_s, video_start_s, rate, channels)
    info, index = one_chunk(src, tmp_path / "c.mov", "o.mxf")
    out = tmp_path / "o.mxf"
    counts = media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out)
    assert counts["pcm"] == [1]
    got = media.probe(out)
    assert (got.container, got.video.codec, got.video.frames, got.video.frame_rate) == ("mxf", "dnxhd", 25, "25/1")
    (a,) = got.audio
    assert (a.codec, a.sample_rate, a.channels) == ("pcm_s24le", 48000, channels)
    pcm, sr = decoded_audio(out)
    assert np.abs(pcm - pcm[:, :1]).max() < 1e-4  # every channel the same tone, none dropped or swapped
    t = np.arange(len(pcm)) / sr + video_start_s  # each output sample's time on the source timeline
    lead = t < audio_start_s
    want = np.where(lead, 0.0, TONE_AMP * np.sin(2 * np.pi * TONE_HZ * (t - audio_start_s)))
    assert np.abs(pcm[lead, 0]).max(initial=0) < 1e-6
    body = slice(int(0.05 * sr) + lead.sum(), int(0.9 * sr))  # away from the resampler's edges
    # a lag of d seconds leaves a residual of about amp * 2*pi*f*d: 1 ms would give 0.83
    residual = np.sqrt(np.mean((pcm[body, 0] - want[body]) ** 2)) / (TONE_AMP / np.sqrt(2))
    assert residual < 0.05, residual
    onset = np.flatnonzero(np.abs(pcm[:, 0]) > 0.01)[0] / sr + video_start_s
    assert abs(onset - max(audio_start_s, video_start_s)) < 0.001, onset


def test_audio_gap_inside_the_stream_is_kept_as_silence(tmp_path: Path) -> None:
    """A stream that lost 0.3 s of audio packets (as a transport stream does): the samples after the
    gap stay at their own times in the MXF (silence fills the gap) instead of sliding 0.3 s early for
    the rest. NUT keeps the audio's 1/44100 time base (Matroska would round the resumption to 1 ms,
    a phase error this test would see)."""
    full = tone_clip(tmp_path / "full.nut", 0.0)
    src = tmp_path / "gap.nut"
    with av.open(str(full)) as c, av.open(str(src), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in c.streams}
        for pkt in c.demux():
            if pkt.size == 0 or pkt.pts is None or pkt.time_base is None:
                continue
            if pkt.stream.type == "audio" and 0.4 <= pkt.pts * pkt.time_base < 0.7:
                continue
            pkt.stream = streams[pkt.stream.index]
            out.mux(pkt)
    info, index = one_chunk(src, tmp_path / "c.mov", "o.mxf")
    out_path = tmp_path / "o.mxf"
    media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out_path)
    pcm, sr = decoded_audio(out_path)
    t = np.arange(len(pcm)) / sr
    want = TONE_AMP * np.sin(2 * np.pi * TONE_HZ * t)
    after = (t > 0.75) & (t < 0.95)
    assert np.sqrt(np.mean((pcm[after, 0] - want[after]) ** 2)) < 0.02
    hole = (t > 0.42) & (t < 0.68)
    assert np.abs(pcm[hole, 0]).max() < 1e-6


def test_transport_stream_copies_audio_and_reports_what_it_drops(tmp_path: Path) -> None:
    """MPEG-TS: H.264 and AAC copied as they are; the timecode and chapters it cannot hold are named
    by the report (``signal.not_carried``), not silently lost."""
    src = make_clip(tmp_path / "s.mp4", cut_frames(10, [], h=64, w=128), audio_seconds=0.4, timecode="01:00:00:00")
    info, index = one_chunk(src, tmp_path / "c.mov", "o.ts")
    out = tmp_path / "o.ts"
    counts = media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out)
    got = media.probe(out)
    assert (got.container, got.video.codec, got.video.frames, counts["pcm"]) == ("mpegts", "h264", 10, [])
    assert aac_payloads(out) == aac_payloads(src)  # the audio untouched, only framed for the transport stream
    assert got.video.timecode is None


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_restore_to_mxf_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``restora restore in.mkv -o out.mxf``: DNxHR at twice the size, the source's timecode in the
    MXF, AAC audio as aligned PCM, chapters and the mono label (MXF here has no channel labels)
    named as not carried in the report and on the console."""
    from restora.cli import main

    src = make_clip(tmp_path / "s.mov", cut_frames(20, [2, 11], h=64, w=128), audio_seconds=0.8, timecode="10:00:00:00")
    with_chapters = tmp_path / "c.mkv"
    with av.open(str(src)) as c, av.open(str(with_chapters), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (c.streams.video[0], c.streams.audio[0])}
        streams[c.streams.video[0].index].metadata["timecode"] = "10:00:00:00"
        out.set_chapters(
            [{"id": 1, "start": 0, "end": 400, "time_base": Fraction(1, 1000), "metadata": {"title": "A"}}]
        )
        for pkt in c.demux(*(c.streams[i] for i in streams)):
            if pkt.size:
                pkt.stream = streams[pkt.stream.index]
                out.mux(pkt)
    out = tmp_path / "o.mxf"
    assert main(["restore", str(with_chapters), "-o", str(out), "--scale", "2", "--chunk-frames", "8"]) == 0
    got = media.probe(out)
    assert (got.video.codec, got.video.width, got.video.height, got.video.frames) == ("dnxhd", 256, 128, 20)
    assert got.video.timecode == "10:00:00:00" and got.audio[0].codec == "pcm_s24le"
    report = json.loads(Path(str(out) + ".report.json").read_text())
    assert report["signal"]["not_carried"] == ["chapters", "audio_channel_layout"]  # MXF: no channel labels
    assert report["provenance"]["audio_to_pcm"] == [1] and report["provenance"]["encode"] == {"codec": "dnxhd"}
    printed = capsys.readouterr().out
    assert "audio:   stream 1 as 24-bit 48 kHz PCM" in printed
    assert "warning: the source's chapters, audio_channel_layout could not be carried over" in printed


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_stream_the_container_cannot_hold_fails_before_any_work(tmp_path: Path) -> None:
    """SubRip subtitles into MXF: refused when the source is probed, before a chunk is restored."""
    from flows.restore_video import run
    from restora.settings import get_settings
    from restora.spec import RestoreSpec

    src = with_subtitles(
        tmp_path / "sub.mkv", "1\n00:00:00,200 --> 00:00:00,700\nHello\n", cut_frames(10, [], h=64, w=128)
    )
    with pytest.raises(ConfigError, match=re.escape("subtitle stream 1 (subrip) cannot go into .mxf")):
        run(RestoreSpec(input=str(src), output=str(tmp_path / "o.mxf"), scale=2))
    assert not (tmp_path / "o.mxf").exists()
    store = Path(get_settings().storage.root)
    assert not list(store.rglob("chunks/*")), "a chunk was restored before the refusal"


def placed_audio(path: Path, origin_s: float) -> tuple[np.ndarray, int]:
    """The first audio stream decoded to float ``(samples, channels)``, each frame put at its own
    timestamp, sample 0 at ``origin_s`` on the file's timeline (samples before it dropped)."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        sr, parts = st.sample_rate, []
        for f in c.decode(st):
            assert f.pts is not None and f.time_base is not None
            parts.append((round((float(f.pts * f.time_base) - origin_s) * sr), f.to_ndarray().T))  # fltp -> (n, ch)
    end = max(at + len(x) for at, x in parts)
    out = np.zeros((end, parts[0][1].shape[1]))
    for at, x in parts:
        keep = x[max(0, -at) :]
        out[max(0, at) : max(0, at) + len(keep)] = keep
    return out, sr


def test_real_5_1_aac_into_mxf_keeps_every_sample_in_place(data: Path, tmp_path: Path) -> None:
    """Big Buck Bunny (720p25, 5.1 AAC at 48 kHz) into MXF: six PCM channels in the source's order,
    each sample equal to the decoded AAC sample at the same time relative to the first picture, to
    24-bit precision (no resampling at 48 kHz, so nothing but the alignment can differ)."""
    src = data / "video/misc/bigbuckbunny.mp4"
    info, index = one_chunk(src, tmp_path / "c.mov", "o.mxf")
    out = tmp_path / "o.mxf"
    assert media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out)["pcm"] == [1]
    got = media.probe(out)
    assert (got.video.codec, got.video.frames, got.audio[0].channels) == ("dnxhd", 132, 6)
    pcm, _ = decoded_audio(out)
    want, sr = placed_audio(src, index.pts[0] * float(Fraction(info.video.time_base)))
    n = min(len(pcm), len(want))
    assert sr == 48000 and n > 5 * sr
    assert np.abs(pcm[:n] - np.clip(want[:n], -1, 1 - 2**-23)).max() < 2**-22
    assert np.abs(want[:n]).max() > 0.1  # the comparison is over real sound, not silence


@pytest.mark.slow
def test_real_clip_at_a_rate_mxf_lacks_is_refused_in_one_line(data: Path, tmp_path: Path) -> None:
    """realshort.mp4 runs at 45000/1499 fps, which MXF has no edit rate for: one line, exit 2, nothing written."""
    from tests.test_cli import cli

    out = tmp_path / "o.mxf"
    r = cli("restore", str(data / "video/misc/realshort.mp4"), "-o", str(out), "--scale", "2")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restora: error: MXF has no edit rate 45000/1499"), r.stderr
    assert not out.exists()


def test_mxf_source_with_mono_tracks_round_trips(data: Path, tmp_path: Path) -> None:
    """An XDCAM-style MXF (interlaced 4:2:2 MPEG-2, four mono 24-bit PCM tracks, start timecode) into
    MXF: four mono tracks again, each bit-identical to its source track (24-bit PCM kept sample for
    sample), the timecode read from the source's material package and written into the output's."""
    from tests.test_media import broadcast_stream

    frames = media.first_frames(data / "video/misc/realshort.mp4", 25)
    video = broadcast_stream(tmp_path / "v.mxf", frames, "mxf", "mpeg2video", True)
    src = tmp_path / "s.mxf"
    rng = np.random.default_rng(0)
    tracks = [(rng.integers(-(2**23), 2**23, 48000) << 8).astype(np.int32) for _ in range(4)]  # 1 s of 24-bit noise
    with av.open(str(video)) as v, av.open(str(src), "w", format="mxf") as out:
        vs = out.add_stream_from_template(v.streams.video[0])
        vs.time_base, vs.codec_context.framerate = Fraction(1, 25), Fraction(25)
        vs.metadata["timecode"] = "09:59:50:00"
        aus = [out.add_stream("pcm_s24le", rate=48000) for _ in tracks]
        for a in aus:
            a.layout = "mono"  # type: ignore[union-attr]
        for pkt in v.demux(v.streams.video[0]):
            if pkt.size:
                pkt.stream = vs
                out.mux(pkt)
        for a, samples in zip(aus, tracks, strict=True):
            for i in range(0, len(samples), 1920):
                af = av.AudioFrame.from_ndarray(samples[None, i : i + 1920], format="s32", layout="mono")
                af.sample_rate, af.pts = 48000, i
                out.mux(a.encode(af))
            out.mux(a.encode())
    info = media.probe(src)
    assert (info.video.timecode, info.video.interlaced, len(info.audio)) == ("09:59:50:00", True, 4)
    _, index = one_chunk(src, tmp_path / "c.mov", "o.mxf")
    out_path = tmp_path / "o.mxf"
    assert media.package([(tmp_path / "c.mov", index.pts[0])], src, info, out_path)["pcm"] == [1, 2, 3, 4]
    got = media.probe(out_path)
    assert (got.video.timecode, got.video.frames, [a.channels for a in got.audio]) == ("09:59:50:00", 25, [1] * 4)
    with av.open(str(out_path)) as c:
        for k, samples in enumerate(tracks):
            st = c.streams.audio[k]
            c.seek(0)
            decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(st)])
            assert np.array_equal(decoded[: len(samples)], samples), k


def imx_clip(path: Path, pictures: list[np.ndarray], seed: int = 0) -> Path:
    """An IMX / D-10-style MXF: MPEG-2 4:2:2 intra, interlaced, 720x608 at 25 fps, the top 32 lines
    random "blanking data" (VITC, teletext) changing every frame, ``pictures`` ((576, 720, 3) uint8) below."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", format="mxf") as out:
        s = out.add_stream("mpeg2video", rate=25)
        s.width, s.height, s.pix_fmt = 720, 608, "yuv422p"
        s.codec_context.options = {"g": "1", "qscale": "2", "flags": "+ildct+ilme"}
        s.codec_context.framerate = Fraction(25)
        s.metadata["timecode"] = "10:00:00:00"
        frames = [np.concatenate([rng.integers(0, 256, (32, 720, 3), dtype=np.uint8), p]) for p in pictures]
        encode_frames(out, s, frames)
    return path


def test_imx_blanking_lines_are_cut_on_decode(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """IMX's 32 lines of vertical blanking are not picture: probe reports 720x576 and ``vbi_lines``
    32, every decoded frame is exactly the full frame's rows 32..607 (deinterlaced alike: 32 lines
    keep the field parity), and ``restora probe`` says so."""
    from PIL import Image

    from restora.cli import main

    pictures = [
        np.asarray(Image.fromarray(f).resize((720, 576)))
        for f in media.first_frames(data / "video/misc/realshort.mp4", 6)
    ]
    src = imx_clip(tmp_path / "imx.mxf", pictures)
    info = media.probe(src)
    assert (info.video.width, info.video.height, info.video.vbi_lines, info.video.interlaced) == (720, 576, 32, True)
    index, thumbs, _ = media.scan(src, info)
    # shot detection's thumbnails are of the picture (2 rows of blanking cut from 38): under a still
    # picture, blanking data changing every frame (VITC counts) barely moves them
    still = imx_clip(tmp_path / "still.mxf", [pictures[0]] * 4)
    _, still_thumbs, _ = media.scan(still, media.probe(still))
    with av.open(str(still)) as c:
        framed = np.stack([f.reformat(width=64, height=36, format="gray").to_ndarray() for f in c.decode(video=0)])
    change, framed_change = (float(np.abs(np.diff(x.astype(float), axis=0)).mean()) for x in (still_thumbs, framed))
    with capsys.disabled():
        print(f"IMX still picture: thumbnails change {change:.2f} codes a frame, {framed_change:.2f} with the blanking")
    assert thumbs.shape == (6, 36, 64) and change < 0.6 * framed_change
    ((_, cut),) = media.read_frames(src, info, index, 0, 6, batch=6)
    full_info = info.model_copy(update={"video": info.video.model_copy(update={"vbi_lines": 0, "height": 608})})
    ((_, full),) = media.read_frames(src, full_info, index, 0, 6, batch=6)
    assert cut.shape == (6, 576, 720, 3) and np.array_equal(cut, full[:, 32:])
    assert psnr(cut[2], pictures[2], 255) > 30.0  # the picture, not the blanking data
    assert main(["probe", str(src)]) == 0
    assert "vbi:        32 lines of blanking above the picture (IMX / D-10), cut on restore" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_imx_archive_tape_round_trip_into_interlaced_mxf(data: Path, tmp_path: Path) -> None:
    """An IMX tape's MXF restored per field and re-interlaced into MXF: 720x576 (the blanking cut),
    MPEG-2 4:2:2 interlaced at the source's first field, 25 fps, timecode kept; the report says
    how many blanking lines were cut."""
    from PIL import Image

    from restora.cli import main

    pictures = [
        np.asarray(Image.fromarray(f).resize((720, 576)))
        for f in media.first_frames(data / "video/misc/realshort.mp4", 6)
    ]
    src = imx_clip(tmp_path / "tape.mxf", pictures)
    out = tmp_path / "tape.restored.mxf"
    argv = ["restore", str(src), "-o", str(out), "--scale", "1", "--stages", "deflicker", "--reinterlace"]
    assert main(argv) == 0
    got, source = media.probe(out).video, media.probe(src).video
    assert (got.codec, got.width, got.height, got.frames, got.frame_rate) == ("mpeg2video", 720, 576, 6, "25/1")
    assert got.interlaced and got.first_field == source.first_field and got.vbi_lines == 0
    assert got.timecode == "10:00:00:00"
    report = json.loads(Path(str(out) + ".report.json").read_text())
    assert report["signal"]["vbi_lines_cut"] == 32 and report["signal"]["scan"]["reinterlaced"] is True
    restored = np.stack(media.first_frames(out, 6))
    deinterlaced_source = np.stack(media.first_frames(src, 6))
    assert min(psnr(a, b, 255) for a, b in zip(restored, deinterlaced_source, strict=True)) > 30.0


def test_streams_the_output_lacks_are_named(tmp_path: Path) -> None:
    """A KLV data stream (as drones and news cameras record) is not copied, and the report says
    ``data_streams``; a QuickTime timecode track is a data stream too, but it is carried as the
    start timecode, so it is not named."""
    from restora.report import streams_not_carried

    klv = tmp_path / "klv.ts"
    with av.open(str(klv), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 128, 64, "yuv420p"
        data = out.add_mux_stream("klv")
        encode_frames(out, vs, cut_frames(5, [], h=64, w=128))
        for i in range(5):
            pkt = av.Packet(b"\x06\x0e\x2b\x34" + bytes(12) + b"\x01\x00")
            pkt.stream, pkt.pts, pkt.dts, pkt.time_base = data, i * 3600, i * 3600, Fraction(1, 90000)
            out.mux(pkt)
    info, index = one_chunk(klv, tmp_path / "c.mov", "o.mkv")
    media.package([(tmp_path / "c.mov", index.pts[0])], klv, info, tmp_path / "o.mkv")
    assert streams_not_carried(info, media.probe(tmp_path / "o.mkv")) == ["data_streams"]

    tc = make_clip(tmp_path / "tc.mov", cut_frames(3, [], h=64, w=128), timecode="01:00:00:00")
    tc_info, tc_index = one_chunk(tc, tmp_path / "c2.mov", "o.mov")
    assert tc_info.data and tc_info.data[0].timecode_track
    media.package([(tmp_path / "c2.mov", tc_index.pts[0])], tc, tc_info, tmp_path / "o.mov")
    assert streams_not_carried(tc_info, media.probe(tmp_path / "o.mov")) == []


# CEA-608 byte pairs (odd parity) of a pop-on caption "HI": resume caption loading, the two
# characters, end of caption (display); then null padding, as broadcast encoders send every frame
CAPTION_PAIRS = [(0x94, 0x20), (0xC8, 0x49), (0x94, 0x2F)]


def h264_with_sei(path: Path, frames: list[np.ndarray], payload: Callable[[int], bytes]) -> Path:
    """Raw H.264 (Annex B, no B-frames) with a registered-user-data SEI (ITU-T T.35: ATSC A/53
    captions, DVB AFD) before each picture's slice, ``payload(picture number)`` its bytes (none
    where that is empty)."""
    plain = path.with_suffix(".plain.264")
    with av.open(str(plain), "w", format="h264") as out:
        s = out.add_stream("libx264", rate=25)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "crf": "20", "bf": "0"}  # decode order = display order
        encode_frames(out, s, frames)
    data = plain.read_bytes()
    out_bytes, prev, picture = b"", 0, 0
    for m in re.finditer(b"\x00\x00\x01", data):
        i = m.start()
        if data[i + 3] & 0x1F in (1, 5):  # a slice: one per picture here
            body = payload(picture)
            sei = b"\x00\x00\x00\x01" + bytes([0x06, 0x04, len(body)]) + body + b"\x80" if body else b""
            cut = i - 1 if i and data[i - 1] == 0 else i
            out_bytes, prev, picture = out_bytes + data[prev:cut] + sei, cut, picture + 1
    path.write_bytes(out_bytes + data[prev:])
    return path


def with_captions(path: Path, frames: list[np.ndarray], start: int = 0) -> Path:
    """H.264 whose pictures from ``start`` on carry an ATSC A/53 caption SEI (``GA94`` user data,
    one CEA-608 field-1 pair: :data:`CAPTION_PAIRS`, then padding), as broadcast encoders write
    them and FFmpeg's decoder exports as A53_CC side data."""

    def caption(picture: int) -> bytes:
        if picture < start:
            return b""
        k = picture - start
        b1, b2 = CAPTION_PAIRS[k] if k < len(CAPTION_PAIRS) else (0x80, 0x80)
        return bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0xC1, 0xFF, 0xFC, b1, b2, 0xFF])

    return h264_with_sei(path, frames, caption)


def test_active_format_description_is_read_and_named_as_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An AFD (DVB ``DTG1`` user data; 9: 4:3 pillarboxed in 16:9) rides in the video stream like
    captions and is lost with the re-encode: probe reads the code, the report names ``afd``."""
    from restora.cli import main
    from restora.report import signal_report

    afd = bytes([0xB5, 0x00, 0x31]) + b"DTG1" + bytes([0x41, 0xF9])  # active_format_flag set, AFD 9
    src = h264_with_sei(tmp_path / "afd.264", cut_frames(4, [], h=64, w=128), lambda _: afd)
    info = media.probe(src)
    assert info.video.afd == 9
    _, index = one_chunk(src, tmp_path / "c.mov", "o.mp4")
    media.package([(tmp_path / "c.mov", index.pts[0])], src, info, tmp_path / "o.mp4")
    assert signal_report(info.video, media.probe(tmp_path / "o.mp4").video)["not_carried"] == ["afd"]
    assert main(["probe", str(src)]) == 0
    assert "afd:        9 (Active Format Description); not carried" in capsys.readouterr().out


def test_closed_captions_go_into_a_cea608_track_or_are_named_as_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CEA-608 captions ride inside the video bitstream, which the restore re-encodes from new
    pictures. Probe finds them, the frame index keeps each frame's caption bytes, and into MOV
    they become a CEA-608 track: the same bytes at the same frame times, which FFmpeg's caption
    decoder reads back as the caption "HI". Into MP4 (FFmpeg's muxer has no ``c608``) and Matroska
    there is no such track, and the report names ``closed_captions`` instead of passing the output
    off as complete."""
    from restora.cli import main
    from restora.report import streams_not_carried

    frames = cut_frames(8, [], h=64, w=128)
    src = with_captions(tmp_path / "cc.264", frames)
    info = media.probe(src)
    assert info.video.captions and not media.probe(make_clip(tmp_path / "plain.mp4", frames)).video.captions
    index, _, _ = media.scan(src, info)
    pairs = [*CAPTION_PAIRS, *[(0x80, 0x80)] * 5]
    assert index.captions == [bytes([0xFC, b1, b2]).hex() for b1, b2 in pairs]
    _, chunk_index = one_chunk(src, tmp_path / "c.mov", "o.mov")
    chunk = [(tmp_path / "c.mov", chunk_index.pts[0])]
    assert media.package(chunk, src, info, tmp_path / "o.mov", captions=index)["captions"] == 8
    with av.open(str(tmp_path / "o.mov")) as c:
        track = c.streams.subtitles[0]
        samples = [(p.pts, bytes(p).hex()) for p in c.demux(track) if p.size]
        c.seek(0)
        text = [sub.dialogue for sub in c.decode(track) if hasattr(sub, "dialogue")]
    assert samples == list(zip(index.pts, index.captions, strict=True))
    assert [t.decode().split("}")[-1] for t in text] == ["HI"]
    assert streams_not_carried(info, media.probe(tmp_path / "o.mov")) == []
    for other in ("o.mkv", "o.mp4"):
        media.package(chunk, src, info, tmp_path / other, captions=index)
        assert streams_not_carried(info, media.probe(tmp_path / other)) == ["closed_captions"]
    assert main(["probe", str(src)]) == 0
    assert "captions:   CEA-608/708 in the video stream; carried as a CEA-608 track" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_restore_keeps_closed_captions_in_mov(tmp_path: Path) -> None:
    """Through the flow, with captions that begin after the frames probe looks at (as a programme's
    do after its opening): ingest's full decode finds them and keeps each frame's caption bytes in
    the stored index, and the restored MOV carries them as a CEA-608 track; the report has nothing
    to name as lost. Into MP4 the report names them."""
    from restora.cli import main

    src = with_captions(tmp_path / "cc.264", cut_frames(12, [], h=64, w=128), start=6)
    assert not media.probe(src).video.captions  # the first 4 frames carry none
    out = tmp_path / "o.mov"
    assert main(["restore", str(src), "-o", str(out), "--scale", "2", "--chunk-frames", "3"]) == 0
    with av.open(str(out)) as c:
        track = c.streams.subtitles[0]
        text = [sub.dialogue for sub in c.decode(track) if hasattr(sub, "dialogue")]
    assert [t.decode().split("}")[-1] for t in text] == ["HI"]
    report = json.loads(Path(str(out) + ".report.json").read_text())
    assert report["signal"]["not_carried"] == [] and report["output"]["packets"]["captions"] == 6
    assert main(["restore", str(src), "-o", str(tmp_path / "o.mp4"), "--scale", "2"]) == 0
    mp4_report = json.loads((tmp_path / "o.mp4.report.json").read_text())
    assert mp4_report["signal"]["not_carried"] == ["closed_captions"]


def test_a_corrupt_audio_packet_becomes_silence_in_mxf(tmp_path: Path) -> None:
    """MXF audio is decoded through the pipeline's own decode loop, which skips an undecodable
    packet: a garbled AAC frame no longer aborts packaging, and the audio after it stays in place
    (within a thousandth of full scale of the intact file's from 42 ms on: the decoder's overlap).
    NUT keeps exact timestamps; Matroska's 1 ms would shift the resumed audio by up to 0.5 ms."""
    good = make_clip(tmp_path / "s.mp4", cut_frames(25, [], h=128, w=256), audio_seconds=1.0)

    def remux(garble: int | None) -> tuple[np.ndarray, int]:
        src = tmp_path / f"a{garble}.nut"  # exact timestamps (Matroska rounds them to 1 ms)
        with av.open(str(good)) as c, av.open(str(src), "w") as out:
            streams = {s.index: out.add_stream_from_template(s) for s in (c.streams.video[0], c.streams.audio[0])}
            n = 0
            for pkt in c.demux(*(c.streams[i] for i in streams)):
                if not pkt.size or pkt.stream is None:
                    continue
                target = streams[pkt.stream.index]
                if pkt.stream.type == "audio":
                    n += 1
                    if n == garble:
                        bad = av.Packet(bytes(range(200)))
                        bad.pts, bad.dts, bad.time_base = pkt.pts, pkt.dts, pkt.time_base
                        pkt = bad
                pkt.stream = target
                out.mux(pkt)
        info, index = one_chunk(src, tmp_path / "c.mov", "o.mxf")
        media.package([(tmp_path / "c.mov", index.pts[0])], src, info, tmp_path / f"o{garble}.mxf")
        return decoded_audio(tmp_path / f"o{garble}.mxf")

    (intact, sr), (damaged, _) = remux(None), remux(20)
    t = np.arange(min(len(intact), len(damaged))) / sr
    hole = np.flatnonzero(np.abs(intact[: len(t), 0] - damaged[: len(t), 0]) > 1e-3) / sr
    print(f"garbled AAC frame: output differs over {hole.min():.3f}-{hole.max():.3f} s")
    # the length kept, and the damage confined to the garbled frame and the next one it overlaps (42 ms)
    assert len(damaged) == len(intact) and hole.max() - hole.min() < 0.05
