"""Stages, the stage registry, the local ONNX backend, tiling, and the SR quality bar on Set5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restora import media
from restora.errors import ConfigError, ModelError, StageNotImplementedError
from restora.evaluation import evaluate_sr_set5
from restora.inference import LocalOnnx, infer_images
from restora.metrics import psnr, psnr_y
from restora.report import AssetRef
from restora.settings import get_settings
from restora.spec import RestoreSpec, StageSpec
from restora.stages import StageContext, build_stage
from restora.tiling import run_tiled, tile_starts


@pytest.fixture(scope="module")
def local() -> LocalOnnx:
    return LocalOnnx(get_settings().models.repository, threads=0, max_batch=8)


def test_model_metadata(local: LocalOnnx) -> None:
    for scale in (2, 4):
        info = local.model_info(f"sr_x{scale}")
        assert (info.scale, info.channels, info.input_name, info.output_name) == (scale, 1, "LR_Y", "SR_Y")
    with pytest.raises(ModelError, match="not found"):
        local.model_info("no_such_model")


def test_sessions_stop_spinning_after_each_run(local: LocalOnnx) -> None:
    """In-process and Triton python-backend sessions alike stop ONNX Runtime's spin-waiting threads
    when a run ends, so the next stage (another session) or the encoder gets the cores
    (``restora.inference.STOP_SPINNING``)."""
    from restora.inference import STOP_SPINNING
    from training.package_model import MODEL_PY

    session, _ = local._session("sr_x2")
    assert session.get_session_options().get_session_config_entry(STOP_SPINNING[0]) == STOP_SPINNING[1]  # type: ignore[attr-defined]
    assert f"opts.add_session_config_entry({STOP_SPINNING[0]!r}, {STOP_SPINNING[1]!r})".replace("'", '"') in MODEL_PY


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_stage_shapes_and_beats_bicubic_on_real_image(scale: int, local: LocalOnnx, data: Path) -> None:
    hr = np.asarray(Image.open(data / "images/Set5/HR/butterfly.png").convert("RGB"))
    lr = np.asarray(Image.open(data / f"images/Set5/LR_bicubic/X{scale}/butterflyx{scale}.png").convert("RGB"))
    stage = build_stage("sr", {"scale": scale}, StageContext(backend=local))
    out = stage.process(np.stack([lr, lr]))
    assert out.dtype == np.uint8 and out.shape == (2, lr.shape[0] * scale, lr.shape[1] * scale, 3)
    assert np.array_equal(out[0], out[1])
    hr = hr[: out.shape[1], : out.shape[2]]
    bic = np.asarray(Image.fromarray(lr).resize((out.shape[2], out.shape[1]), Image.Resampling.BICUBIC))
    assert psnr_y(out[0], hr, scale) > psnr_y(bic, hr, scale) + 2.0
    assert psnr_y(out[0], bic, scale) < 40.0  # it is not bicubic under another name
    assert stage.describe()["model"] == f"sr_x{scale}"


def test_set5_quality_bar(local: LocalOnnx, data: Path) -> None:
    """Issue acceptance: x2 >= 36.0 dB and x4 >= 30.0 dB PSNR-Y (bicubic 33.66 / 28.42)."""
    r2 = evaluate_sr_set5(local, 2, data)
    r4 = evaluate_sr_set5(local, 4, data)
    assert abs(r2["mean_bicubic"] - 33.66) < 0.05 and abs(r4["mean_bicubic"] - 28.42) < 0.05  # protocol sanity
    assert r2["mean_model"] >= 36.0
    assert r4["mean_model"] >= 30.0


def test_declared_but_unimplemented_stage_raises(local: LocalOnnx, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage a preset names before it exists is refused by name, in a spec and in a preset."""
    import restora.stages
    from restora import spec as spec_module

    monkeypatch.setattr(restora.stages, "DECLARED", restora.stages.DECLARED | {"colorize"})
    with pytest.raises(StageNotImplementedError, match="colorize"):
        build_stage("colorize", {}, StageContext(backend=local))
    monkeypatch.setitem(spec_module.PRESET_STAGES, "broadcast", [("colorize", {})])
    with pytest.raises(StageNotImplementedError, match="needs stages not implemented yet: colorize"):
        RestoreSpec(input="a.mp4", output="b.mp4", preset="broadcast").resolved_stages()


