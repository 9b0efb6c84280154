"""ONNX export shared by the recipes: one luma input, one output, dynamic batch/height/width."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from training.nets import LumaSR


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


def onnx_weights(path: Path) -> dict[str, torch.Tensor]:
    """The named weights of an ONNX model exported by :func:`export_onnx`, under their PyTorch
    state-dict names. The exporter keeps convolution names (``body.0.weight``) but calls PReLU
    slopes ``onnx::PRelu_N`` with shape ``(C, 1, 1)``; those are renamed after the module of their
    node (``/body/body.1/PRelu`` -> ``body.1.weight``) and flattened to ``(C,)``."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "PRelu" and node.input[1] in weights:
            module = node.output[0].split("/")[-2]  # "/body/body.1/PRelu_output_0" -> "body.1"
            weights[f"{module}.weight"] = weights.pop(node.input[1]).reshape(-1)
    return weights


def lumasr_from_onnx(path: Path) -> LumaSR:
    """Rebuild the :class:`~training.nets.LumaSR` an ONNX file was exported from, weights included:
    scale and frames from its ``restora.*`` metadata (or, unpackaged, from the last convolution and
    the first one), channels and depth from its convolutions, the activation from its nodes."""
    import onnx

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    w = onnx_weights(path)
    convs = sorted(int(k.split(".")[1]) for k, v in w.items() if k.startswith("body.") and v.ndim == 4)
    first, last = w[f"body.{convs[0]}.weight"], w[f"body.{convs[-1]}.weight"]
    scale = int(meta.get("restora.scale", round(last.shape[0] ** 0.5)))
    ops = {n.op_type for n in model.graph.node}
    act = "prelu" if "PRelu" in ops else "lrelu" if "LeakyRelu" in ops else "relu"
    net = LumaSR(scale, first.shape[0], len(convs) - 2, act, frames=int(meta.get("restora.frames", first.shape[1])))
    net.load_state_dict(w, strict=True)
    return net.eval()


def copy_metadata(src: Path, dst: Path) -> None:
    """Carry the ``restora.*`` metadata (scale, channels, training record) of ``src`` over to
    ``dst`` (a quantized or re-exported model of the same network); keys ``dst`` has are kept."""
    import onnx

    m_src, m_dst = onnx.load(str(src)), onnx.load(str(dst))
    have = {p.key for p in m_dst.metadata_props}
    for prop in m_src.metadata_props:
        if prop.key not in have:
            m_dst.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(m_dst, str(dst))
