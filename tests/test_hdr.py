"""High bit depth and HDR: 10-bit sources keep their precision, HDR10/HLG keep transfer and metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from restora import media
from restora.errors import ConfigError
from restora.inference import LocalOnnx
from restora.report import signal_report
from restora.settings import get_settings
from restora.stages import StageContext, build_stage
from tests.conftest import cut_frames, make_clip, one_chunk

# The HDR10 static metadata of a typical P3-D65 grade in a BT.2020 container (x265 units).
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
MAX_CLL = "1000,400"
PQ, HLG, BT2020 = 16, 18, 9


def ramp_planes(n: int, h: int = 96, w: int = 128, lo: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` 10-bit luma planes ``(h, w)`` uint16: a horizontal ramp of one code value per column
    (``lo`` .. ``lo + w - 1``, finer than any 8-bit step) plus a slowly moving texture in the lower half."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 160, (h // 8 + 1, (w + n) // 8 + 1)).repeat(8, 0).repeat(8, 1)
    out = []
    for i in range(n):
        y = np.tile(np.arange(lo, lo + w, dtype=np.uint16), (h, 1))
        y[h // 2 :] = (400 + tex[: h - h // 2, i : i + w]).astype(np.uint16)
        out.append(y)
    return out


def write_deep(
    path: Path,
    planes: list[np.ndarray],
    codec: str,
    pix_fmt: str,
    transfer: int = 1,
    primaries: int = 1,
    matrix: int = 1,
    params: str = "",
) -> Path:
    """Encode 10-bit luma planes (neutral chroma) as ``pix_fmt`` with the given color tags."""
    h, w = planes[0].shape
    sub_h, sub_w = (1, 1) if "444" in pix_fmt else (1, 2) if "422" in pix_fmt else (2, 2)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        prores = {"profile": "5" if "444" in pix_fmt else "3"}  # 4444 XQ or 422 HQ
        opts = {"ffv1": {}, "prores_ks": prores}.get(codec, {"crf": "4", "preset": "ultrafast"})
        if codec == "libx265":
            # no B-frames: libx265 leaves the DTS of clips shorter than its B-frame delay uninitialised
            opts["x265-params"] = ":".join(["log-level=error", "bframes=0", *filter(None, [params])])
        s.codec_context.options = opts
        cc = s.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = primaries, transfer, matrix, 1
        for i, y in enumerate(planes):
            f = av.VideoFrame(w, h, pix_fmt)
            c = np.full((h // sub_h, w // sub_w), 512, dtype="<u2")
            for plane, arr in zip(f.planes, (y.astype("<u2"), c, c), strict=True):
                line = plane.line_size // 2
                buf = np.zeros((arr.shape[0], line), dtype="<u2")
                buf[:, : arr.shape[1]] = arr
                plane.update(buf.tobytes())
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def hdr10_clip(path: Path, n: int = 12) -> Path:
    params = f"hdr10=1:repeat-headers=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}"
    return write_deep(path, ramp_planes(n), "libx265", "yuv420p10le", PQ, BT2020, BT2020, params)


def luma10(path: Path) -> np.ndarray:
    """Decoded 10-bit luma of every frame, ``(T, H, W)`` uint16."""
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            assert f.format.name.endswith("p10le"), f.format.name
            line = f.planes[0].line_size // 2
            out.append(np.frombuffer(bytes(f.planes[0]), dtype="<u2").reshape(f.height, line)[:, : f.width])
        return np.stack(out)


def test_probe_reads_hdr10_static_metadata(tmp_path: Path, data: Path) -> None:
    v = media.probe(hdr10_clip(tmp_path / "pq.mp4")).video
    assert (v.codec, v.bit_depth, v.pix_fmt, v.deep) == ("hevc", 10, "yuv420p10le", True)
    assert v.color.names == {"primaries": "bt2020", "transfer": "smpte2084", "matrix": "bt2020nc", "range": "tv"}
    assert v.hdr is not None and v.hdr.format == "hdr10"
    md = v.hdr.mastering_display
    assert md is not None
    assert (md.red, md.green, md.blue, md.white_point) == ((0.68, 0.32), (0.265, 0.69), (0.15, 0.06), (0.3127, 0.329))
    assert (md.min_luminance, md.max_luminance) == (0.0001, 1000.0)
    assert (v.hdr.max_cll, v.hdr.max_fall, v.hdr.dynamic) == (1000, 400, [])
    # what the encoder is told reproduces the source's metadata exactly
    assert f"master-display={MASTER_DISPLAY}" in v.hdr.x265_params()
    assert f"max-cll={MAX_CLL}" in v.hdr.x265_params()

    hlg = media.probe(write_deep(tmp_path / "hlg.mp4", ramp_planes(2), "libx265", "yuv420p10le", HLG, 9, 9)).video
    assert hlg.hdr is not None and (hlg.hdr.format, hlg.hdr.mastering_display, hlg.hdr.max_cll) == ("hlg", None, None)
    assert media.probe(data / "video/misc/realshort.mp4").video.hdr is None  # SDR


def test_encoding_follows_the_source_depth_and_dynamic_range(tmp_path: Path) -> None:
    def chosen(path: Path, out: str = "o.mp4") -> tuple[str, str]:
        p = media.choose_encode(media.probe(path), 1, out, 16, "fast")
        return p.codec, p.pix_fmt

    planes = ramp_planes(2)
    assert chosen(hdr10_clip(tmp_path / "pq.mp4", 2)) == ("libx265", "yuv420p10le")
    sdr10 = write_deep(tmp_path / "sdr10.mp4", planes, "libx264", "yuv420p10le")
    assert chosen(sdr10) == ("libx264", "yuv420p10le")
    master = write_deep(tmp_path / "m.mkv", planes, "ffv1", "yuv422p10le")
    assert chosen(master, "o.mkv") == ("ffv1", "yuv422p10le")  # lossless keeps subsampling and depth
    assert chosen(master, "o.mp4") == ("libx264", "yuv422p10le")
    params = media.choose_encode(media.probe(hdr10_clip(tmp_path / "pq2.mp4", 2)), 2, "o.mov", 18, "fast")
    x265 = params.options()["x265-params"].split(":")
    assert {"hdr10=1", "repeat-headers=1", f"master-display={MASTER_DISPLAY}", f"max-cll={MAX_CLL}"} <= set(x265)


def test_bit_depth_option_sets_the_output_depth(tmp_path: Path, data: Path) -> None:
    """``bit_depth=10`` gives an 8-bit source 10-bit output (decoded to uint16 for it); 8 gives a
    10-bit SDR source 8-bit output; an HDR source refuses 8 (it would band) with a clear error."""
    sdr8 = media.probe(data / "video/misc/realshort.mp4")
    assert media.choose_encode(sdr8, 2, "o.mp4", 16, "fast", 10).pix_fmt == "yuv420p10le"
    assert media.choose_encode(sdr8, 2, "o.mp4", 16, "fast", 10).bits == 10
    assert media.choose_encode(sdr8, 2, "o.mp4", 16, "fast").bits == 8
    sdr10 = media.probe(write_deep(tmp_path / "s.mp4", ramp_planes(2), "libx264", "yuv420p10le"))
    assert media.choose_encode(sdr10, 1, "o.mp4", 16, "fast", 8).pix_fmt == "yuv420p"
    prores = media.probe(write_deep(tmp_path / "p.mov", ramp_planes(2), "prores_ks", "yuv422p10le"))
    assert media.choose_encode(prores, 1, "o.mov", 16, "fast", 8).codec == "libx264"
    pq = media.probe(hdr10_clip(tmp_path / "pq.mp4", 2))
    with pytest.raises(ConfigError, match="10-bit"):
        media.choose_encode(pq, 1, "o.mp4", 16, "fast", 8)
    out = tmp_path / "out" / "o.mp4"
    r = subprocess.run([sys.executable, "-m", "restora.cli", "restore", str(tmp_path / "pq.mp4"), "-o", str(out),
                        "--scale", "1", "--bit-depth", "8"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("restora: error: ") and "10-bit" in r.stderr
    assert not out.parent.exists()


def test_prores_source_stays_prores(tmp_path: Path) -> None:
    """A ProRes 422 HQ mezzanine comes back as ProRes 422 HQ (MOV or Matroska), 10-bit, within a
    code or two of the source; into MP4, which cannot hold ProRes, it becomes H.264 High 4:2:2 10."""
    planes = ramp_planes(4, lo=300)
    src = write_deep(tmp_path / "m.mov", planes, "prores_ks", "yuv422p10le")
    info = media.probe(src)
    assert (info.video.codec, info.video.profile, info.video.bit_depth) == ("prores", "HQ", 10)
    mp4 = media.choose_encode(info, 1, tmp_path / "o.mp4", 16, "fast")
    assert (mp4.codec, mp4.pix_fmt) == ("libx264", "yuv422p10le")
    params = media.choose_encode(info, 1, tmp_path / "o.mov", 16, "fast")
    assert (params.codec, params.pix_fmt, params.options()["profile"]) == ("prores_ks", "yuv422p10le", "3")
    _, index = one_chunk(src, tmp_path / "c.mov", "o.mov")
    for ext in (".mov", ".mkv"):
        media.package([(tmp_path / "c.mov", index.pts[0])], src, info, tmp_path / f"o{ext}")
        out = media.probe(tmp_path / f"o{ext}").video
        assert (out.codec, out.profile, out.pix_fmt, out.frames) == ("prores", "HQ", "yuv422p10le", 4)
    err = np.abs(luma10(tmp_path / "o.mov").astype(int) - luma10(src).astype(int))
    assert err.mean() < 1.0 and err.max() <= 4
    xq = media.probe(write_deep(tmp_path / "xq.mov", planes, "prores_ks", "yuv444p10le"))
    assert xq.video.profile == "XQ"  # FFmpeg's name of 4444 XQ
    p = media.choose_encode(xq, 1, "o.mov", 16, "fast")
    assert (p.codec, p.pix_fmt, p.options()["profile"]) == ("prores_ks", "yuv444p10le", "5")


def test_ten_bit_frames_survive_decode_and_encode_without_an_8bit_step(tmp_path: Path) -> None:
    """A ramp of one 10-bit code per column: decoded to uint16, encoded losslessly (FFV1) back to
    10 bits, every code value comes back (an 8-bit step would merge them four by four)."""
    planes = ramp_planes(3, lo=300)
    src = write_deep(tmp_path / "m.mkv", planes, "ffv1", "yuv444p10le")
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    (pts, frames), *rest = list(media.read_frames(src, info, index, 0, 3, batch=8))
    assert not rest and frames.dtype == np.uint16 and frames.shape == (3, 96, 128, 3)
    assert len(np.unique(frames[0, 0, :, 1])) == 128  # 128 distinct codes on the ramp row
    params = media.choose_encode(info, 1, tmp_path / "o.mkv", 16, "fast")
    writer = media.ChunkWriter(tmp_path / "chunk.nut", params)
    writer.write(pts, frames)
    assert writer.close() == 3
    back = luma10(tmp_path / "chunk.nut")
    assert np.abs(back.astype(int) - np.stack(planes).astype(int)).max() <= 1


def test_stages_keep_uint16_frames_and_their_precision() -> None:
    """A stage at strength 0 returns a 16-bit frame unchanged; SR returns uint16 of the scaled size."""
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    rng = np.random.default_rng(0)
    frames = rng.integers(4096, 60000, (2, 32, 40, 3), dtype=np.uint16)
    same = build_stage("deblock", {"strength": 0.0}, ctx).process(frames)
    assert same.dtype == np.uint16 and np.abs(same.astype(int) - frames.astype(int)).max() <= 1
    up = build_stage("sr", {"scale": 2}, ctx).process(frames)
    assert up.dtype == np.uint16 and up.shape == (2, 64, 80, 3)
    ref = build_stage("sr", {"scale": 2}, ctx).process((frames >> 8).astype(np.uint8))
    assert np.abs((up >> 8).astype(int) - ref.astype(int)).mean() < 1.0  # the same restoration, finer steps


def ramp_error(path: Path) -> tuple[int, float]:
    """Distinct codes and RMS distance (10-bit codes) from a straight line of the first frame's
    ramp row (row 10, 8 pixels cropped at each end) of an x2 upscale of :func:`ramp_planes`."""
    row = luma10(path)[0, 10, 8:-8].astype(np.float64)
    x = np.arange(len(row))
    resid = row - np.polyval(np.polyfit(x, row, 1), x)
    return len(np.unique(row)), float(np.sqrt(np.mean(resid**2)))


def test_no_8bit_step_between_decode_and_encode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """x2 SR of the 10-bit ramp: the 16-bit path keeps a ramp; the same chunk through uint8 frames
    (the control: decoded at 8 bits, the same 10-bit encode) comes out a staircase of 4-code treads. Measured (``-s``
    prints it): 121 distinct codes, 0.49 codes RMS off a line, against 103 codes, 1.50 RMS."""
    from restora.pipeline import restore_chunk
    from restora.spec import ShotSpec

    src = hdr10_clip(tmp_path / "pq.mp4")
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    chunk = ShotSpec(shot=0, chunk=0, start=0, stop=2, start_s=0.0, end_s=0.08)
    params = media.choose_encode(info, 2, "o.mp4", 16, "fast")
    restore_chunk(src, info, index, chunk, [build_stage("sr", {"scale": 2}, ctx)], params, tmp_path / "deep.mov")
    monkeypatch.setattr(media.EncodeParams, "bits", property(lambda self: 8))  # decode to uint8
    restore_chunk(src, info, index, chunk, [build_stage("sr", {"scale": 2}, ctx)], params, tmp_path / "u8.mov")
    (deep_codes, deep_rms), (u8_codes, u8_rms) = ramp_error(tmp_path / "deep.mov"), ramp_error(tmp_path / "u8.mov")
    print(f"ramp codes / RMS: 16-bit path {deep_codes} / {deep_rms:.2f}, uint8 control {u8_codes} / {u8_rms:.2f}")
    assert deep_rms < 0.8 < 1.2 < u8_rms and deep_codes > 90


def test_signal_report_names_hdr_metadata_the_output_lacks() -> None:
    color = media.ColorInfo(primaries=9, transfer=16, matrix=9, range=1)
    md = media.MasteringDisplay(red=(0.68, 0.32), green=(0.265, 0.69), blue=(0.15, 0.06),
                                white_point=(0.3127, 0.329), min_luminance=0.0001, max_luminance=1000.0)  # fmt: skip
    src_hdr = media.HdrInfo(format="hdr10", mastering_display=md, max_cll=1000, max_fall=400, dynamic=["hdr10+"])
    base = dict(index=0, codec="hevc", profile=None, width=8, height=8, pix_fmt="yuv420p10le", bit_depth=10,
                is_rgb=False, frame_rate="25/1", time_base="1/25", frames=1, vfr=False, duration_s=0.04,
                start_pts=0, color=color, sample_aspect_ratio=None, lossless=False)  # fmt: skip
    src = media.VideoStreamInfo(**base, hdr=src_hdr)  # type: ignore[arg-type]
    static = media.VideoStreamInfo(**base, hdr=src_hdr.model_copy(update={"dynamic": []}))  # type: ignore[arg-type]
    bare = media.VideoStreamInfo(**base, hdr=media.HdrInfo(format="hdr10"))  # type: ignore[arg-type]
    assert signal_report(src, static)["not_carried"] == ["hdr10+"]
    assert signal_report(src, bare)["not_carried"] == ["mastering_display", "content_light_level", "hdr10+"]
    assert signal_report(static, static)["not_carried"] == []
    timed = static.model_copy(update={"timecode": "10:00:00:00"})
    assert signal_report(timed, static)["not_carried"] == ["timecode"]
    assert signal_report(timed, timed)["timecode"] == {"source": "10:00:00:00", "output": "10:00:00:00"}
    assert signal_report(static.model_copy(update={"alpha": True}), static)["not_carried"] == ["alpha"]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_hdr10_source_restores_to_10bit_hevc_with_its_metadata(tmp_path: Path) -> None:
    """HDR10 in, x2 SR in two chunks: HEVC Main 10 out, PQ/BT.2020 tags, the same mastering display
    and content light level, every frame and timestamp, ``hvc1`` for Apple players, no 8-bit step."""
    from flows.restore_video import run
    from restora.spec import RestoreSpec

    src = hdr10_clip(tmp_path / "pq.mp4")
    out = tmp_path / "pq_x2.mp4"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=2, chunk_frames=6))
    a, b = media.probe(src).video, media.probe(out).video
    assert (b.codec, b.profile, b.pix_fmt, b.width, b.height) == ("hevc", "Main 10", "yuv420p10le", 256, 192)
    assert b.color.names == a.color.names and not b.color.inferred
    assert b.hdr == a.hdr
    with av.open(str(out)) as c, av.open(str(src)) as s:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"
        assert [f.pts for f in c.decode(video=0)] == [f.pts for f in s.decode(video=0)]
    report = json.loads(Path(result["report"]).read_text())
    assert report["signal"]["bit_depth"] == {"source": 10, "output": 10}
    assert report["signal"]["not_carried"] == []
    assert len(report["chunks"]) == 2
    spans = [json.loads(line) for line in Path(result["spans"]).read_text().splitlines()]
    ingest = next(s["attributes"] for s in spans if s["name"] == "task.ingest")
    assert (ingest["restora.bit_depth"], ingest["restora.dynamic_range"]) == (10, "hdr10")
    codes, rms = ramp_error(out)  # the ramp row stays a ramp of 10-bit steps (see the test above)
    assert codes > 90 and rms < 0.8


def test_repair_dts_keeps_real_timestamps_and_replaces_impossible_ones() -> None:
    floor = -64 * 512  # the chunk starts at PTS 0
    assert media.repair_dts(1024, -512, None, floor) == -512  # B-frame reordering: kept
    assert media.repair_dts(0, -8243964910823305832, None, floor) == 0  # libx265, 1-frame stream
    assert media.repair_dts(512, 9 << 60, 0, floor) == 512
    assert media.repair_dts(512, 9 << 60, 512, floor) == 513  # stays increasing
    assert media.repair_dts(400 * 512, 8 * 512, 7 * 512, floor) == 8 * 512  # after a long pause: real


def test_variable_rate_chunk_with_a_long_pause_keeps_its_decode_timestamps(tmp_path: Path) -> None:
    """150 frames with a pause of 400 frame times in the middle (a screen recording): the average
    rate is low, the frames after the pause decode long after their B-frame references; x264's DTS
    are real and must stay as they are (monotonic), not be taken for an encoder bug."""
    step = 3600  # 25 fps at 1/90000
    pts = [i * step for i in range(75)] + [(475 + i) * step for i in range(75)]
    src = make_clip(tmp_path / "vfr.mp4", cut_frames(150, [], h=48, w=64), pts=pts)
    one_chunk(src, tmp_path / "c.mov", "o.mp4")  # libx264 with B-frames
    with av.open(str(tmp_path / "c.mov")) as c:
        assert [f.pts for f in c.decode(video=0)] == pts


def test_hevc_chunks_of_one_and_two_frames(tmp_path: Path) -> None:
    """Shots of one or two frames (flash frames) are chunks shorter than x265's B-frame delay."""
    src = hdr10_clip(tmp_path / "pq.mp4", 3)
    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    params = media.choose_encode(info, 1, "o.mp4", 16, "fast")
    for n in (1, 2, 1, 2):
        (pts, frames), *_ = media.read_frames(src, info, index, 0, n)
        w = media.ChunkWriter(tmp_path / f"c{n}.mov", params)
        w.write(pts, frames)
        assert w.close() == n
        assert len(luma10(tmp_path / f"c{n}.mov")) == n


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_bit_depth_10_from_an_8bit_source_through_the_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--bit-depth 10`` on an 8-bit ramp upscaled x2: H.264 High 10 out, and the SR's in-between
    values survive (an 8-bit ramp of 1 code per 2 columns has 4x more 10-bit codes after x2 SR).
    The control restores the same chunk decoded at 8 bits into the same 10-bit encode. Measured
    (``-s`` prints it): 141 codes in 48 8-bit steps, against 49 codes in 40 steps."""
    from flows.restore_video import run
    from restora.pipeline import restore_chunk
    from restora.spec import RestoreSpec, ShotSpec

    ramp = np.tile(np.repeat(np.arange(60, 124, dtype=np.uint8), 2)[None, :, None], (48, 1, 3))  # 128 wide
    src = make_clip(tmp_path / "r.mp4", [ramp] * 4)
    out = tmp_path / "r_x2.mp4"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=2, bit_depth=10))
    v = media.probe(out).video
    assert (v.codec, v.profile, v.pix_fmt, v.bit_depth) == ("h264", "High 10", "yuv420p10le", 10)
    report = json.loads(Path(result["report"]).read_text())
    assert report["signal"]["bit_depth"] == {"source": 8, "output": 10}

    def codes(path: Path) -> tuple[int, int]:  # distinct 10-bit codes, and 8-bit steps they fall in
        row = luma10(path)[0, 24, 16:-16]
        return len(np.unique(row)), len(np.unique(row >> 2))

    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    monkeypatch.setattr(media.EncodeParams, "bits", property(lambda self: 8))  # decode to uint8
    restore_chunk(src, info, index, ShotSpec(shot=0, start=0, stop=4, start_s=0.0, end_s=0.16),
                  [build_stage("sr", {"scale": 2}, ctx)], media.choose_encode(info, 2, "o.mp4", 16, "fast", 10),
                  tmp_path / "u8.mov")  # fmt: skip
    (deep, deep_steps), (u8, u8_steps) = codes(out), codes(tmp_path / "u8.mov")
    print(f"ramp x2 at 10 bits: {deep} codes in {deep_steps} 8-bit steps; decoded at 8 bits: {u8} in {u8_steps}")
    assert deep > deep_steps * 1.5 and u8 < u8_steps * 1.5  # finer than the 8-bit grid; the control is not


@pytest.mark.slow
def test_signal_path_benchmark_runs(tmp_path: Path) -> None:
    """``make bench``'s cost of the 16-bit and HDR paths stays runnable (2 frames, one repeat)."""
    from benchmarks.signal_path import main

    assert main(["--frames", "2", "--repeats", "1", "--out", str(tmp_path / "s.json")]) == 0
    report = json.loads((tmp_path / "s.json").read_text())
    outputs = {n: v["output"] for n, v in report["variants"].items()}
    assert outputs == {"8bit": "libx264 yuv420p", "10bit_out": "libx264 yuv420p10le", "hdr10": "libx265 yuv420p10le"}
    assert report["variants"]["8bit"]["total_vs_8bit"] == 1.0