def test_unknown_stage_and_presets() -> None:
    with pytest.raises(ConfigError):
        build_stage("sharpen_magic", {}, StageContext(backend=LocalOnnx(Path("/nonexistent"))))
    film = RestoreSpec(input="a.mp4", output="b.mp4", preset="archival-film").resolved_stages()
    assert [s.type for s in film] == ["stabilize", "deflicker", "dust_scratch", "degrain", "sr", "regrain"]
    film1 = RestoreSpec(input="a.mp4", output="b.mp4", preset="archival-film", scale=1).resolved_stages()
    assert [s.type for s in film1] == ["stabilize", "deflicker", "dust_scratch", "degrain", "regrain"]
    with pytest.raises(ConfigError, match="regrain needs a degrain"):
        RestoreSpec(input="a.mp4", output="b.mp4", stages=[StageSpec(type="regrain")], scale=1).resolved_stages()
    alone = RestoreSpec(input="a", output="b", stages=[StageSpec(type="regrain", options={"sigma": 0.02})], scale=1)
    assert [s.type for s in alone.resolved_stages()] == ["regrain"]
    with pytest.raises(ConfigError, match="forensic preset refuses stages that synthesize pixels: regrain"):
        RestoreSpec(input="a", output="b", preset="forensic", scale=1,
                    stages=[StageSpec(type="degrain"), StageSpec(type="regrain")]).resolved_stages()  # fmt: skip
    broadcast = RestoreSpec(input="a.mp4", output="b.mp4", preset="broadcast").resolved_stages()
    assert [(s.type, s.options) for s in broadcast] == [
        ("deblock", {"strength": "auto"}),
        ("denoise", {}),
        ("deflicker", {}),
        ("sr", {"scale": 2}),
    ]
    spec = RestoreSpec(input="a.mp4", output="b.mp4", scale=4)
    assert [(s.type, s.options) for s in spec.resolved_stages()] == [("sr", {"scale": 4})]
    assert RestoreSpec(input="a.mp4", output="b.mp4", scale=1).resolved_stages() == []
    with pytest.raises(ConfigError):
        RestoreSpec(input="a", output="b", scale=1, stages=[StageSpec(type="sr")]).resolved_stages()
    a = RestoreSpec(input="a.mp4", output="b.mp4", crf=16).digest()
    assert a != RestoreSpec(input="a.mp4", output="b.mp4", crf=18).digest()
    assert a == RestoreSpec(input="x.mp4", output="y.mp4", crf=16).digest()


def test_tile_starts_cover_everything() -> None:
    for size, tile, ov in [(100, 32, 8), (1080, 256, 16), (64, 64, 8), (50, 64, 8)]:
        starts = tile_starts(size, tile, ov)
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s : s + tile] = True
        assert covered.all() and starts[0] == 0 and starts[-1] + min(tile, size) == size


def test_tiling_identity_is_exact() -> None:
    x = np.random.default_rng(0).random((2, 1, 70, 90), dtype=np.float32)
    up = run_tiled(lambda b: np.repeat(np.repeat(b, 2, axis=2), 2, axis=3), x, 2, tile=32, overlap=8, max_batch=3)
    assert np.allclose(up, np.repeat(np.repeat(x, 2, axis=2), 2, axis=3), atol=1e-6)


def test_tiles_of_a_grid_model_start_on_the_frame_grid() -> None:
    """A block-aligned model (``restora.grid`` = 8) sees every tile on the frame's own 8x8 grid: a
    toy model that marks each tile's block rows and columns from the tile's corner gives the
    untiled result only when the tiles start at multiples of 8 (at 70x90 with tile 32, overlap 8,
    the plain tiling's last tiles start at 38 and 58, off the grid)."""

    def mark_blocks(b: np.ndarray) -> np.ndarray:  # + 1 on the first row and column of each 8x8 block
        out = b.copy()
        out[:, :, ::8, :] += 1.0
        out[:, :, :, ::8] += 1.0
        return out

    x = np.random.default_rng(1).random((2, 1, 70, 90), dtype=np.float32)
    whole = mark_blocks(x)
    on_grid = run_tiled(mark_blocks, x, 1, tile=32, overlap=8, max_batch=3, grid=8)
    assert on_grid.shape == whole.shape
    assert np.allclose(on_grid, whole, atol=1e-6)
    assert not np.allclose(run_tiled(mark_blocks, x, 1, tile=32, overlap=8, max_batch=3), whole, atol=1e-2)
    # a tile below the grid is raised to one cell; the padding at the right and bottom is cropped
    assert np.allclose(run_tiled(mark_blocks, x, 1, tile=5, overlap=2, grid=8), whole, atol=1e-6)


def test_a_models_own_overlap_raises_the_callers() -> None:
    """``restora.overlap`` (a network wider than the default overlap sees): ``infer_images`` tiles
    with at least that much, whatever the caller asks; without it the caller's overlap is used."""
    from dataclasses import replace

    from restora.inference import ModelInfo

    class Identity:
        name = "stub"

        def __init__(self, overlap: int) -> None:
            self.info = ModelInfo("m", "1", "IN", "OUT", 1, 1, 0, 64, overlap=overlap)
            self.tiles = 0

        def model_info(self, model: str) -> ModelInfo:
            return replace(self.info)

        def infer(self, model: str, batch: np.ndarray) -> np.ndarray:
            self.tiles += batch.shape[0]
            return batch

    x = np.random.default_rng(0).random((1, 1, 300, 300), dtype=np.float32)
    counts = {}
    for own in (0, 48):
        backend = Identity(own)
        assert np.allclose(infer_images(backend, "m", x, tile=128, overlap=16), x)  # type: ignore[arg-type]
        counts[own] = backend.tiles
    assert counts == {0: 9, 48: 16}  # strides 112 and 80 over 300 pixels: 3 and 4 tiles a side


def test_tiled_inference_seams_invisible(local: LocalOnnx, data: Path) -> None:
    img = np.asarray(Image.open(data / "images/Set5/HR/baby.png").convert("L"), dtype=np.float32)[None, None] / 255
    whole = infer_images(local, "sr_x2", img)
    tiled = infer_images(local, "sr_x2", img, tile=96, overlap=16)
    assert tiled.shape == whole.shape
    assert psnr(np.clip(tiled, 0, 1), np.clip(whole, 0, 1)) >= 50.0


