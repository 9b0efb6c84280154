"""Recipe: INT8 variant of an SR model by ONNX Runtime static quantization, measured against FP32.

Calibration data: luma crops of the training images (``../shared/data/images/train``: T91,
General100, BSD200), bicubic-downscaled by the model's scale as at training time; never Set5.
Quantization: QDQ format, weights int8 per output channel, activations uint8, ``Conv``, ``Relu``
and ``Clip`` (a dequantized INT8 graph carries its ReLUs as ``Clip``, :func:`dequantize_qdq`; left
float, each stood between a ``DequantizeLinear`` and a ``QuantizeLinear`` that ONNX Runtime ran as
passes of their own: 12-14 % of ``sr_x2_int8`` version 2's time at 320x240, quantized without
``Clip``, in ``benchmarks.profile_ops``; README "INT8 version 3"), but the fixed bicubic-skip
convolution (:func:`float_nodes`; it, the residual ``Add`` and the pixel shuffle stay float),
calibration by ``--method``. Weights use 7 of their 8 bits (``--reduce-range``, the default): on
x86 CPUs without VNNI (AVX2 only, as AMD EPYC before Zen 4) ONNX Runtime multiplies uint8
activations by int8 weights with ``vpmaddubsw``, whose 16-bit pair sums saturate at full range;
there the first INT8 models lost 0.21 / 0.19 dB on Set5 (x2 / x4) against 0.07 / 0.05 on the CPU
they were measured on. ``--float-ends`` leaves the body's first and/or last convolution in float
(their GEMMs can be too narrow for the integer kernels; measured, not shipped: README "INT8 version 3").

``--from-int8 PATH`` re-quantizes a shipped INT8 model: its QDQ weights are dequantized back into
a float graph (:func:`dequantize_qdq`: the FP32 network it was made from, each weight rounded to
its int8 step) and that graph is quantized again.

    python -m training.quantize --model sr_x2 --out training/runs/sr_x2_int8

writes ``model.onnx`` and ``metrics.json`` (Set5 PSNR-Y and CPU latency of the shipped FP32
``--model`` and of the INT8 model, measured in the same run) into ``--out``;
``training.package_model`` turns it into ``triton_models/sr_x2_int8``. ``--src`` quantizes another
FP32 network of the same task instead, such as the ReLU twin of ``sr_x2`` (``train_sr --act relu``),
whose convolutions ONNX Runtime fuses with their activation into int8 kernels.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from restora.color import rgb_to_y
from restora.evaluation import evaluate_sr_set5
from restora.inference import LocalOnnx, model_path
from training.degrade import downscale
from training.export import copy_metadata

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1] / "triton_models"
TRAIN_SETS = ("T91", "General100", "BSD200")


class LumaCrops(CalibrationDataReader):
    """``n`` random ``(1, 1, crop, crop)`` float32 LR luma crops in [0, 1] from the training images."""

    def __init__(self, input_name: str, scale: int, n: int, crop: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        files = sorted(p for s in TRAIN_SETS for p in (DATA / "images/train" / s).glob("*.png"))
        self.items: list[dict[str, np.ndarray]] = []
        for path in rng.permutation(np.array(files, dtype=object))[: n * 2]:
            img = np.asarray(Image.open(path).convert("RGB"))
            h, w = (img.shape[0] // scale) * scale, (img.shape[1] // scale) * scale
            if h // scale < crop or w // scale < crop:
                continue
            lr = rgb_to_y(downscale(np.ascontiguousarray(img[:h, :w]), scale))
            y0, x0 = int(rng.integers(0, lr.shape[0] - crop + 1)), int(rng.integers(0, lr.shape[1] - crop + 1))
            self.items.append({input_name: lr[None, None, y0 : y0 + crop, x0 : x0 + crop].astype(np.float32)})
            if len(self.items) == n:
                break
        self._it = iter(self.items)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def dequantize_qdq(src: Path, dst: Path) -> None:
    """Write ``dst``: the float graph of the QDQ model ``src``. Every ``DequantizeLinear`` of an
    initializer (weights, biases) becomes that initializer in float, ``(q - zero_point) * scale``
    (per channel along its ``axis``); every ``QuantizeLinear -> DequantizeLinear`` pair on an
    activation becomes the clamp it applied below (``Clip`` at ``-zero_point * scale``: the ReLU that
    the quantizer folded into a uint8 zero point of 0). The result computes the quantized model's
    network with float activations and its weights on their int8 grid."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: (k, n) for k, n in enumerate(g.node) for o in n.output}
    drop: set[int] = set()
    new_inits = []
    clips = []
    rename: dict[str, str] = {}
    taken = {t for n in g.node for t in (*n.input, *n.output)} | set(inits)

    def fresh(name: str) -> str:  # a tensor name the graph does not use (a re-quantized graph has "_clipped" ones)
        k = 0
        while f"{name}{k or ''}" in taken:
            k += 1
        taken.add(f"{name}{k or ''}")
        return f"{name}{k or ''}"

    for k, n in enumerate(g.node):
        if n.op_type != "DequantizeLinear":
            continue
        if n.input[0] in inits:
            q = inits[n.input[0]].astype(np.float64)
            scale = inits[n.input[1]].astype(np.float64)
            zp = inits[n.input[2]].astype(np.float64) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale)
            if scale.ndim == 1 and q.ndim > 1:
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1) % q.ndim
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            new_inits.append(numpy_helper.from_array(((q - zp) * scale).astype(np.float32), n.output[0]))
            drop.add(k)
        elif n.input[0] in producer and (p := producer[n.input[0]][1]).op_type == "QuantizeLinear":
            # the pair clamps below at the quantized zero: the quantizer dropped the ReLU it stood for
            low = -float(inits[p.input[2]]) * float(inits[p.input[1]]) if len(p.input) > 2 else 0.0
            bound, clipped = fresh(f"{p.input[0]}_low"), fresh(f"{p.input[0]}_clipped")
            new_inits.append(numpy_helper.from_array(np.array(low, dtype=np.float32), bound))
            clips.append(helper.make_node("Clip", [p.input[0], bound, ""], [clipped]))
            rename[n.output[0]] = clipped
            drop.update({k, producer[n.input[0]][0]})
    kept = [n for k, n in enumerate(g.node) if k not in drop]
    for n in kept:
        n.input[:] = [rename.get(i, i) for i in n.input]
    if any(o.name in rename for o in g.output):
        raise ValueError(f"{src}: a graph output is a quantized activation")
    used = {name for n in kept + clips for name in n.input}
    del g.node[:]
    g.node.extend(clips + kept)
    old = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(old + [i for i in new_inits if i.name in used])
    sorted_model = onnx.helper.make_model(g, opset_imports=model.opset_import)
    sorted_model.metadata_props.extend(model.metadata_props)
    onnx.save(_toposort(sorted_model), str(dst))


