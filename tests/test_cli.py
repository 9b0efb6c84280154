"""The command line: probe output, clean one-line errors, output containers, image-like input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from restora import media
from restora.cli import main
from tests.conftest import cut_frames, make_audio_only, make_clip


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restora.cli", *args], capture_output=True, text=True, timeout=300)


def test_probe_prints_streams_rate_and_color(data: Path) -> None:
    r = cli("probe", str(data / "video/misc/realshort.mp4"))
    assert r.returncode == 0, r.stderr
    assert "45000/1499" in r.stdout and "320x240" in r.stdout
    assert "audio #1:   aac 48000 Hz" in r.stdout
    assert "smpte170m" in r.stdout and "inferred" in r.stdout


def test_probe_json(data: Path) -> None:
    import json

    r = cli("probe", "--json", str(data / "video/misc/cockatoo.mp4"))
    d = json.loads(r.stdout)
    assert d["video"]["pix_fmt"] == "yuv444p" and d["audio"][0]["codec"].startswith("mp3")


@pytest.mark.parametrize("case", ["missing", "text_as_mp4", "truncated_30pct", "no_video_stream"])
def test_bad_input_one_line_error_nothing_written(case: str, tmp_path: Path, data: Path) -> None:
    src = tmp_path / f"{case}.mp4"
    if case == "text_as_mp4":
        src.write_text("hello, I am a text file\n")
    elif case == "truncated_30pct":
        b = (data / "video/misc/bigbuckbunny.mp4").read_bytes()
        src.write_bytes(b[: int(len(b) * 0.3)])
    elif case == "no_video_stream":
        make_audio_only(src)
    out = tmp_path / "out" / "restored.mp4"
    r = cli("restore", str(src), "-o", str(out), "--scale", "2")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restora: error: "), r.stderr
    assert not out.parent.exists()


def test_bad_arguments_exit_nonzero(tmp_path: Path, data: Path) -> None:
    r = cli("restore", str(data / "video/misc/realshort.mp4"), "-o", str(tmp_path / "x.avi"))
    assert r.returncode == 2 and "extension" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.avi").exists()
    clip = str(data / "video/misc/realshort.mp4")
    r = cli("restore", clip, "--stages", "regrain,sr", "-o", str(tmp_path / "y.mp4"))
    assert r.returncode == 2 and "regrain needs a degrain stage before it" in r.stderr
    assert cli("restore", "x.mp4", "--scale", "3").returncode == 2  # argparse


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_output_container_by_extension(ext: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_clip(tmp_path / "in.mp4", cut_frames(10, [], h=48, w=64), audio_seconds=0.4)
    out = tmp_path / f"out{ext}"
    assert main(["restore", str(src), "-o", str(out), "--scale", "2"]) == 0
    info = media.probe(out)
    assert info.container.startswith("matroska" if ext == ".mkv" else "mov")
    assert (info.video.width, info.video.height, info.video.frames) == (128, 96, 10)
    assert info.audio
    assert f"output:  {out}" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_one_frame_ffv1_image_like_input(tmp_path: Path) -> None:
    frame = cut_frames(1, [], h=60, w=80)
    src = make_clip(tmp_path / "still.mkv", frame, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "still_x4.mkv"
    assert main(["restore", str(src), "-o", str(out), "--scale", "4"]) == 0
    info = media.probe(out)
    assert (info.video.codec, info.video.width, info.video.height, info.video.frames) == ("ffv1", 320, 240, 1)
    assert info.video.is_rgb  # lossless RGB in, lossless RGB out


def test_stage_options_on_the_command_line() -> None:
    from restora.cli import parse_stages
    from restora.errors import ConfigError

    specs = parse_stages("denoise:strength=0.7, deblock ,sr:model=restore_joint_x2:strength=1")
    assert [(s.type, s.options) for s in specs] == [
        ("denoise", {"strength": 0.7}),
        ("deblock", {}),
        ("sr", {"model": "restore_joint_x2", "strength": 1}),
    ]
    with pytest.raises(ConfigError, match="key=value"):
        parse_stages("sr:model")


def test_unknown_stage_option_is_a_usage_error(tmp_path: Path, data: Path) -> None:
    r = cli(
        "restore", str(data / "video/misc/realshort.mp4"), "--stages", "sr:sharpness=3", "-o", str(tmp_path / "o.mp4")
    )
    assert r.returncode == 2 and "has no option sharpness" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()