def test_sr_strength_blends_towards_bicubic(local: LocalOnnx, data: Path) -> None:
    lr = np.asarray(Image.open(data / "images/Set5/LR_bicubic/X2/birdx2.png").convert("RGB"))[None]
    ctx = StageContext(backend=local)
    full, half, none = (build_stage("sr", {"scale": 2, "strength": k}, ctx).process(lr)[0] for k in (1.0, 0.5, 0.0))
    bic = np.asarray(Image.fromarray(lr[0]).resize((full.shape[1], full.shape[0]), Image.Resampling.BICUBIC))
    d_full, d_half, d_none = (psnr_y(x, bic, 2) for x in (full, half, none))
    assert d_full < d_half < d_none, (d_full, d_half, d_none)
    assert d_none > 45.0  # strength 0 is bicubic luma (PIL's filter, rounding aside)
    assert build_stage("sr", {"scale": 2, "strength": 0.5}, ctx).describe()["strength"] == 0.5
    for bad in (-0.1, 1.5, "1", True):
        with pytest.raises(ConfigError, match="strength"):
            build_stage("sr", {"scale": 2, "strength": bad}, ctx)


def test_per_shot_overrides_change_only_that_shots_digest() -> None:
    base = RestoreSpec(input="a.mp4", output="b.mp4", stages=[StageSpec(type="sr", options={"strength": 1.0})])
    tuned = base.model_copy(
        update={"stages": [StageSpec(type="sr", options={"strength": 1.0}, shots={1: {"strength": 0.5}})]}
    )
    assert tuned.digest(0) == base.digest(0) == base.digest(1) == tuned.digest(2)
    assert tuned.digest(1) != base.digest(1)
    assert [s.options for s in tuned.stages_for(1)] == [{"strength": 0.5, "scale": 2}]
    assert StageSpec.model_validate({"type": "sr", "shots": {"3": {"strength": 0.2}}}).shots == {3: {"strength": 0.2}}
    with pytest.raises(ConfigError, match="per shot"):
        RestoreSpec(input="a", output="b", stages=[StageSpec(type="sr", shots={0: {"scale": 4}})]).resolved_stages()


def test_int8_sr_model_by_name_matches_fp32_closely(local: LocalOnnx, data: Path) -> None:
    """sr_x2_int8 (quantized ReLU twin of sr_x2) is selected by the stage's model option."""
    lr = np.asarray(Image.open(data / "images/Set5/LR_bicubic/X2/butterflyx2.png").convert("RGB"))[None]
    hr = np.asarray(Image.open(data / "images/Set5/HR/butterfly.png").convert("RGB"))
    ctx = StageContext(backend=local)
    q = build_stage("sr", {"scale": 2, "model": "sr_x2_int8"}, ctx)
    out_q, out_f = q.process(lr)[0], build_stage("sr", {"scale": 2}, ctx).process(lr)[0]
    assert q.describe()["model"] == "sr_x2_int8"
    assert psnr_y(out_q, out_f, 2) > 40.0  # same task, small quantization error
    bic = np.asarray(Image.fromarray(lr[0]).resize((out_q.shape[1], out_q.shape[0]), Image.Resampling.BICUBIC))
    hr = hr[: out_q.shape[0], : out_q.shape[1]]
    assert psnr_y(out_q, hr, 2) > psnr_y(bic, hr, 2) + 2.0
    assert abs(psnr_y(out_q, hr, 2) - psnr_y(out_f, hr, 2)) < 0.3