def test_transfer_functions_match_the_standards() -> None:
    """PQ (ST 2084) and HLG (BT.2100) as the HDR measurement of the SR models uses them: PQ codes
    10000 cd/m2 as 1.0, 100 as 0.508 and BT.2408's 203 cd/m2 white as 0.58; HLG codes 1/12 as 0.5,
    1 as 1.0, and its reference white at 75 %."""
    from restora.color import HLG_REFERENCE_WHITE, hlg_oetf, pq_encode, srgb_to_linear

    assert pq_encode(np.array([10000.0, 100.0, 203.0])) == pytest.approx([1.0, 0.5081, 0.5807], abs=1e-4)
    assert hlg_oetf(np.array([1 / 12, 1.0, HLG_REFERENCE_WHITE])) == pytest.approx([0.5, 1.0, 0.75], abs=1e-6)
    assert srgb_to_linear(np.array([0.0, 0.04045, 1.0])) == pytest.approx([0.0, 0.04045 / 12.92, 1.0])


def test_sr_models_keep_their_gain_on_pq_and_hlg_code_values(data: Path) -> None:
    """The SR models, trained on SDR pictures, run on an HDR source's own code values. On Set5
    coded PQ and HLG (BT.2408 reference white) they still beat bicubic by 2.5-3.9 dB, within 0.5 dB
    of their SDR gain (``pytest tests/test_hdr.py -s -k gain``)."""
    from restora.eval_transfer import evaluate_sr_transfers, format_transfer_table
    from restora.inference import LocalOnnx
    from restora.settings import get_settings

    s = get_settings()
    result = evaluate_sr_transfers(LocalOnnx(s.models.repository, s.models.threads), data, (2,))
    print(format_transfer_table(result))
    gains = {r["transfer"]: r["gain_db"] for r in result["rows"]}
    assert gains["sdr"] > 3.0 and gains["pq"] > gains["sdr"] - 0.75 and gains["hlg"] > gains["sdr"] - 0.75
