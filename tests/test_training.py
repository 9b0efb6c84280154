"""Training recipes stay alive: each runs a few iterations on tiny data and exports a usable ONNX model.

The committed weights are what ships; these tests only prove the recipes still run end to end.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from restora.inference import model_path, read_model_info
from training import loop, package_model, quantize, reexport, train_sr
from training.export import lumasr_from_onnx

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1] / "triton_models"


def test_train_sr_recipe_smoke(tmp_path: Path) -> None:
    """ReLU twin warm-started from the shipped sr_x2 ONNX weights: 3 iterations, export, metrics."""
    out = tmp_path / "run"
    train_sr.main(["--scale", "2", "--iters", "3", "--batch", "2", "--limit-images", "2", "--eval-every", "3",
                   "--act", "relu", "--init", str(REPO / "sr_x2/2/model.onnx"), "--name", "sr_x2_relu",
                   "--out", str(out)])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "sr_x2_relu" and "relu" in metrics["architecture"]
    assert metrics["set5_psnr_y"]["mean"] > 33.0  # warm start: far above a random network, near the shipped model
    repo = tmp_path / "repo"
    package_model.main(["--onnx", str(out / "model.onnx"), "--name", "sr_x2_relu", "--scale", "2", "--channels", "1",
                        "--metrics-json", str(out / "metrics.json"), "--repository", str(repo)])  # fmt: skip
    info = read_model_info(repo / "sr_x2_relu/1/model.onnx", "sr_x2_relu", "1", 1)
    assert (info.scale, info.channels, info.input_name) == (2, 1, "LR_Y")
    assert (repo / "sr_x2_relu/config.pbtxt").exists() and (repo / "sr_x2_relu/README.md").exists()
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "Relu" in ops and "PRelu" not in ops


def test_quantize_recipe_smoke(tmp_path: Path) -> None:
    out = tmp_path / "q"
    quantize.main(["--model", "sr_x2", "--out", str(out), "--calib", "2", "--crop", "24", "--sizes", "32x24",
                   "--repeats", "1"])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "sr_x2_int8" and set(m["latency_ms"]) == {"32x24"}
    assert abs(m["set5_psnr_y"]["loss_db"]) < 1.0  # 2 calibration crops: rough, but still the same model
    model = onnx.load(str(out / "model.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    info = read_model_info(out / "model.onnx", "sr_x2_int8", "1", 1)
    assert (info.scale, info.channels) == (2, 1), "restora metadata carried over"
    assert np.isfinite(m["latency_ms"]["32x24"]["speedup"])
    # the bicubic skip stays float: its weights are a float initializer, not a dequantized int8 tensor
    (skip,) = [n for n in model.graph.node if n.name == "/bicubic/Conv"]
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert skip.input[1] in floats
    assert m["quantization"]["weights"] == "int8 per-channel, 7-bit range"  # no u8s8 saturation without VNNI


def test_dequantize_qdq_gives_back_the_float_network(tmp_path: Path) -> None:
    """A QDQ INT8 model turned back into float (``--from-int8``): the ReLU twin of ``sr_x2`` with
    its weights on their int8 grid, so within a few codes of the INT8 model and, unlike the plain
    removal of the quantize/dequantize pairs (which drops the ReLUs the quantizer folded into them),
    an SR model still; re-quantizing it works."""
    import onnxruntime as ort

    src, _ = model_path(REPO, "sr_x2_int8")
    quantize.dequantize_qdq(src, tmp_path / "f.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "f.onnx")).graph.node}
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops and "Clip" in ops
    from PIL import Image

    lr = Image.open(quantize.DATA / "images/Set5/LR_bicubic/X2/butterflyx2.png").convert("L")
    x = (np.asarray(lr, dtype=np.float32) / 255.0)[None, None, :48, :64]
    run = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (src, tmp_path / "f.onnx")]
    q, f = (r.run(None, {r.get_inputs()[0].name: x})[0] for r in run)
    assert f.shape == q.shape == (1, 1, 96, 128) and np.abs(f - q).mean() < 2.0 / 255  # within a few codes
    out = tmp_path / "rq"
    quantize.main(["--model", "sr_x2", "--from-int8", str(src), "--out", str(out), "--calib", "2", "--crop", "24",
                   "--sizes", "32x24", "--repeats", "1"])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert abs(m["set5_psnr_y"]["source_fp32"] - m["set5_psnr_y"]["fp32"]) < 0.2  # the twin, not a broken graph
    assert m["architecture"].endswith("re-quantized with 7-bit weights")


@pytest.mark.parametrize(
    ("ends", "expected"), [("none", []), ("first", ["0"]), ("last", ["12"]), ("both", ["0", "12"])]
)
def test_float_ends_names_the_body_convolutions_left_float(ends: str, expected: list[str]) -> None:
    """``--float-ends``: the first / last convolution of the body (in graph order) join the float skip."""
    path = model_path(REPO, "sr_x2")[0]
    names = quantize.float_nodes(path, ends=ends)
    assert [n for n in names if n.startswith("/body/")] == [f"/body/body.{i}/Conv" for i in expected]
    assert "/bicubic/Conv" in names and "/bicubic/Conv" not in quantize.float_nodes(path, skip=False, ends=ends)


@pytest.mark.parametrize("name", ["sr_x2_int8", "sr_x4_int8"])
def test_shipped_int8_models_stay_integer_between_convolutions(name: str, tmp_path: Path) -> None:
    """After ONNX Runtime's graph optimizations the shipped INT8 model quantizes once, at its input:
    every ReLU (``Clip`` in a re-quantized graph) is quantized with the convolutions, so no activation
    goes back to float and through ``QuantizeLinear`` again (version 2 did that after each of its 7
    convolutions, 12 % of its CPU time)."""
    import collections

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(model_path(REPO, name)[0]), so, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
    assert ops["QLinearConv"] == 7 and ops["QuantizeLinear"] == 1, ops


def test_train_deblock_recipe_smoke(tmp_path: Path) -> None:
    """JPEG stills and real H.264/HEVC video re-encodes as data, 2 iterations, export, held-out evaluation."""
    from training import train_deblock

    out = tmp_path / "run"
    train_deblock.main(["--iters", "2", "--batch", "2", "--patch", "32", "--limit-images", "2", "--segments", "1",
                        "--seg-len", "3", "--max-frames", "12", "--eval-every", "2", "--channels", "8", "--down", "2",
                        "--warmup", "1", "--out", str(out)])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["training_pairs"] == {"images_jpeg_on_the_fly": 2, "video_frames": 12}
    q10 = m["psnr_classic5_jpeg_q10"]
    assert abs(q10["input"] - 27.82) < 0.05, "classic5 q=10 JPEG baseline as published (ARCNN/DnCNN tables)"
    assert np.isfinite(q10["output"]) and q10["output"] > 20.0  # 2 iterations: any sane image, not a number check
    for crf in (25, 30, 35, 40, 45):
        assert m[f"psnr_cars_h264_crf{crf}"]["input"] < 40
    assert m["psnr_cars_h264_crf35"]["input"] > m["psnr_cars_h264_crf45"]["input"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"Conv", "Relu", "Add", "DepthToSpace"} <= ops and "pixel unshuffle" in m["architecture"]
    # continuing from the run's weights: recorded, and the network starts where the first run ended
    again = tmp_path / "again"
    train_deblock.main(["--iters", "1", "--batch", "2", "--patch", "32", "--limit-images", "2", "--segments", "1",
                        "--seg-len", "3", "--max-frames", "12", "--eval-every", "1", "--channels", "8", "--down", "2",
                        "--lr", "0", "--init", str(out / "model.pt"), "--out", str(again)])  # fmt: skip
    m2 = json.loads((again / "metrics.json").read_text())
    assert m2["init_run"]["args"]["iters"] == 2
    assert m2["psnr_classic5_jpeg_q10"]["output"] == pytest.approx(q10["output"], abs=1e-6)
    # the block-aligned U-Net (the shipped architecture) trains, exports and continues the same way
    unet = tmp_path / "unet"
    train_deblock.main(["--iters", "2", "--batch", "2", "--patch", "32", "--limit-images", "2", "--segments", "1",
                        "--seg-len", "3", "--max-frames", "12", "--eval-every", "2", "--arch", "unet",
                        "--widths", "4", "8", "8", "16", "--level-blocks", "1", "1", "1", "1", "--align", "16",
                        "--out", str(unet)])  # fmt: skip
    mu = json.loads((unet / "metrics.json").read_text())
    assert mu["architecture"].startswith("LumaUNet") and np.isfinite(mu["psnr_classic5_jpeg_q10"]["output"])
    ops = {n.op_type for n in onnx.load(str(unet / "model.onnx")).graph.node}
    assert {"Conv", "Relu", "DepthToSpace"} <= ops


def test_calibrate_deblock_recipe_smoke(tmp_path: Path) -> None:
    """QP ramp fitted on 2 frames per training clip at 2 CRFs, scored on one held-out encode."""
    from training import calibrate_deblock

    calibrate_deblock.main(["--frames", "2", "--fit-levels", "20,44", "--test-levels", "40", "--test-clips", "foreman",
                            "--out", str(tmp_path)])  # fmt: skip
    c = json.loads((tmp_path / "calibration.json").read_text())
    q0, q1 = c["ramp"]
    assert 0 <= q0 < q1 and c["fit_frames"] == 2 * 2 * 4 and c["codec"] == "h264"
    (row,) = c["held_out"]
    assert row["clip"] == "foreman" and 35 < row["mean_qp"] < 51 and 0 <= row["strength"] <= 1
    assert row["gain_auto"] > 0  # the ramp never makes it worse than the input at a heavy encode
    calibrate_deblock.main(["--codec", "mpeg2", "--frames", "2", "--fit-levels", "2,31", "--test-levels", "31",
                            "--test-clips", "foreman", "--out", str(tmp_path / "m")])  # fmt: skip
    c = json.loads((tmp_path / "m/calibration.json").read_text())
    assert c["codec"] == "mpeg2" and c["held_out"][0]["mean_qp"] == pytest.approx(62.0)


def test_deblock_batches_compress_images_afresh() -> None:
    """Image patches are JPEG-compressed per sample (different qualities: different errors), video
    patches come from their pre-encoded pairs, cut on the codec's grid when ``align`` asks."""
    from training.train_deblock import sample_batch

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    img = ((np.sin(xx / 3.0) + np.cos(yy / 5.0)) * 60 + 128).astype(np.uint8)
    x, y = sample_batch([img], [], 32, 64, rng, 0.0)
    assert x.shape == y.shape == (32, 1, 64, 64)
    errors = {round(float((x[i] - y[i]).abs().mean()), 5) for i in range(32)}
    assert len(errors) > 8 and min(errors) > 0  # always compressed, at many qualities
    deg = np.full_like(img, 7)
    x, y = sample_batch([img], [(img, deg)], 8, 32, rng, 1.0)
    assert torch.all(x == 7 / 255.0) and not torch.all(y == x)
    # crops start at multiples of 16: a frame whose value is its block row/column index gives patches
    # whose top-left 16x16 is one value (flips and transposes keep whole blocks: 32 = 2 blocks)
    blocks = (np.add.outer(np.arange(80) // 16 * 10, np.arange(96) // 16)).astype(np.uint8)
    x, _ = sample_batch([], [(blocks, blocks)], 16, 32, rng, 1.0, align=16)
    assert all(len(torch.unique(x[i, 0, :16, :16])) == 1 for i in range(16))
    x, _ = sample_batch([], [(blocks, blocks)], 16, 32, rng, 1.0)
    assert not all(len(torch.unique(x[i, 0, :16, :16])) == 1 for i in range(16))


def test_train_denoise_recipe_smoke(tmp_path: Path) -> None:
    """Clean stills and video frames, fresh blind noise per patch, 2 iterations, export, held-out evaluation."""
    from training import train_denoise

    out = tmp_path / "run"
    train_denoise.main(["--iters", "2", "--batch", "2", "--patch", "32", "--limit-images", "2", "--video-every", "100",
                        "--max-frames", "20", "--eval-every", "2", "--out", str(out)])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "denoise" and m["training_images"] == 2 + 4  # 2 stills + frame 0 of each of 4 clips
    g25 = m["psnr_classic5_gaussian_25"]
    assert abs(g25["input"] - 20.26) < 0.05, "seeded sigma-25 noise on classic5: the same input every run"
    assert g25["best_blur"] > g25["input"] + 5 and np.isfinite(g25["output"])
    assert m["psnr_classic5_gaussian_50"]["input"] < m["psnr_classic5_gaussian_15"]["input"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"Conv", "Relu", "Add"} <= ops


def test_train_joint_recipe_smoke(tmp_path: Path) -> None:
    """Noisy + JPEG stills and real H.264/HEVC encodes of x2-downscaled video, 2 iterations, export, evaluation."""
    from training import train_joint

    out = tmp_path / "run"
    train_joint.main(["--iters", "2", "--batch", "2", "--patch", "24", "--limit-images", "2", "--segments", "1",
                      "--seg-len", "3", "--max-frames", "12", "--eval-every", "2", "--out", str(out)])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "restore_joint_x2" and m["training_pairs"]["video_frames"] == 12
    cases = m["psnr_y"]
    assert set(cases) == {
        "Set5 x2 sigma=10 + JPEG q=40",
        "Set5 x2 sigma=20 + JPEG q=30",
        "cars x2 sigma=5 + H.264 CRF 35",
    }
    assert cases["Set5 x2 sigma=20 + JPEG q=30"]["bicubic"] < cases["Set5 x2 sigma=10 + JPEG q=40"]["bicubic"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"Conv", "PRelu", "DepthToSpace"} <= ops and "Resize" not in ops  # bicubic skip as a sub-pixel conv
    # Continuing with more body convolutions deepens the run without changing it: at learning rate 0
    # the deeper network scores exactly as the shallower one (Set5 cases; the cars encode is not bit-exact).
    deep = tmp_path / "deep"
    train_joint.main(["--iters", "1", "--lr", "0", "--batch", "2", "--patch", "24", "--limit-images", "2",
                      "--segments", "1", "--seg-len", "3", "--max-frames", "12", "--eval-every", "1", "--blocks", "7",
                      "--init", str(out / "model.pt"), "--out", str(deep)])  # fmt: skip
    d = json.loads((deep / "metrics.json").read_text())
    assert d["params"] == m["params"] + 48 * 48 * 9 + 48 + 48  # one more conv + PReLU
    for name in ("Set5 x2 sigma=10 + JPEG q=40", "Set5 x2 sigma=20 + JPEG q=30"):
        assert d["psnr_y"][name]["model"] == cases[name]["model"]
    # Continuing with LeakyReLU keeps the convolutions (the PReLU slopes are dropped), and ONNX
    # Runtime fuses that activation into the convolutions: no LeakyRelu kernel runs on its own.
    fast = tmp_path / "lrelu"
    train_joint.main(["--iters", "1", "--lr", "0", "--batch", "2", "--patch", "24", "--limit-images", "2",
                      "--segments", "1", "--seg-len", "3", "--max-frames", "12", "--eval-every", "1", "--act", "lrelu",
                      "--init", str(out / "model.pt"), "--out", str(fast)])  # fmt: skip
    f = json.loads((fast / "metrics.json").read_text())
    assert f["params"] == m["params"] - 7 * 48 and "lrelu" in f["architecture"]
    ops = {n.op_type for n in onnx.load(str(fast / "model.onnx")).graph.node}
    assert "LeakyRelu" in ops and "PRelu" not in ops
    assert isinstance(lumasr_from_onnx(fast / "model.onnx").body[1], torch.nn.LeakyReLU)
    from benchmarks.profile_ops import op_times

    assert "LeakyRelu" not in op_times(fast / "model.onnx", (1, 1, 24, 32), threads=1, runs=1)
    assert "PRelu" in op_times(out / "model.onnx", (1, 1, 24, 32), threads=1, runs=1)
    # the block-aligned U-Net variant: starts as bicubic, trains, exports without a Resize
    unet = tmp_path / "unet"
    train_joint.main(["--iters", "1", "--lr", "0", "--batch", "2", "--patch", "32", "--limit-images", "2",
                      "--segments", "1", "--seg-len", "3", "--max-frames", "12", "--eval-every", "1", "--arch", "unet",
                      "--widths", "4", "8", "8", "16", "--level-blocks", "1", "1", "1", "1", "--align", "16",
                      "--out", str(unet)])  # fmt: skip
    u = json.loads((unet / "metrics.json").read_text())
    assert u["architecture"].startswith("LumaUNet x2")
    for name in ("Set5 x2 sigma=10 + JPEG q=40", "Set5 x2 sigma=20 + JPEG q=30"):  # untrained: torch's bicubic
        assert abs(u["psnr_y"][name]["model"] - u["psnr_y"][name]["bicubic"]) < 0.5  # (the baseline is PIL's)
    ops = {n.op_type for n in onnx.load(str(unet / "model.onnx")).graph.node}
    assert "DepthToSpace" in ops and "Resize" not in ops


def test_deepened_is_the_same_function() -> None:
    """Dirac convolutions and unit PReLU slopes in front of the last layer: same output, more layers."""
    from training.nets import LumaSR, body_blocks, deepened

    torch.manual_seed(0)
    net = LumaSR(2, 8, 2, "prelu", frames=3)
    for p in net.parameters():  # a trained-looking network: random everywhere, negative values reach the new layers
        torch.nn.init.normal_(p, 0.0, 0.3)
    deep = deepened(net, 5)
    assert body_blocks(deep.state_dict()) == 5 and body_blocks(net.state_dict()) == 2
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        assert torch.allclose(deep(x), net(x), atol=1e-6)
    with pytest.raises(ValueError, match="cannot deepen"):
        deepened(net, 1)
    with pytest.raises(ValueError, match="PReLU"):
        deepened(LumaSR(2, 8, 2, "relu"), 3)


def test_train_vsr_recipe_smoke(tmp_path: Path) -> None:
    """Warm start from the shipped sr_x4 (iteration 0 = sr_x4 exactly), 2 iterations on 5-frame windows,
    a 5-frame ONNX export that package_model accepts with --frames 5."""
    from training import train_vsr

    out = tmp_path / "run"
    with pytest.raises(ValueError, match="same layout and activation"):  # sr_x4 v2 has LeakyReLU, not PReLU
        train_vsr.main(["--iters", "1", "--max-frames", "20", "--init", str(REPO / "sr_x4/2/model.onnx"),
                        "--out", str(tmp_path / "prelu")])  # fmt: skip
    train_vsr.main(["--iters", "2", "--batch", "2", "--max-frames", "20", "--eval-every", "2", "--act", "lrelu",
                    "--init", str(REPO / "sr_x4/2/model.onnx"), "--out", str(out)])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "vsr_x4" and m["training_windows"] > 0
    cars = m["psnr_y_cars_x4"]
    assert cars["init"] > cars["bicubic"] + 2.0  # the warm start is sr_x4 itself
    repo = tmp_path / "repo"
    package_model.main(["--onnx", str(out / "model.onnx"), "--name", "vsr_x4", "--scale", "4", "--channels", "1",
                        "--frames", "5", "--repository", str(repo)])  # fmt: skip
    info = read_model_info(repo / "vsr_x4/1/model.onnx", "vsr_x4", "1", 1)
    assert (info.scale, info.channels, info.frames) == (4, 1, 5)
    # a multi-frame model.onnx continues as is (iteration 0 = the exported network), the path of version 2
    train_vsr.main(["--iters", "1", "--batch", "2", "--max-frames", "20", "--eval-every", "1", "--act", "lrelu",
                    "--init", str(out / "model.onnx"), "--out", str(tmp_path / "more")])  # fmt: skip
    more = json.loads((tmp_path / "more" / "metrics.json").read_text())["psnr_y_cars_x4"]
    assert abs(more["init"] - cars["model"]) < 1e-3


def test_reexport_keeps_function_and_metadata(tmp_path: Path) -> None:
    """A committed model rebuilt from its ONNX weights and exported again computes the same output,
    keeps its restora.* metadata, and is refused (file untouched) when the check fails."""
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    path.write_bytes((REPO / "sr_x4/2/model.onnx").read_bytes())
    x = np.random.default_rng(3).random((1, 1, 23, 31), dtype=np.float32)

    def run(p: Path) -> np.ndarray:
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        return np.asarray(sess.run(None, {"LR_Y": x})[0])

    before = run(path)
    with pytest.raises(ValueError, match="left unchanged"):
        reexport.reexport(path, tol=-1.0)  # no difference can pass a negative tolerance
    assert np.array_equal(run(path), before) and sorted(tmp_path.iterdir()) == [path]
    assert reexport.reexport(path) < 1e-5
    assert np.abs(run(path) - before).max() < 1e-5
    info = read_model_info(path, "sr_x4", "1", 1)
    assert (info.scale, info.channels, info.input_name, info.output_name) == (4, 1, "LR_Y", "SR_Y")


def test_profile_ops_sums_kernel_time_per_op_type() -> None:
    from benchmarks.profile_ops import op_times

    times = op_times(REPO / "sr_x4/2/model.onnx", (1, 1, 24, 32), threads=1, runs=2)
    assert {"Conv", "DepthToSpace"} <= set(times) and "Resize" not in times
    assert all(ms >= 0 for ms in times.values()) and sum(times.values()) > 0


def test_run_record_keeps_every_stage_it_continued(tmp_path: Path) -> None:
    """A run started from another run's ``model.pt`` records that run (and what it continued) in
    ``init_run``; the model README lists every stage; a start from a bare file records nothing."""
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    s1.mkdir(), s2.mkdir()
    (s1 / "metrics.json").write_text(json.dumps({"model": "m", "args": {"iters": 8}, "train_seconds": 3.0}))
    (s2 / "metrics.json").write_text(json.dumps({
        "model": "m", "args": {"iters": 5, "init": str(s1 / "model.pt")}, "train_seconds": 2.0, "set5": {"mean": 1.0},
        "init_run": {"model": "m", "args": {"iters": 8}, "train_seconds": 3.0},
    }))  # fmt: skip
    net = torch.nn.Conv2d(1, 1, 3)
    rec = loop.run_record(argparse.Namespace(threads=1, init=s2 / "model.pt"), net)
    assert rec["params"] == 10
    assert rec["init_run"]["args"]["iters"] == 5 and rec["init_run"]["init_run"]["train_seconds"] == 3.0
    assert "set5" not in rec["init_run"]
    sig = package_model.Signature("LR_Y", "SR_Y", 1)
    text = package_model.render_readme("m", sig, 2, 1, 0, 8, "d", {**rec, "train_seconds": 1.0})
    assert text.index("(m, 2.00 s)") < text.index("(m, 3.00 s)") and text.count("iters = ") == 2
    assert "init_run" not in loop.run_record(argparse.Namespace(threads=1, init=tmp_path / "x.onnx"), net)