def test_deblock_stage_removes_jpeg_artifacts(local: LocalOnnx, data: Path) -> None:
    """classic5 'barbara' (grayscale) JPEG q=10 through the production stage: luma PSNR improves."""
    import io

    clean = np.asarray(Image.open(data / "images/classic5/barbara.bmp").convert("L"))
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, format="JPEG", quality=10)
    comp = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    rgb = np.repeat(comp[None, ..., None], 3, axis=3)
    ctx = StageContext(backend=local)
    stage = build_stage("deblock", {}, ctx)
    out = stage.process(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    ref = np.repeat(clean[..., None], 3, axis=2)
    gain = psnr_y(out[0], ref) - psnr_y(rgb[0], ref)
    assert gain > 0.5, gain
    assert np.array_equal(build_stage("deblock", {"strength": 0.0}, ctx).process(rgb), rgb)
    assert stage.describe() == {"type": "deblock", "scale": 1, "synthesizes": False, "model": "deblock",
                                "model_version": "1", "backend": "onnxruntime", "strength": 1.0}  # fmt: skip
    with pytest.raises(ConfigError, match="x2"):
        build_stage("deblock", {"model": "sr_x2"}, ctx)


def test_deblock_heavy_on_the_block_grid_whole_or_tiled(local: LocalOnnx, data: Path) -> None:
    """``deblock_heavy`` (the block-aligned U-Net, ``restora.grid`` = 8) by name through the stage: on
    classic5 'lena' JPEG q=10 it gains more than 1 dB, tiled (tiles start on the frame's grid) it gives
    the whole-frame result back, and fed the picture off the grid it gains less."""
    import io

    clean = np.asarray(Image.open(data / "images/classic5/lena.bmp").convert("L"))
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, format="JPEG", quality=10)
    comp = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    rgb = np.repeat(comp[None, ..., None], 3, axis=3)
    assert local.model_info("deblock_heavy").grid == 8
    whole = build_stage("deblock", {"model": "deblock_heavy"}, StageContext(backend=local)).process(rgb)
    ref = np.repeat(clean[..., None], 3, axis=2)
    assert psnr_y(whole[0], ref) - psnr_y(rgb[0], ref) > 1.0
    assert local.model_info("deblock_heavy").overlap == 64  # its receptive field is wider than the default 16
    tiled = build_stage("deblock", {"model": "deblock_heavy"}, StageContext(backend=local, tile=100))
    assert psnr_y(tiled.process(rgb)[0], whole[0]) > 48.0
    # the model sees JPEG's blocks where they are: the same picture cut 3 pixels off the grid gains less
    y, c = comp[None, None].astype(np.float32) / 255.0, clean.astype(np.float64)

    def gain(dy: int) -> float:
        out = np.clip(np.rint(local.infer("deblock_heavy", y[:, :, dy:, dy:])[0, 0] * 255.0), 0, 255)
        return psnr(out, c[dy:, dy:]) - psnr(comp[dy:, dy:].astype(np.float64), c[dy:, dy:])

    on, off = gain(0), gain(3)
    print(f"deblock_heavy on lena q=10: on the grid +{on:.2f} dB, 3 px off it +{off:.2f} dB")
    assert on > off + 0.5, (on, off)  # measured +1.69 against +0.73


