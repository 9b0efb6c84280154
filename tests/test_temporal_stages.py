"""The classical temporal stages, ``deflicker`` and ``stabilize``, on real footage with known
synthetic flicker and jitter: what they remove, what they leave alone, and that the pipeline's
streaming and chunking give the same frames as one pass over the shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restora import media
from restora.color import quantize, to_unit
from restora.errors import ConfigError
from restora.inference import LocalOnnx
from restora.metrics import psnr
from restora.pipeline import analyze, plan_chunks, restore_chunk, stream_stage
from restora.settings import get_settings
from restora.shots import ShotList
from restora.stages import StageContext, build_stage
from restora.stages.stabilize import measure_shift, shift_image
from restora.stages.temporal import gray, local_poly_weights
from tests.conftest import make_clip


@pytest.fixture(scope="module")
def ctx() -> StageContext:
    return StageContext(backend=LocalOnnx(get_settings().models.repository))


def flicker(frames: np.ndarray, seed: int = 0, gain: float = 0.12, offset: float = 0.04) -> np.ndarray:
    """Each frame times a random gain plus a random offset (std ``gain``, ``offset`` of full scale)."""
    rng = np.random.default_rng(seed)
    a = 1 + gain * rng.standard_normal(len(frames)).clip(-2, 2)
    b = offset * rng.standard_normal(len(frames)).clip(-2, 2)
    gain_t, offset_t = a.astype(np.float32)[:, None, None, None], b.astype(np.float32)[:, None, None, None]
    return quantize(to_unit(frames) * gain_t + offset_t, frames.dtype)


def tone_steps(frames: np.ndarray) -> float:
    """Mean absolute change of the mean gray level from one frame to the next, 8-bit scale."""
    return float(np.abs(np.diff(gray(frames).mean(axis=(1, 2)))).mean() * 255)


@pytest.fixture(scope="module")
def turtle(data: Path) -> np.ndarray:
    """The first 60 frames of a real 640x360 clip, one shot: a photograph fading in from white over 25
    frames, then still."""
    return np.stack(media.first_frames(data / "video/misc/watermark_mpegts.ts", 60))


@pytest.fixture(scope="module")
def still(data: Path) -> np.ndarray:
    """A real 704x710 photograph as float32 RGB in [0, 1]."""
    return np.asarray(Image.open(data / "images/train/General100/im_36.png").convert("RGB"), np.float32) / 255


def camera(still: np.ndarray, path: np.ndarray, h: int = 480, w: int = 560) -> np.ndarray:
    """Frames of a camera at ``path`` ``(T, 2)`` (x, y pixels) over ``still``: uint8 ``(T, h, w, 3)``."""
    return np.stack([quantize(shift_image(still, -x - 20, -y - 20)[:h, :w], np.dtype(np.uint8)) for x, y in path])


def test_local_poly_weights_reproduce_polynomials() -> None:
    """One-sided and centred windows: the weights sum to 1 and return the value at 0 of any line
    (degree 1) or parabola (degree 2); a single sample is its own fit."""
    rng = np.random.default_rng(0)
    for offsets in (np.arange(-6, 7), np.arange(0, 9), np.arange(-9, 3)):
        for degree in (1, 2):
            k = local_poly_weights(offsets, 3.0, degree)
            assert k.sum() == pytest.approx(1.0)
            c = rng.normal(size=3)
            poly = c[0] + c[1] * offsets + (c[2] * offsets**2 if degree == 2 else 0)
            assert k @ poly == pytest.approx(c[0])
        noisy = rng.normal(size=len(offsets))
        assert abs(local_poly_weights(offsets, 3.0, 1) @ noisy) < np.abs(noisy).max()
    assert local_poly_weights(np.array([0]), 3.0, 2).tolist() == [1.0]


@pytest.mark.parametrize(("dx", "dy"), [(0.1, -0.05), (0.5, 0.25), (1.3, -0.65), (7.4, 3.7), (-20.0, 11.5)])
def test_measure_shift_is_subpixel_and_shift_image_agrees(still: np.ndarray, dx: float, dy: float) -> None:
    """A real photograph moved by a known sub-pixel amount (``shift_image``, cubic) is measured back
    within 0.05 pixel: the sign conventions of measuring and moving agree."""
    a = gray(still[None, :240, :320])[0]
    b = gray(shift_image(still, dx, dy)[None, :240, :320])[0]
    got = measure_shift(a, b)
    assert got is not None and got == pytest.approx((dx, dy), abs=0.05)
    assert measure_shift(a, np.zeros_like(a)) is None  # nothing in common: no match, not a zero shift


@pytest.mark.parametrize("clip", ["turtle", "bikes"])
def test_deflicker_removes_flicker_from_real_footage(clip: str, request: pytest.FixtureRequest, data: Path,
                                                     ctx: StageContext) -> None:  # fmt: skip
    """Random per-frame gain (std 12 %) and offset (std 4 %) on real clips (the faded photograph, and
    the first shot of ``bikes.mp4``, 30 frames of a pan): the stage brings the frames at least 4 dB closer
    to the originals and the tone's frame-to-frame wobble below a fifth of the damaged one's, and leaves
    the clean clip within 45 dB of itself (measured: turtle 23.2 -> 28.2 dB, tone steps 17.6 -> 1.9
    against 1.4 clean, clean 49.3 dB; bikes 25.3 -> 32.7 dB, tone steps 16.6 -> 1.7 against 0.4,
    clean 49.9 dB: a short shot leaves more of the flicker in the smoothed tone)."""
    frames = request.getfixturevalue("turtle") if clip == "turtle" else np.stack(
        media.first_frames(data / "video/misc/bikes.mp4", 30))  # fmt: skip
    stage = build_stage("deflicker", {}, ctx)
    bad = flicker(frames)
    out = stage.process(bad)
    before, after = psnr(bad, frames, 255.0), psnr(out, frames, 255.0)
    clean = psnr(stage.process(frames), frames, 255.0)
    print(f"\ndeflicker {clip}: {before:.2f} -> {after:.2f} dB; tone steps {tone_steps(frames):.2f} (clean) "
          f"{tone_steps(bad):.2f} -> {tone_steps(out):.2f}; clean through the stage {clean:.2f} dB")  # fmt: skip
    assert after > before + 4.0
    assert tone_steps(out) < 0.2 * tone_steps(bad)
    assert clean > 45.0


def test_deflicker_keeps_a_fade(data: Path, ctx: StageContext) -> None:
    """A real fade from black to full and back (one shot of 81 frames, the mean level moving up to 10 codes
    a frame, curving at the top): the local quadratic fit follows it, the frames stay within 45 dB."""
    frames = np.stack(media.first_frames(data / "video/shots/fades.mp4", 83))[2:]
    out = build_stage("deflicker", {}, ctx).process(frames)
    print(f"\ndeflicker fade: {psnr(out, frames, 255.0):.2f} dB from the input")
    assert psnr(out, frames, 255.0) > 45.0


def test_stabilize_removes_jitter_and_keeps_the_pan(still: np.ndarray, ctx: StageContext) -> None:
    """A camera panning 25 x 6 pixels over a real photograph in 60 frames with random jitter (std 2 px):
    the stabilized frames step less than 0.2 px off the pan from one frame to the next (2 px before),
    and the same pan without jitter comes through unchanged."""
    t = 60
    pan = np.stack([np.linspace(0, 25, t), np.linspace(0, 6, t)], 1)
    jitter = np.random.default_rng(1).normal(0, 2.0, (t, 2))
    truth, shaky = camera(still, pan), camera(still, pan + jitter)
    stage = build_stage("stabilize", {}, ctx)
    out = stage.process(shaky)

    def wobble(x: np.ndarray) -> float:  # frame-to-frame change of the offset from the true pan, pixels
        off = np.array([measure_shift(gray(truth[i : i + 1])[0], gray(x[i : i + 1])[0]) for i in range(t)])
        return float(np.abs(np.diff(off, axis=0)).mean())

    print(f"\nstabilize: jitter {wobble(shaky):.2f} -> {wobble(out):.3f} px per frame")
    assert wobble(shaky) > 1.5 and wobble(out) < 0.2
    assert np.array_equal(stage.process(truth), truth)


def test_stabilize_leaves_a_steady_real_shot_alone(turtle: np.ndarray, ctx: StageContext) -> None:
    """A shot without camera motion but with a fade from white (the tone changes, the picture does not
    move): no motion is read into the fade, corrections stay under half a pixel."""
    stage = build_stage("stabilize", {}, ctx)
    moves = stage.corrections(turtle, 0, len(turtle))  # type: ignore[attr-defined]
    assert np.abs(moves).max() < 0.5
    assert psnr(stage.process(turtle), turtle, 255.0) > 45.0


@pytest.mark.parametrize("name", ["deflicker", "stabilize"])
def test_streamed_in_batches_equals_one_pass(name: str, turtle: np.ndarray, ctx: StageContext) -> None:
    """Through ``stream_stage`` in batches of 4 (the pipeline's decode batches), every frame comes out
    exactly as from one pass over the whole shot: the window of context reaches across batches."""
    stage = build_stage(name, {"window": 6}, ctx)
    clip = flicker(turtle[:30, :120, :160])
    batches = [([(i, i) for i in range(s, min(s + 4, 30))], clip[s : s + 4]) for s in range(0, 30, 4)]
    got = np.concatenate([f for _, f in stream_stage(stage.process_span, stage.context, batches)])
    assert np.array_equal(got, stage.process(clip))


@pytest.mark.parametrize("name", ["deflicker", "stabilize"])
def test_chunks_of_a_shot_equal_one_pass(name: str, turtle: np.ndarray, ctx: StageContext, tmp_path: Path) -> None:
    """A lossless (FFV1) flickering, shaking clip restored in chunks of 8 frames by ``restore_chunk``:
    joined, the chunks equal the stage over the whole shot (each chunk read its shot's neighbours)."""
    shake = np.random.default_rng(2).normal(0, 1.5, (24, 2))
    clip = flicker(np.stack([quantize(shift_image(to_unit(f), dx, dy), np.dtype(np.uint8))
                             for f, (dx, dy) in zip(turtle[:24, :96, :128], shake, strict=True)]))  # fmt: skip
    path = make_clip(tmp_path / "in.mkv", list(clip), codec="ffv1", pix_fmt="bgr0")
    an = analyze(path)
    stage = build_stage(name, {"window": 5}, ctx)
    params = media.choose_encode(an.info, 1, tmp_path / "out.mkv", 18, "ultrafast")
    got = []
    for c in plan_chunks(ShotList(frames=24, cuts=[]), an.index, 8):
        out = tmp_path / f"c{c.start}.mkv"
        assert restore_chunk(path, an.info, an.index, c, [stage], params, out, batch=3).frames == 8
        got += media.first_frames(out, 100)
    expected = stage.process(clip)
    assert not np.array_equal(expected, clip)
    assert np.array_equal(np.stack(got), expected)


@pytest.mark.parametrize("name", ["deflicker", "stabilize"])
def test_sixteen_bit_frames_stay_sixteen_bit(name: str, turtle: np.ndarray, ctx: StageContext) -> None:
    """uint16 frames (a 10-bit source) come out uint16, corrected as the 8-bit ones are."""
    deep = turtle[:20, :120, :160].astype(np.uint16) * 257
    bad = flicker(deep) if name == "deflicker" else deep
    out = build_stage(name, {}, ctx).process(bad)
    assert out.dtype == np.uint16 and out.shape == bad.shape
    small = turtle[:20, :120, :160]
    out8 = build_stage(name, {}, ctx).process(flicker(small) if name == "deflicker" else small)
    assert np.abs(out.astype(np.float64) / 257 - out8).mean() < 1.0


def test_options_are_checked(ctx: StageContext) -> None:
    for name, opts in [("deflicker", {"window": 0}), ("deflicker", {"window": 2.5}), ("deflicker", {"strength": 2}),
                       ("stabilize", {"max_shift": 0.5}), ("stabilize", {"max_shift": True}),
                       ("stabilize", {"radius": 3})]:  # fmt: skip
        with pytest.raises(ConfigError):
            build_stage(name, opts, ctx)
    clip = flicker(np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8))
    for name in ("deflicker", "stabilize"):  # strength 0: the input, bit for bit
        assert np.array_equal(build_stage(name, {"strength": 0}, ctx).process(clip), clip)


@pytest.mark.slow
def test_temporal_stages_benchmark_runs(tmp_path: Path) -> None:
    """``make bench``'s deflicker / stabilize measurements stay runnable (short clips, one repeat)."""
    import json

    from benchmarks.temporal_stages import main

    assert main(["--frames", "4", "--limit", "40", "--repeats", "1", "--out", str(tmp_path / "t.json")]) == 0
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["deflicker"]["turtle"]["deflicker_db"] > report["deflicker"]["turtle"]["flickered_db"]
    jitter = report["stabilize"]["synthetic_jitter"]
    assert jitter["wobble_px_per_frame_stabilized"] < jitter["wobble_px_per_frame_input"] / 10
    assert set(report["speed"]) == {"640x272", "1280x720"}
