"""Training recipes stay alive: each runs a few iterations on tiny data and exports a usable ONNX model.

The committed weights are what ships; these tests only prove the recipes still run end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from restora.inference import read_model_info
from training import package_model, quantize, train_sr

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1] / "triton_models"


def test_train_sr_recipe_smoke(tmp_path: Path) -> None:
    """ReLU twin warm-started from the shipped sr_x2 ONNX weights: 3 iterations, export, metrics."""
    out = tmp_path / "run"
    train_sr.main(["--scale", "2", "--iters", "3", "--batch", "2", "--limit-images", "2", "--eval-every", "3",
                   "--act", "relu", "--init", str(REPO / "sr_x2/1/model.onnx"), "--name", "sr_x2_relu",
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


def test_train_deblock_recipe_smoke(tmp_path: Path) -> None:
    """JPEG stills and real H.264/HEVC video re-encodes as data, 2 iterations, export, held-out evaluation."""
    from training import train_deblock

    out = tmp_path / "run"
    train_deblock.main(["--iters", "2", "--batch", "2", "--patch", "32", "--limit-images", "2", "--segments", "1",
                        "--seg-len", "3", "--max-frames", "12", "--eval-every", "2", "--out", str(out)])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    assert m["training_pairs"] == {"images_jpeg": 2, "video_frames": 12}
    q10 = m["psnr_classic5_jpeg_q10"]
    assert abs(q10["input"] - 27.82) < 0.05, "classic5 q=10 JPEG baseline as published (ARCNN/DnCNN tables)"
    assert np.isfinite(q10["output"]) and q10["output"] > 20.0  # 2 iterations: any sane image, not a number check
    for crf in (35, 40, 45):
        assert m[f"psnr_cars_h264_crf{crf}"]["input"] < 40
    assert m["psnr_cars_h264_crf35"]["input"] > m["psnr_cars_h264_crf45"]["input"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"Conv", "Relu", "Add"} <= ops