def test_deblock_auto_strength_follows_the_source_qp(
    local: LocalOnnx, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``strength="auto"``: the calibrated QP ramp sets the blend per chunk (``adapt``); untouched at a
    low QP, the full model at a high one, full strength (with a warning) when the source has no QP."""
    from restora.stages.deblock import QP_RAMPS, ramp_strength

    assert ramp_strength(10.0, (16.0, 42.0)) == 0.0 and ramp_strength(50.0, (16.0, 42.0)) == 1.0
    assert ramp_strength(29.0, (16.0, 42.0)) == pytest.approx(0.5)
    version = local.model_info("deblock").version  # the ramps belong to the shipped model version
    q0, q1 = QP_RAMPS["deblock", version, "h264"]
    rgb = np.asarray(Image.open(data / "images/classic5/barbara.bmp").convert("RGB"))[None, :96, :128]
    ctx = StageContext(backend=local)
    auto, full = build_stage("deblock", {"strength": "auto"}, ctx), build_stage("deblock", {}, ctx)
    assert auto.describe()["strength"] == "auto" and auto.describe()["qp_ramps"]["h264"] == [q0, q1]
    assert "source_qp" not in auto.describe()  # not adapted to any chunk yet
    assert set(auto.describe()["qp_ramps"]) == {"h264", "mpeg2", "mpeg4"}  # type: ignore[arg-type]
    auto.adapt(q0 - 1.0, "h264")
    assert auto.describe()["strength"] == 0.0 and np.array_equal(auto.process(rgb), rgb)
    auto.adapt(q1 + 1.0, "h264")
    assert auto.describe()["source_qp"] == q1 + 1.0 and np.array_equal(auto.process(rgb), full.process(rgb))
    auto.adapt((q0 + q1) / 2, "h264")
    half = auto.process(rgb).astype(np.int16)
    assert auto.describe()["strength"] == pytest.approx(0.5)
    assert 0 < np.abs(half - rgb).mean() < np.abs(full.process(rgb).astype(np.int16) - rgb).mean()
    m0, m1 = QP_RAMPS["deblock", version, "mpeg2"]
    auto.adapt(m0 - 0.5, "mpeg2")  # the other codec's scale, its own ramp
    assert auto.describe()["strength"] == 0.0 and auto.describe()["source_qp_codec"] == "mpeg2"
    auto.adapt((m0 + m1) / 2, "mpeg2")
    assert auto.describe()["strength"] == pytest.approx(0.5)
    with caplog.at_level("WARNING", logger="restora.stages.deblock"):
        auto.adapt(None)
    assert auto.describe()["strength"] == 1.0 and "no calibrated quantiser" in caplog.text
    auto.adapt(30.0, "vp9")  # a scale without a ramp: full strength too
    assert auto.describe()["strength"] == 1.0
    with pytest.raises(ConfigError, match="no QP calibration for model denoise"):
        build_stage("deblock", {"model": "denoise", "strength": "auto"}, ctx)
    with pytest.raises(ConfigError, match="strength must be a number"):
        build_stage("denoise", {"strength": "auto"}, ctx)


def test_denoise_stage_removes_noise(local: LocalOnnx, data: Path) -> None:
    """classic5 'lena' with Gaussian noise sigma 25 on luma through the production stage: PSNR rises by
    more than the best plain blur manages; chroma is left alone; strength 0 is the identity."""
    from restora.color import rgb_to_ycbcr
    from restora.evaluation import noisy

    clean = np.asarray(Image.open(data / "images/classic5/lena.bmp").convert("L"))
    rgb = np.repeat(noisy(clean, "gaussian", 25.0, 0)[None, ..., None], 3, axis=3)
    ctx = StageContext(backend=local)
    stage = build_stage("denoise", {}, ctx)
    out = stage.process(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    ref = np.repeat(clean[..., None], 3, axis=2)
    from PIL import ImageFilter

    blurs = [np.asarray(Image.fromarray(rgb[0]).filter(ImageFilter.GaussianBlur(s))) for s in (1.0, 1.5, 2.0, 3.0)]
    best_blur = max(psnr_y(b, ref) for b in blurs)
    assert psnr_y(out[0], ref) > best_blur + 1.0 > psnr_y(rgb[0], ref) + 5.0
    chroma = rgb_to_ycbcr(out)[..., 1:]
    assert np.abs(chroma - 0.5).max() < 2.5 / 255  # gray in, gray out: only rounding moves chroma
    assert np.array_equal(build_stage("denoise", {"strength": 0.0}, ctx).process(rgb), rgb)
    assert stage.describe()["model"] == "denoise"
    with pytest.raises(ConfigError, match="x4"):
        build_stage("denoise", {"model": "sr_x4"}, ctx)


def test_ssim_reference_values(data: Path) -> None:
    """SSIM: 1 for identical images, falls with noise, and Set5 bicubic x2 SSIM-Y matches the literature."""
    from restora.metrics import ssim

    a = np.asarray(Image.open(data / "images/classic5/lena.bmp").convert("L")).astype(np.float64)
    rng = np.random.default_rng(0)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 1.0 > ssim(a, a + rng.normal(0, 5, a.shape)) > ssim(a, a + rng.normal(0, 15, a.shape)) > 0.3
    with pytest.raises(ValueError):
        ssim(a, a[:-1])


@pytest.mark.slow
def test_eval_command_tables_and_bars(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``restora eval``: the protocol reproduces published baselines; models keep their measured quality."""
    import json

    from restora.cli import main

    assert main(["eval", "--data", str(data), "--json", str(tmp_path / "e.json")]) == 0
    r = json.loads((tmp_path / "e.json").read_text())
    sr = {x["model"]: x for x in r["sr"]}
    assert abs(sr["sr_x2"]["mean_bicubic"] - 33.66) < 0.05 and abs(sr["sr_x2"]["mean_ssim_bicubic"] - 0.9299) < 0.002
    assert abs(sr["sr_x4"]["mean_bicubic"] - 28.42) < 0.05 and abs(sr["sr_x4"]["mean_ssim_bicubic"] - 0.8104) < 0.002
    assert sr["sr_x2"]["mean_model"] >= 36.8 and sr["sr_x4"]["mean_model"] >= 30.7  # issue 6 SR bars
    for scale in (2, 4):  # issue 6 INT8 quality bar
        assert sr[f"sr_x{scale}"]["mean_model"] - sr[f"sr_x{scale}_int8"]["mean_model"] <= 0.15
    transfers = {(x["scale"], x["transfer"]): x for x in r["sr_transfers"]["rows"]}
    assert len(transfers) == 6  # on PQ / HLG code values the SDR-trained models keep most of their gain
    for scale in (2, 4):
        sdr = transfers[scale, "sdr"]["gain_db"]
        assert all(transfers[scale, t]["gain_db"] > sdr - 0.75 for t in ("pq", "hlg")), transfers
    rows = {x["degradation"]: x for x in r["deblock"]["rows"]}
    for q in (10, 20, 30, 40):  # the JPEG baselines of the ARCNN / DnCNN tables, reproduced
        assert abs(rows[f"JPEG q={q}"]["input"] - rows[f"JPEG q={q}"]["published"]["JPEG"]) < 0.02
    assert rows["JPEG q=10"]["model"] > rows["JPEG q=10"]["best_blur"] + 0.4 > rows["JPEG q=10"]["input"] + 0.4
    rows = {(x["set"].split()[0], x["degradation"]): x for x in r["deblock"]["rows"]}
    assert {c for c, _ in rows} == {"classic5", "cars", "foreman"}
    heavy = [
        x for (_, k), x in rows.items() if k.startswith("JPEG") or (k.startswith("H.264") and int(k.split()[-1]) >= 35)
    ]
    assert len(heavy) == 10 and all(x["gain"] > 0.1 for x in heavy)
    for clip in ("cars", "foreman"):  # light encodes: near-neutral at CRF 30; at 25 texture goes (README says so)
        assert rows[clip, "H.264 CRF 30"]["gain"] > -0.15 and rows[clip, "H.264 CRF 25"]["gain"] > -1.2
    coded = [x for (_, k), x in rows.items() if k.startswith("H.264 CRF")]
    assert len(coded) == 12 and rows["cars", "H.264 CRF 20"]["gain"] < -1.0  # full strength wrecks a light encode
    for x in coded:  # strength=auto (from the encode's QP): a gain at every CRF, never below full strength
        assert x["gain_auto"] > 0.05 and x["gain_auto"] > x["gain"] - 0.02, x
    assert rows["cars", "H.264 CRF 20"]["strength_auto"] < 0.5 and rows["cars", "H.264 CRF 45"]["strength_auto"] == 1
    for codec, label in (("mpeg2", "MPEG-2"), ("mpeg4", "MPEG-4")):
        archive = [x for (_, k), x in rows.items() if k.startswith(label)]
        assert len(archive) == 10 and rows["cars", f"{label} q=2"]["gain"] < -1.0  # blind model, near-lossless source
        for x in archive:  # auto on the codec's own quantiser: at most a rounding loss, never below full strength
            assert x["qp_codec"] == codec and x["gain_auto"] > -0.05 and x["gain_auto"] > x["gain"] - 0.02, x
        assert rows["cars", f"{label} q=31"]["gain_auto"] > 0.3
    heavy = {(x["set"].split()[0], x["degradation"]): x for x in r["deblock_heavy"]["rows"]}
    assert heavy["classic5", "JPEG q=10"]["gain"] > rows["classic5", "JPEG q=10"]["gain"] + 0.05  # 1.28 vs 1.16
    for clip in ("cars", "foreman"):  # the heaviest encodes are where it beats deblock (README)
        assert heavy[clip, "H.264 CRF 45"]["gain"] > rows[clip, "H.264 CRF 45"]["gain"]
    for x in heavy.values():  # its own QP ramps: never worse than the input beyond rounding, nor than full strength
        if "gain_auto" in x:
            assert x["gain_auto"] > -0.05 and x["gain_auto"] > x["gain"] - 0.02, x
    noise = {x["degradation"]: x for x in r["denoise"]["rows"]}
    assert abs(noise["gaussian sigma=25"]["input"] - 20.26) < 0.05  # seeded: the same noisy input every run
    assert all(x["model"] > x["best_blur"] + 1.0 for x in noise.values()), "denoise beats every blur by > 1 dB"
    vsr = r["vsr_x4"]
    assert vsr["frames"] == 5 and vsr["truth_warp_error"] < vsr["rows"]["bicubic"]["warp_error"]
    assert abs(vsr["rows"]["sr_x4"]["psnr"] - 28.69) < 0.02  # per-frame sr_x4 v2 on the held-out clip, as trained
    assert vsr["gain_db"] >= 0.5 and vsr["warp_error_reduction"] >= 0.3  # issue 6 video SR bars vs sr_x4
    joint = r["joint_x2"]["rows"]
    assert all(x["joint"]["psnr"] > x["bicubic"]["psnr"] and x["chain"]["psnr"] > x["bicubic"]["psnr"] for x in joint)
    assert np.mean([x["gain_db"] for x in joint]) >= 0.3  # one network beats the three-model chain (speed: make bench)
    timing = r["joint_x2"]["frame_timing"]
    assert [t["lr_size"] for t in timing] == [[640, 360], [1280, 720]]
    assert all(t["joint_s"] > 0 and t["chain_s"] > 0 and t["time_ratio"] == t["joint_s"] / t["chain_s"] for t in timing)
    out = capsys.readouterr().out
    for title in (
        "Artifact removal (deblock v",
        "Denoising (denoise v1",
        "Video SR x4 (vsr_x4 v2",
        "Joint restoration",
        "one 1280x720 LR frame: joint",
    ):
        assert title in out


def _tiny_video_onnx(path: Path, frames: int, scale: int) -> None:
    """``(N, frames, h, w)`` -> ``(N, 1, h*scale, w*scale)``: one random 3x3 conv over all frames + DepthToSpace."""
    import onnx
    from onnx import TensorProto, helper

    out_c = scale * scale
    w = np.random.default_rng(0).normal(0, 0.1, out_c * frames * 9)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["LR_Y", "W"], ["F"], pads=[1, 1, 1, 1]),
            helper.make_node("DepthToSpace", ["F"], ["SR_Y"], blocksize=scale, mode="CRD"),
        ],
        "tiny_video",
        [helper.make_tensor_value_info("LR_Y", TensorProto.FLOAT, ["batch", frames, "h", "w"])],
        [helper.make_tensor_value_info("SR_Y", TensorProto.FLOAT, ["batch", 1, "H", "W"])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [out_c, frames, 3, 3], w)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_temporal_windows_clamp_at_the_ends() -> None:
    from restora.stages.sr import temporal_windows

    y = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    w = temporal_windows(y, 5, 0, 4)
    assert w.shape == (4, 5, 2, 3) and w.dtype == np.float32
    assert [list(row[:, 0, 0].astype(int)) for row in w] == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3],
                                                             [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]  # fmt: skip
    assert list(temporal_windows(y, 3, 2, 3)[0, :, 0, 0].astype(int)) == [1, 2, 3]


