"""ONNX export shared by the recipes: one luma input, one output, dynamic batch/height/width."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def export_onnx(net: nn.Module, path: Path, input_name: str, output_name: str, in_channels: int = 1) -> None:
    """Export ``net`` (``(N, in_channels, h, w)`` float32 in, ``(N, 1, h*s, w*s)`` out) with opset 17.

    The TorchScript exporter (``dynamo=False``) is chosen on purpose: no onnxscript dependency and a
    plain graph whose initializers keep their PyTorch names (``train_sr --init`` reads them back).
    """
    net.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.rand(1, in_channels, 32, 32),),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={
                input_name: {0: "batch", 2: "height", 3: "width"},
                output_name: {0: "batch", 2: "out_height", 3: "out_width"},
            },
            opset_version=17,
            dynamo=False,
        )