def _toposort(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its nodes in an order where each runs after the nodes whose outputs it reads."""
    g = model.graph
    ready = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending, ordered = list(g.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError("graph has a cycle or a missing input")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)
    return model


def float_nodes(path: Path, skip: bool = True, ends: str = "none") -> list[str]:
    """Nodes left in float.

    ``skip``: the fixed bicubic-skip convolution (``LumaSR.bicubic``). Its output is the bulk of every
    output pixel, and 8-bit activations there cost 0.08 (x2) to 0.13 dB (x4) on Set5
    (``--no-float-skip``) while it is a small share of the time.
    ``ends``: ``first``, ``last``, ``both`` or ``none`` of the body's convolutions (``--float-ends``),
    whose GEMMs can be too narrow for the integer kernels: the first reads 1 input plane (K = 9), the
    last of ``sr_x2`` writes 4 output planes (``sr_x4``'s 16 are wide enough). Measured on this AVX2
    CPU: both slower in INT8 than in FP32 (README "INT8 version 3").
    """
    nodes = onnx.load(str(path)).graph.node
    names = [n.name for n in nodes if skip and n.name.startswith("/bicubic/")]
    body = [n.name for n in nodes if n.op_type == "Conv" and n.name.startswith("/body/")]
    if body and ends in ("first", "both"):
        names.append(body[0])
    if body and ends in ("last", "both"):
        names.append(body[-1])
    return names


def latency_ms(path: Path, shape: tuple[int, int, int, int], threads: int, repeats: int) -> float:
    """Median latency of one ``shape`` inference on the CPU execution provider."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    sess.run(None, {name: x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def set5_psnr(onnx_file: Path, name: str, scale: int, tmp_repo: Path) -> float:
    """Set5 PSNR-Y of ``onnx_file`` run as model ``name`` through the SR stage."""
    d = tmp_repo / name / "1"
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.onnx").write_bytes(onnx_file.read_bytes())
    return float(evaluate_sr_set5(LocalOnnx(tmp_repo, threads=0), scale, DATA, model=name)["mean_model"])


def add_source_record(metrics: dict[str, Any], source_metrics: Path, args: dict[str, Any]) -> None:
    """Record how the FP32 network that was quantized (e.g. the ReLU twin) was trained, if known."""
    metrics["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()}
    if not source_metrics.exists():
        return
    src = json.loads(source_metrics.read_text())
    metrics["architecture"] = f"{src.get('architecture', '?')}, INT8 (ONNX Runtime static quantization, QDQ)"
    for key in ("params", "train_seconds", "hardware"):
        if key in src:
            metrics[key] = src[key]
    metrics["source_training_args"] = src.get("args", {})
    metrics["set5_psnr_y"]["source_fp32"] = src["set5_psnr_y"]["mean"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.quantize")
    p.add_argument("--model", default="sr_x2", help="FP32 model in triton_models/ (sr_x2 or sr_x4)")
    p.add_argument("--src", type=Path, default=None, help="quantize this FP32 ONNX file instead (its scale: --model's)")
    p.add_argument("--name", default=None, help="name of the INT8 model (default <model>_int8)")
    p.add_argument("--sizes", default="320x240,1280x720", help="input sizes WxH for the latency table")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--calib", type=int, default=64, help="calibration crops")
    p.add_argument("--crop", type=int, default=64, help="calibration crop edge (LR pixels)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="percentile")
    p.add_argument("--format", choices=("qdq", "qoperator"), default="qdq", help="quantized graph format")
    p.add_argument("--ops", default="Conv,Relu,Clip", help="op types to quantize ('all': ORT's set)")
    p.add_argument("--float-skip", action=argparse.BooleanOptionalAction, default=True,
                   help="leave the bicubic-skip convolution in float (--no-float-skip quantizes it too)")  # fmt: skip
    p.add_argument("--float-ends", choices=("none", "first", "last", "both"), default="none",
                   help="leave the body's first and/or last convolution in float (see float_nodes)")  # fmt: skip
    p.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=True,
                   help="7-bit weights: no saturation on CPUs without VNNI (see the module docstring)")  # fmt: skip
    p.add_argument("--from-int8", type=Path, default=None, help="re-quantize this INT8 QDQ model (dequantized first)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for the latency measurement")
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args(argv)
    scale = int(a.model.rsplit("x", 1)[1])
    fp32, _ = model_path(REPO, a.model)  # the shipped FP32 model (its latest version)
    src = a.src or fp32
    name = a.name or f"{a.model}_int8"
    a.out.mkdir(parents=True, exist_ok=True)
    if a.from_int8:
        src = a.out / "dequantized.onnx"
        dequantize_qdq(a.from_int8, src)
    pre = a.out / "preprocessed.onnx"
    out = a.out / "model.onnx"
    t0 = time.time()
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    input_name = ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[a.method]  # fmt: skip
    quantize_static(
        str(pre),
        str(out),
        LumaCrops(input_name, scale, a.calib, a.crop),
        quant_format=QuantFormat.QDQ if a.format == "qdq" else QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=None if a.ops == "all" else a.ops.split(","),
        nodes_to_exclude=float_nodes(pre, skip=a.float_skip, ends=a.float_ends),
        calibrate_method=method,
        reduce_range=a.reduce_range,
    )
    pre.unlink()
    copy_metadata(fp32, out)  # the packaged model's scale/channels/record
    quant_s = time.time() - t0
    tmp_repo = a.out / "eval_repo"
    metrics: dict[str, Any] = {
        "model": name,
        "source_model": f"{a.from_int8}, dequantized" if a.from_int8 else str(a.src) if a.src else a.model,
        "calibration": {"crops": a.calib, "crop": a.crop, "method": a.method, "sets": list(TRAIN_SETS)},
        "quantization": {
            "format": a.format,
            "ops": a.ops,
            "activations": "uint8",
            "weights": "int8 per-channel" + (", 7-bit range" if a.reduce_range else ""),
        },
        "quantize_seconds": round(quant_s, 1),
        "set5_psnr_y": {
            "fp32": set5_psnr(fp32, a.model, scale, tmp_repo),
            "int8": set5_psnr(out, name, scale, tmp_repo),
            **({"source_fp32": set5_psnr(src, f"{name}_source", scale, tmp_repo)} if a.from_int8 else {}),
        },
        "latency_hardware": {"cpu": platform.processor() or platform.machine(), "threads": a.threads},
        "latency_ms": {},
    }
    if a.src:
        add_source_record(metrics, src.parent / "metrics.json", vars(a))
    if a.from_int8:  # the record of the network it re-quantizes, as its metadata says
        earlier = {p.key: p.value for p in onnx.load(str(a.from_int8), load_external_data=False).metadata_props}
        metrics["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
        metrics["requantized_from"] = earlier.get("restora.trained", "")
        metrics["architecture"] = earlier.get("restora.trained", "").split(";")[0] + (
            ", re-quantized with 7-bit weights" if a.reduce_range else ", re-quantized"
        )
    for label in a.sizes.split(","):
        w, h = (int(v) for v in label.split("x"))
        shape = (1, 1, h, w)
        fp = latency_ms(fp32, shape, a.threads, a.repeats)
        q = latency_ms(out, shape, a.threads, a.repeats)
        metrics["latency_ms"][label] = {"fp32": round(fp, 2), "int8": round(q, 2), "speedup": round(fp / q, 3)}
    d = metrics["set5_psnr_y"]
    d["loss_db"] = round(d["fp32"] - d["int8"], 4)
    shutil.rmtree(tmp_repo)
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