def test_multi_frame_model_packaged_served_and_run_by_the_sr_stage(tmp_path: Path) -> None:
    """A 3-frame x2 model: package_model --frames, LocalOnnx metadata, the sr stage feeds each frame its
    window (a neighbour's change reaches exactly the frames whose window holds it), frames > 8 batch."""
    from training.package_model import package

    src = tmp_path / "v.onnx"
    _tiny_video_onnx(src, frames=3, scale=2)
    repo = tmp_path / "repo"
    with pytest.raises(ValueError, match="odd"):
        package(src, "tiny_vsr", 2, 1, repository=repo, frames=2)
    with pytest.raises(ValueError, match="channels"):
        package(src, "tiny_vsr", 2, 1, repository=repo, frames=5)
    package(src, "tiny_vsr", 2, 1, repository=repo, frames=3)
    local = LocalOnnx(repo)
    info = local.model_info("tiny_vsr")
    assert (info.frames, info.channels, info.in_channels, info.scale) == (3, 1, 3, 2)
    with pytest.raises(ModelError, match=r"\(N, 3, H, W\)"):
        local.infer("tiny_vsr", np.zeros((1, 1, 8, 8), np.float32))
    clip = np.random.default_rng(1).integers(0, 256, (11, 12, 16, 3), dtype=np.uint8)
    stage = build_stage("sr", {"scale": 2, "model": "tiny_vsr"}, StageContext(backend=local))
    out = stage.process(clip)
    assert out.shape == (11, 24, 32, 3) and out.dtype == np.uint8
    changed = clip.copy()
    changed[9] = 255 - changed[9]
    diff = np.abs(stage.process(changed).astype(int) - out).reshape(11, -1).max(axis=1)
    assert list(np.nonzero(diff)[0]) == [8, 9, 10]
    assert stage.context == 1
    assert np.array_equal(stage.process_span(clip, 3, 7), out[3:7])  # neighbours 2 and 7 read, not clamped


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 11])
def test_stream_stage_gives_every_frame_its_neighbours_across_batches(batch: int) -> None:
    """Streaming a context-2 temporal filter batch by batch equals running it on the whole sequence."""
    from restora.pipeline import stream_stage

    seq = np.random.default_rng(2).integers(0, 256, (11, 2, 3, 3), dtype=np.uint8)

    def span(frames: np.ndarray, start: int, stop: int) -> np.ndarray:  # clamped 5-tap mean
        idx = np.clip(np.arange(start, stop)[:, None] + np.arange(-2, 3), 0, len(frames) - 1)
        return frames[idx].astype(np.float64).mean(axis=1).round().astype(np.uint8)

    batches = [([(i, 100 * i) for i in range(s, min(11, s + batch))], seq[s : s + batch]) for s in range(0, 11, batch)]
    parts = list(stream_stage(span, 2, batches))
    assert [k for keys, _ in parts for k in keys] == [(i, 100 * i) for i in range(11)]
    assert np.array_equal(np.concatenate([f for _, f in parts]), span(seq, 0, 11))
    assert all(len(keys) == len(f) for keys, f in parts)


