"""The restore-video flow end to end on the embedded stack (Prefect test API, local store, ONNX Runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from flows.restore_video import restore_video, run
from restora import manifest, media
from restora.metrics import psnr_y
from restora.settings import get_settings
from restora.spec import RestoreSpec, StageSpec
from restora.storage import LocalStore
from tests.conftest import cut_frames, make_clip, with_subtitles

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def decoded_pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def spans(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_real_clip_x2_keeps_timing_audio_color(data: Path, tmp_path: Path) -> None:
    src = data / "video/misc/realshort.mp4"
    out = tmp_path / "realshort_x2.mp4"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=2, chunk_frames=16))
    assert Path(result["output"]) == out and out.is_file()
    a, b = media.probe(src), media.probe(out)
    assert (b.video.width, b.video.height) == (640, 480)
    assert b.video.frames == a.video.frames == 36
    assert b.video.frame_rate == "45000/1499"
    assert decoded_pts(out) == decoded_pts(src)
    assert abs(b.duration_s - a.duration_s) <= 1 / 30
    assert media.stream_packet_digest(out, "audio") == media.stream_packet_digest(src, "audio")
    assert b.video.color.names == {
        "primaries": "smpte170m",
        "transfer": "smpte170m",
        "matrix": "smpte170m",
        "range": "tv",
    }
    assert not b.video.color.inferred  # written as tags

    report = json.loads(Path(result["report"]).read_text())
    assert report["shots"] and report["shots"][0]["start_frame"] == 0
    assert report["stages"]["sr"]["frames"] == 36 and report["stages"]["sr"]["seconds"] > 0
    assert report["provenance"]["stages"][0]["model"] == "sr_x2"
    assert report["provenance"]["synthesized_pixels"] is False
    assert len(report["chunks"]) == 3  # 36 frames in chunks of at most 16

    tree = spans(Path(result["spans"]))
    ids = {s["span_id"]: s for s in tree}
    roots = [s for s in tree if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["flow.restore_video"]
    assert len({s["trace_id"] for s in tree}) == 1

    def ancestors(s: dict) -> list[str]:
        names = []
        while s["parent_id"] is not None:
            s = ids[s["parent_id"]]
            names.append(s["name"])
        return names

    for name in ("task.ingest", "task.detect_shots", "task.restore_shot", "task.package", "task.publish"):
        assert any(s["name"] == name and "flow.restore_video" in ancestors(s) for s in tree), name
    stage_spans = [s for s in tree if s["name"] == "stage.sr"]
    assert len(stage_spans) == 3  # one per chunk
    assert all(ids[s["parent_id"]]["name"] == "task.restore_shot" for s in stage_spans)
    inference = [s for s in tree if s["name"] == "inference"]
    assert inference and all(ids[s["parent_id"]]["name"] == "stage.sr" for s in inference)
    assert all(s["attributes"]["restora.model"] == "sr_x2" for s in inference)


def test_rerun_reuses_chunks_and_is_identical(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "cuts.mp4", cut_frames(30, [12], h=48, w=64), audio_seconds=1.2)
    out1, out2 = tmp_path / "a.mkv", tmp_path / "b.mkv"
    r1 = run(RestoreSpec(input=str(src), output=str(out1), scale=2, chunk_frames=8))
    r2 = run(RestoreSpec(input=str(src), output=str(out2), scale=2, chunk_frames=8))
    assert r1["reused_chunks"] == 0 and r1["chunks"] == 5  # shots 0-12 (8+4) and 12-30 (8+8+2)
    assert r2["reused_chunks"] == r2["chunks"]
    with av.open(str(out1)) as a, av.open(str(out2)) as b:
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(fa) == 30 and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))


def test_changing_one_shots_parameter_rerenders_only_that_shot(tmp_path: Path) -> None:
    """A per-shot override invalidates exactly the chunks of that shot; the others are reused as stored."""
    src = make_clip(tmp_path / "cuts.mp4", cut_frames(36, [12, 24], h=48, w=64), audio_seconds=1.2)
    sr = StageSpec(type="sr", options={"strength": 1.0})
    base = RestoreSpec(input=str(src), output=str(tmp_path / "a.mkv"), scale=2, chunk_frames=8, stages=[sr])
    tuned_sr = sr.model_copy(update={"shots": {1: {"strength": 0.3}}})
    tuned = base.model_copy(update={"output": str(tmp_path / "b.mkv"), "stages": [tuned_sr]})
    r1, r2 = run(base), run(tuned)
    report = json.loads(Path(r2["report"]).read_text())
    by_shot = {(c["shot"], c["reused"]) for c in report["chunks"]}
    assert r1["chunks"] == r2["chunks"] == 6  # 3 shots of 12 frames, 2 chunks each
    assert by_shot == {(0, True), (1, False), (2, True)}, by_shot
    with av.open(r1["output"]) as a, av.open(r2["output"]) as b:
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    same = [bool(np.array_equal(x, y)) for x, y in zip(fa, fb, strict=True)]
    assert same == [True] * 12 + [False] * 12 + [True] * 12
    # the asset's manifest lists both outputs, how each was produced, and chunks that exist
    store = LocalStore(get_settings().storage.root)
    doc = manifest.load(store, report["input"]["asset_id"])
    assert doc is not None and doc["sha256"] == report["input"]["sha256"]
    assert store.exists(doc["source"]["key"])
    a, b = doc["outputs"]
    assert (a["uri"], b["uri"]) == (r1["output"], r2["output"]) and a["run_id"] == r1["run_id"]
    assert b["stages"] == [{"type": "sr", "options": {"strength": 1.0, "scale": 2}, "shots": {"1": {"strength": 0.3}}}]
    assert b["models"] == [{"type": "sr", "model": "sr_x2", "model_version": "2", "backend": "onnxruntime"}]
    assert all(store.exists(c["key"]) for c in a["chunks"] + b["chunks"])
    assert [c["key"] == d["key"] for c, d in zip(a["chunks"], b["chunks"], strict=True)] == [
        True,
        True,
        False,
        False,
        True,
        True,
    ]


def test_stage_chain_deblock_then_sr(tmp_path: Path) -> None:
    """Stages by name in order: deblock (1x) then sr (x2); the report records both with their models."""
    src = make_clip(tmp_path / "c.mp4", cut_frames(10, [], h=48, w=64))
    spec = RestoreSpec(input=str(src), output=str(tmp_path / "o.mp4"), scale=2,
                       stages=[StageSpec(type="deblock"), StageSpec(type="sr")])  # fmt: skip
    r = run(spec)
    report = json.loads(Path(r["report"]).read_text())
    stages = [(s["type"], s["model"]) for s in report["provenance"]["stages"]]
    assert stages == [("deblock", "deblock"), ("sr", "sr_x2")]
    assert set(report["stages"]) == {"deblock", "sr"}
    info = media.probe(r["output"])
    assert (info.video.width, info.video.height, info.video.frames) == (128, 96, 10)


def test_deblock_auto_strength_per_chunk_from_the_source_qp(tmp_path: Path) -> None:
    """``deblock:strength=auto`` on a lightly compressed H.264 source (x264 CRF 12): ingest stores each
    frame's QP, every chunk runs at the ramp's strength for its mean QP (near 0 here: a blind deblock
    would strip texture), and the report and the stage spans say which."""
    from restora.stages.deblock import QP_RAMPS, ramp_strength

    src = make_clip(tmp_path / "c.mp4", cut_frames(12, [6], h=48, w=64))
    spec = RestoreSpec(input=str(src), output=str(tmp_path / "o.mp4"), scale=1,
                       stages=[StageSpec(type="deblock", options={"strength": "auto"})])  # fmt: skip
    r = run(spec)
    report = json.loads(Path(r["report"]).read_text())
    assert report["provenance"]["stages"][0]["strength"] == "auto"
    chunks = report["chunks"]
    assert len(chunks) == 2
    for c in chunks:
        assert 5 < c["source_qp"] < 25
        assert c["source_qp_codec"] == "h264"
        ramp = QP_RAMPS["deblock", report["provenance"]["stages"][0]["model_version"], "h264"]
        assert c["strengths"] == {"deblock": pytest.approx(ramp_strength(c["source_qp"], ramp))}
    stage_spans = [s for s in spans(Path(r["spans"])) if s["name"] == "stage.deblock"]
    assert {round(s["attributes"]["restora.source_qp"], 6) for s in stage_spans} == {
        round(c["source_qp"], 6) for c in chunks
    }


@pytest.mark.parametrize(
    ("stages", "scale", "expected"),
    [
        ("denoise,deblock:strength=0.5,sr", 2, [("denoise", "denoise"), ("deblock", "deblock"), ("sr", "sr_x2")]),
        ("sr:model=restore_joint_x2", 2, [("sr", "restore_joint_x2")]),
        ("sr:model=vsr_x4", 4, [("sr", "vsr_x4")]),
    ],
)
def test_models_by_name_from_the_cli(
    stages: str, scale: int, expected: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every restoration model is usable from the flow by name (``--stages TYPE[:KEY=VALUE]...``): the run
    completes at the right size and the report and manifest name the models and options."""
    from restora.cli import main

    src = make_clip(tmp_path / "c.mp4", cut_frames(12, [6], h=48, w=64))
    out = tmp_path / "o.mp4"
    assert main(["restore", str(src), "-o", str(out), "--scale", str(scale), "--stages", stages]) == 0
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert [(s["type"], s["model"]) for s in report["provenance"]["stages"]] == expected
    info = media.probe(out)
    assert (info.video.width, info.video.height, info.video.frames) == (64 * scale, 48 * scale, 12)
    if "strength=0.5" in stages:
        assert report["provenance"]["stages"][1]["strength"] == 0.5


