"""Shared fixtures: real data paths, synthetic clips with known answers, an isolated store, Prefect."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest

if TYPE_CHECKING:
    from restora import media

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def data() -> Path:
    """``../shared/data`` (the real footage); a missing folder is an error, not a skip."""
    if not (DATA / "README.md").is_file():
        pytest.fail(f"test data not found at {DATA}: clone the repo next to shared/")
    return DATA


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own asset store root."""
    root = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("RESTORA_STORAGE__ROOT", str(root))
    monkeypatch.delenv("RESTORA_TRITON__URL", raising=False)
    return root


@pytest.fixture(autouse=True)
def fail_on_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A test fails if Restora logs an ERROR it did not expect."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("restora")]
    assert not errors, f"unexpected ERROR logs: {[r.getMessage() for r in errors]}"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for flow tests (started once per session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def make_clip(
    path: Path,
    frames: list[np.ndarray],
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 90000),
    rate: Fraction = Fraction(25),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio_seconds: float = 0.0,
    container: str | None = None,
    timecode: str | None = None,
    field_order: int | None = None,
) -> Path:
    """Write ``(H, W, 3)`` uint8 RGB frames as a video with the given PTS (VFR allowed), optional sine
    audio, start timecode (QuickTime/MP4: a tmcd track) and declared ``field_order`` (an
    ``AVFieldOrder``, e.g. 2: top field first, which FFV1 in Matroska keeps)."""
    h, w = frames[0].shape[:2]
    step = int(1 / (rate * time_base))
    pts = pts if pts is not None else [i * step for i in range(len(frames))]
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if codec == "libx264":
            vs.codec_context.options = {"crf": "12", "preset": "ultrafast"}
        if timecode is not None:
            vs.metadata["timecode"] = timecode
        if field_order is not None:
            vs.codec_context.field_order = field_order
        aus = None
        if audio_seconds:
            aus = out.add_stream("aac", rate=48000)
            aus.layout = "mono"  # type: ignore[union-attr]
        for t, rgb in zip(pts, frames, strict=True):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            f.pts, f.time_base = t, time_base
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            n = int(48000 * audio_seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)[None]
            for i in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[:, i : i + 1024].copy(), format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, i
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode():
                out.mux(p)
    return path


def encode_frames(
    out: av.container.OutputContainer, stream: av.video.stream.VideoStream, frames: Iterable[np.ndarray]
) -> None:
    """Encode ``(H, W, 3)`` uint8 RGB frames into ``stream`` (in its pixel format, PTS 0, 1, 2, ... in
    the stream's frame units) and mux them into ``out``, flushing the encoder at the end."""
    for i, rgb in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt)
        vf.pts = i
        for pkt in stream.encode(vf):
            out.mux(pkt)
    for pkt in stream.encode():
        out.mux(pkt)


def with_subtitles(path: Path, srt: str, frames: list[np.ndarray]) -> Path:
    """A Matroska file: ``(H, W, 3)`` uint8 RGB frames as H.264 at 25 fps and the SubRip text ``srt``
    as a subtitle track (stream 1)."""
    srt_path = path.with_suffix(".srt")
    srt_path.write_text(srt)
    h, w = frames[0].shape[:2]
    with av.open(str(srt_path)) as subs, av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        so = out.add_stream_from_template(subs.streams.subtitles[0])
        encode_frames(out, vs, frames)
        for pkt in subs.demux(subs.streams.subtitles[0]):
            if pkt.size:
                pkt.stream = so
                out.mux(pkt)
    return path


def with_display_matrix(src: Path, dst: Path, m: tuple[int, int, int, int]) -> Path:
    """Copy an MP4/MOV with its (single) track's tkhd matrix set to ``(a, b, c, d)`` (each -1, 0, 1),
    as a phone writes its rotation; the translation keeps the picture in the first quadrant."""
    b = bytearray(src.read_bytes())
    i = b.index(b"tkhd")
    version = b[i + 4]
    off = i + 8 + (32 if version == 1 else 20) + 16  # type, version/flags; times, id, duration; reserved..volume
    width, height = struct.unpack(">II", b[off + 36 : off + 44])
    a, bb, c, d = m
    tx = (height if c < 0 else 0) + (width if a < 0 else 0)
    ty = (width if bb < 0 else 0) + (height if d < 0 else 0)
    vals = (a << 16, bb << 16, 0, c << 16, d << 16, 0, tx, ty, 1 << 30)  # tx/ty already 16.16 from tkhd size
    b[off : off + 36] = struct.pack(">9i", *vals)
    dst.write_bytes(bytes(b))
    return dst


def one_chunk(src: Path, chunk: Path, output: str = "o.mov") -> tuple[media.MediaInfo, media.FrameIndex]:
    """Probe and index ``src`` and encode all its frames, unrestored, into one chunk file as the
    pipeline would for an ``output`` of that name (for packaging tests); returns (info, index)."""
    from restora import media  # after the environment above is set

    info = media.probe(src)
    index, _, _ = media.scan(src, info)
    w = media.ChunkWriter(chunk, media.choose_encode(info, 1, output, 18, "fast"))
    for pts, frames in media.read_frames(src, info, index, 0, len(index)):
        w.write(pts, frames)
    w.close()
    return info, index


def cut_frames(n: int, cuts: list[int], h: int = 72, w: int = 96, seed: int = 0) -> list[np.ndarray]:
    """``n`` textured frames with slow motion, changing scene at each frame in ``cuts``."""
    rng = np.random.default_rng(seed)
    scenes = [rng.integers(0, 256, (h // 8 + 2, (w + n) // 8 + 2, 3), dtype=np.uint8) for _ in range(len(cuts) + 1)]
    out = []
    scene = 0
    for i in range(n):
        if scene < len(cuts) and i >= cuts[scene]:
            scene += 1
        big = np.kron(scenes[scene], np.ones((8, 8, 1), dtype=np.uint8))
        dx = i  # one pixel of pan per frame
        out.append(np.ascontiguousarray(big[:h, dx : dx + w]))
    return out


def make_audio_only(path: Path) -> Path:
    """An MP4 holding one AAC audio frame and no video stream."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "mono"  # type: ignore[union-attr]
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        for p in [*s.encode(f), *s.encode()]:
            out.mux(p)
    return path