def test_chunks_of_a_shot_restore_like_the_whole_shot(tmp_path: Path) -> None:
    """A 3-frame model over a lossless clip cut into chunks of 4 frames, decoded 2 at a time: each chunk
    file holds exactly its frames, and together they equal the stage run on the whole shot at once."""
    from restora import media
    from restora.pipeline import analyze, plan_chunks, restore_chunk
    from restora.shots import ShotList
    from tests.conftest import make_clip
    from training.package_model import package

    src = tmp_path / "v.onnx"
    _tiny_video_onnx(src, frames=3, scale=2)
    package(src, "tiny_vsr", 2, 1, repository=tmp_path / "repo", frames=3)
    stage = build_stage("sr", {"scale": 2, "model": "tiny_vsr"}, StageContext(backend=LocalOnnx(tmp_path / "repo")))
    clip = np.random.default_rng(3).integers(0, 256, (10, 12, 16, 3), dtype=np.uint8)
    path = make_clip(tmp_path / "in.mkv", list(clip), codec="ffv1", pix_fmt="bgr0")
    an = analyze(path)
    chunks = plan_chunks(ShotList(frames=10, cuts=[]), an.index, 4)
    assert [(c.start, c.stop, c.shot_start, c.shot_stop) for c in chunks] == [(0, 4, 0, 10), (4, 8, 0, 10),
                                                                             (8, 10, 0, 10)]  # fmt: skip
    params = media.choose_encode(an.info, 2, tmp_path / "out.mkv", 18, "ultrafast")
    got = []
    for c in chunks:
        out = tmp_path / f"c{c.start}.mkv"
        res = restore_chunk(path, an.info, an.index, c, [stage], params, out, batch=2)
        assert res.frames == c.frames
        got += media.first_frames(out, 100)
    assert len(got) == 10 and np.array_equal(np.stack(got), stage.process(clip))


def test_block_flow_and_temporal_warp_error(data: Path) -> None:
    """Block matching recovers a known shift of a real image; the warp error is 0 for output that moves
    with the truth, the truth's own floor for the truth, and grows with frame-independent noise."""
    from restora.metrics import block_flow, reference_motion, temporal_warp_error

    img = np.asarray(Image.open(data / "images/classic5/lena.bmp").convert("L"))[100:260, 100:300]
    cur = np.roll(img, (2, -3), axis=(0, 1))  # cur[y, x] = img[y - 2, x + 3]
    flow = block_flow(img, cur, radius=5)
    assert (flow[20:-20, 20:-20] == (-2, 3)).all()
    clip = np.stack([np.roll(img, (t, -t), axis=(0, 1)) for t in range(4)]).astype(np.float64)
    motion = reference_motion(clip)
    assert temporal_warp_error(clip, motion, border=8) == 0.0
    rng = np.random.default_rng(0)
    e1 = temporal_warp_error(clip + rng.normal(0, 2, clip.shape), motion, border=8)
    e2 = temporal_warp_error(clip + rng.normal(0, 6, clip.shape), motion, border=8)
    assert 6.0 < e1 < 10.0 and e2 > 8 * e1  # independent noise sigma s per frame: 2 s^2
    with pytest.raises(ValueError):
        temporal_warp_error(clip[:3], motion)