def test_broadcast_preset_with_the_classical_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--preset broadcast`` runs end to end: deblock as strong as the source's QP calls for, denoise,
    deflicker, SR x2; then ``--stages stabilize,deflicker`` on the same flickering source in chunks of 6.
    The report names each stage with its method or model and options, and the flicker is gone."""
    from restora.cli import main
    from restora.stages.temporal import gray

    rng = np.random.default_rng(4)
    base = cut_frames(1, [], h=48, w=64)[0].astype(np.float32)
    frames = [np.clip(base * (1 + 0.15 * rng.standard_normal()), 0, 255).astype(np.uint8) for _ in range(18)]
    src = make_clip(tmp_path / "c.mp4", frames)
    out = tmp_path / "o.mp4"
    assert main(["restore", str(src), "-o", str(out), "--preset", "broadcast"]) == 0
    report = json.loads(Path(f"{out}.report.json").read_text())
    stages = report["provenance"]["stages"]
    assert [(s["type"], s.get("model")) for s in stages] == [
        ("deblock", "deblock"), ("denoise", "denoise"), ("deflicker", None), ("sr", "sr_x2")]  # fmt: skip
    assert stages[0]["strength"] == "auto" and stages[2]["window"] == 12 and "quantiles" in stages[2]["method"]
    info = media.probe(out)
    assert (info.video.width, info.video.height, info.video.frames) == (128, 96, 18)

    def steps(path: Path) -> float:  # mean change of the mean gray level between frames, 8-bit scale
        return float(np.abs(np.diff(gray(np.stack(media.first_frames(path, 100))).mean(axis=(1, 2)))).mean() * 255)

    out2 = tmp_path / "s.mkv"
    temporal = [StageSpec(type="stabilize"), StageSpec(type="deflicker", options={"window": 8})]
    spec = RestoreSpec(input=str(src), output=str(out2), scale=1, chunk_frames=6, stages=temporal)
    r = run(spec)
    assert len(json.loads(Path(r["report"]).read_text())["chunks"]) == 3
    print(
        f"\nbroadcast preset: tone steps {steps(src):.2f} -> {steps(out):.2f} (x2), {steps(out2):.2f} (1x, chunks of 6)"
    )
    assert steps(out) < 0.3 * steps(src) and steps(out2) < 0.3 * steps(src)


def test_archival_film_preset_end_to_end(tmp_path: Path) -> None:
    """``--preset archival-film`` on a small grainy clip: stabilize, dust_scratch, deflicker, degrain,
    SR x2, regrain; the report lists them in that order and records that pixels were synthesized
    (the re-synthesized grain), which ``forensic`` refuses."""
    from restora.cli import main
    from training import degrade

    rng = np.random.default_rng(5)
    frames = degrade.film_grain(np.stack(cut_frames(12, [], h=48, w=64)), rng, sigma=0.03)
    src = make_clip(tmp_path / "c.mp4", list(frames))
    out = tmp_path / "o.mp4"
    assert main(["restore", str(src), "-o", str(out), "--preset", "archival-film"]) == 0
    report = json.loads(Path(f"{out}.report.json").read_text())
    stages = report["provenance"]["stages"]
    assert [s["type"] for s in stages] == ["stabilize", "deflicker", "dust_scratch", "degrain", "sr", "regrain"]
    assert [s["synthesizes"] for s in stages] == [False] * 5 + [True]
    assert report["provenance"]["synthesized_pixels"] is True
    info = media.probe(out)
    assert (info.video.width, info.video.height, info.video.frames) == (128, 96, 12)
    assert main(["restore", str(src), "-o", str(tmp_path / "f.mp4"), "--preset", "forensic", "--stages",
                 "degrain,regrain"]) == 2  # fmt: skip
    assert not (tmp_path / "f.mp4").exists()


def test_lossless_source_in_several_chunks_keeps_timing(tmp_path: Path) -> None:
    """An FFV1 master cut into chunks: the lossless chunks' container picks its own time base (NUT:
    1/64000 for Matroska's 1/1000), and the joined output still has every frame at its source time."""
    src = make_clip(tmp_path / "m.mkv", cut_frames(20, [], h=48, w=64), codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "o.mkv"
    result = run(RestoreSpec(input=str(src), output=str(out), scale=2, chunk_frames=8))
    report = json.loads(Path(result["report"]).read_text())
    assert len(report["chunks"]) == 3 and media.probe(out).video.codec == "ffv1"
    assert decoded_pts(out) == decoded_pts(src)


def test_subtitles_survive_untouched(tmp_path: Path) -> None:
    """A Matroska source with an SRT subtitle track: the restored output carries the track with the
    same payloads at the same times (packets copied, never re-encoded)."""
    srt = "1\n00:00:00,200 --> 00:00:00,700\nHello\n\n2\n00:00:01,000 --> 00:00:01,400\nWorld\n"
    src = with_subtitles(tmp_path / "sub.mkv", srt, cut_frames(40, [], h=48, w=64))
    out_path = tmp_path / "o.mkv"
    run(RestoreSpec(input=str(src), output=str(out_path), scale=2))

    def cues(path: Path) -> list[tuple[bytes, float]]:
        with av.open(str(path)) as c:
            st = c.streams.subtitles[0]
            return [(bytes(p), float(p.pts * p.time_base)) for p in c.demux(st) if p.size and p.pts is not None]

    assert cues(src) == [(b"Hello", 0.2), (b"World", 1.0)]
    assert cues(out_path) == cues(src)
    assert media.probe(out_path).video.width == 128


def test_restored_clip_beats_bicubic_against_ground_truth(data: Path, tmp_path: Path) -> None:
    """cars_320x240.i420 is the truth; downscale x2, restore x2: PSNR-Y gain over bicubic >= 1 dB."""
    raw = np.fromfile(data / "video/cars/cars_320x240.i420", dtype=np.uint8).reshape(-1, 320 * 240 * 3 // 2)
    n = 320 * 240
    truth = [
        _i420_to_rgb(b[:n].reshape(240, 320), b[n : n * 5 // 4].reshape(120, 160), b[n * 5 // 4 :].reshape(120, 160))
        for b in raw
    ]
    lr = [np.asarray(Image.fromarray(t).resize((160, 120), Image.Resampling.BICUBIC)) for t in truth]
    src = make_clip(tmp_path / "cars_lr.mkv", lr, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "cars_x2.mkv"
    run(RestoreSpec(input=str(src), output=str(out), scale=2))
    with av.open(str(out)) as c:
        restored = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(restored) == len(truth) == 30
    bic = [np.asarray(Image.fromarray(x).resize((320, 240), Image.Resampling.BICUBIC)) for x in lr]

    def mean_psnr_y(frames: list[np.ndarray]) -> float:
        return float(np.mean([psnr_y(a, t, crop=2) for a, t in zip(frames, truth, strict=True)]))

    gain = mean_psnr_y(restored) - mean_psnr_y(bic)
    assert gain >= 1.0, gain


def _i420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV 4:2:0 -> RGB uint8 (chroma upsampled by repetition)."""
    yf = (y.astype(np.float32) - 16) * (255 / 219)
    uf = (np.repeat(np.repeat(u, 2, 0), 2, 1).astype(np.float32) - 128) * (255 / 224)
    vf = (np.repeat(np.repeat(v, 2, 0), 2, 1).astype(np.float32) - 128) * (255 / 224)
    r = yf + 1.402 * vf
    g = yf - 0.344136 * uf - 0.714136 * vf
    b = yf + 1.772 * uf
    return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def test_bad_spec_fails_before_any_work(tmp_path: Path, data: Path) -> None:
    from restora.errors import ConfigError

    src = data / "video/misc/realshort.mp4"
    with pytest.raises(ConfigError):
        restore_video(RestoreSpec(input=str(src), output=str(tmp_path / "x.avi")))
    assert not list(tmp_path.iterdir())