def test_chunk_key_of_a_temporal_stage_depends_on_its_shot() -> None:
    """A chunk restored with temporal context read frames of its shot beyond it: the cache key names the
    shot's range then (and only then), so a chunk is never reused with other neighbours."""
    from restora.spec import ShotSpec
    from restora.stages import Stage
    from tasks.restore_shot import chunk_key

    class Per(Stage):
        type = "sr"

    class Temporal(Per):
        @property
        def context(self) -> int:
            return 2

    asset = _asset()
    spec = RestoreSpec(input="in.mp4", output="out.mp4", scale=2)
    c = ShotSpec(shot=0, start=0, stop=4, start_s=0.0, end_s=0.1, shot_start=0, shot_stop=10)
    other_shot = c.model_copy(update={"shot_stop": 8})
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    per, temporal = [Per(ctx)], [Temporal(ctx)]
    enc = _encode_params()
    assert chunk_key(asset, spec, c, per, enc) == chunk_key(asset, spec, other_shot, per, enc)
    assert chunk_key(asset, spec, c, temporal, enc) != chunk_key(asset, spec, other_shot, temporal, enc)
    assert chunk_key(asset, spec, c, temporal, enc) != chunk_key(asset, spec, c, per, enc)
    # the encoding chosen for the source is part of the key: a 10-bit or HDR re-encode is a new chunk
    deep = enc.model_copy(update={"pix_fmt": "yuv420p10le"})
    assert chunk_key(asset, spec, c, per, enc) != chunk_key(asset, spec, c, per, deep)
    assert chunk_key(asset, spec, c, per, enc) != chunk_key(
        _asset(media.DEINTERLACE), spec, c, per, enc
    )  # deinterlaced

    class Retuned(media.EncodeParams):  # the same choice, the encoder's options changed in the code
        def options(self) -> dict[str, str]:
            return {**super().options(), "minrate": "50M"}

    assert chunk_key(asset, spec, c, per, enc) != chunk_key(asset, spec, c, per, Retuned(**enc.model_dump()))


def _asset(deinterlace: str | None = None) -> AssetRef:
    video = media.VideoStreamInfo.model_construct(deinterlace=deinterlace)
    return AssetRef.model_construct(asset_id="a", info=media.MediaInfo.model_construct(video=video))


def _encode_params() -> media.EncodeParams:
    color = media.ColorInfo(primaries=1, transfer=1, matrix=1, range=1)
    return media.EncodeParams(codec="libx264", pix_fmt="yuv420p", width=64, height=48, time_base="1/25",
                              frame_rate="25/1", color=color)  # fmt: skip


def test_chunk_key_of_deblock_auto_follows_its_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-fitting ``strength=auto``'s QP ramp for the same model version changes every chunk's output:
    the cache key changes with it, so no chunk restored on the old ramp is reused."""
    from restora.spec import ShotSpec
    from restora.stages import deblock
    from tasks.restore_shot import chunk_key

    asset = _asset()
    spec = RestoreSpec(input="in.mp4", output="out.mp4", scale=1,
                       stages=[StageSpec(type="deblock", options={"strength": "auto"})])  # fmt: skip
    c = ShotSpec(shot=0, start=0, stop=4, start_s=0.0, end_s=0.1)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    enc = _encode_params()
    before = chunk_key(asset, spec, c, [build_stage("deblock", {"strength": "auto"}, ctx)], enc)
    assert before == chunk_key(asset, spec, c, [build_stage("deblock", {"strength": "auto"}, ctx)], enc)
    version = ctx.backend.model_info("deblock").version
    monkeypatch.setitem(deblock.QP_RAMPS, ("deblock", version, "mpeg2"), (10.0, 40.0))
    assert chunk_key(asset, spec, c, [build_stage("deblock", {"strength": "auto"}, ctx)], enc) != before


def test_chunk_key_of_a_classical_stage_follows_its_method_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage without a model has no model version: when its method changes (``method_version``), so
    does the key, and no chunk restored the old way is reused."""
    from restora.spec import ShotSpec
    from restora.stages.degrain import Degrain
    from tasks.restore_shot import chunk_key

    asset, enc = _asset(), _encode_params()
    spec = RestoreSpec(input="in.mp4", output="out.mp4", scale=1, stages=[StageSpec(type="degrain")])
    c = ShotSpec(shot=0, start=0, stop=4, start_s=0.0, end_s=0.1, shot_start=0, shot_stop=10)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    before = chunk_key(asset, spec, c, [build_stage("degrain", {}, ctx)], enc)
    assert before == chunk_key(asset, spec, c, [build_stage("degrain", {}, ctx)], enc)
    monkeypatch.setattr(Degrain, "method_version", Degrain.method_version + 1)
    assert chunk_key(asset, spec, c, [build_stage("degrain", {}, ctx)], enc) != before
