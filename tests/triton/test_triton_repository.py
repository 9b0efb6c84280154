"""The model repository: every folder in ``triton_models/`` is complete and its configs match its graph.

No server needed. Also checks that ``training/package_model.py`` is deterministic and refuses
models that do not match what it is told.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2 as mc

from restora.inference import LocalOnnx, model_path, read_model_info
from training.package_model import DEFAULT_REPOSITORY, MODEL_PY, package, packaged_models

MODELS = packaged_models()
FILES = ("config.pbtxt", "configs/cpu.pbtxt", "README.md")  # and <version>/model.onnx, <version>/model.py


def parse_config(path: Path) -> mc.ModelConfig:
    """Parse a ``config.pbtxt`` as Triton's own ``ModelConfig`` protobuf (fails on any typo)."""
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_repository_has_models() -> None:
    assert MODELS, f"no model folders in {DEFAULT_REPOSITORY}"


@pytest.mark.parametrize("name", MODELS)
def test_model_folder_complete(name: str) -> None:
    folder = DEFAULT_REPOSITORY / name
    missing = [f for f in FILES if not (folder / f).is_file()]
    assert not missing, f"{folder} lacks {missing}"
    _, version = model_path(DEFAULT_REPOSITORY, name)  # the highest numeric version folder, with its model.onnx
    assert (folder / version / "model.py").read_text() == MODEL_PY, "adapter is stale: re-run training.package_model"
    readme = (folder / "README.md").read_text()
    assert readme.startswith(f"# {name}\n")


@pytest.mark.parametrize("name", MODELS)
def test_no_resize_in_graph(name: str) -> None:
    """Upscaling models do their bicubic skip as a low-resolution sub-pixel convolution: a ``Resize``
    at output resolution took 56 % of sr_x4's CPU time and 85 % of sr_x4_int8's (re-export with
    ``python -m training.reexport`` if a model still has one)."""
    path, _ = model_path(DEFAULT_REPOSITORY, name)
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert "Resize" not in ops


@pytest.mark.parametrize("name", MODELS)
def test_configs_match_graph(name: str) -> None:
    folder = DEFAULT_REPOSITORY / name
    path, version = model_path(DEFAULT_REPOSITORY, name)
    info = read_model_info(path, name, version, max_batch=8)
    graph = onnx.load(str(path), load_external_data=False).graph
    channels = graph.input[0].type.tensor_type.shape.dim[1]
    assert not channels.HasField("dim_value") or channels.dim_value == info.in_channels
    prod, cpu = parse_config(folder / "config.pbtxt"), parse_config(folder / "configs" / "cpu.pbtxt")
    assert (prod.backend, cpu.backend) == ("onnxruntime", "python")
    assert [g.kind for g in prod.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    assert [g.kind for g in cpu.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    for cfg in (prod, cpu):
        assert cfg.name == name
        assert cfg.max_batch_size >= 1 and cfg.max_batch_size == prod.max_batch_size
        assert cfg.HasField("dynamic_batching")
        assert [(t.name, t.data_type, list(t.dims)) for t in cfg.input] == [
            (info.input_name, mc.TYPE_FP32, [info.in_channels, -1, -1])  # frames x channels
        ]
        assert [(t.name, t.data_type, list(t.dims)) for t in cfg.output] == [
            (info.output_name, mc.TYPE_FP32, [info.channels, -1, -1])
        ]
        assert info.input_name.isupper() and info.output_name.isupper()  # UPPER_SNAKE
        params = {k: v.string_value for k, v in cfg.parameters.items()}
        assert int(params["restora.scale"]) == info.scale
        assert int(params["restora.channels"]) == info.channels
        assert int(params["restora.max_tile"]) == info.max_tile
        assert int(params.get("restora.frames", "1")) == info.frames


def _tiny_sr_onnx(path: Path, channels: int = 3, scale: int = 2) -> None:
    """A 1-conv + DepthToSpace model: ``(N, channels, h, w)`` -> ``(N, channels, h*scale, w*scale)``."""
    rng = np.random.default_rng(0)
    out_c = channels * scale * scale
    weight = helper.make_tensor(
        "W", TensorProto.FLOAT, [out_c, channels, 3, 3], rng.normal(0, 0.1, out_c * channels * 9)
    )
    dims_in = ["batch", channels, "h", "w"]
    dims_out = ["batch", channels, "H", "W"]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["LR_RGB", "W"], ["F"], pads=[1, 1, 1, 1]),
            helper.make_node("DepthToSpace", ["F"], ["SR_RGB"], blocksize=scale, mode="CRD"),
        ],
        "tiny",
        [helper.make_tensor_value_info("LR_RGB", TensorProto.FLOAT, dims_in)],
        [helper.make_tensor_value_info("SR_RGB", TensorProto.FLOAT, dims_out)],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_package_model_is_deterministic_and_usable(tmp_path: Path) -> None:
    src = tmp_path / "tiny.onnx"
    _tiny_sr_onnx(src)
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"architecture": "tiny", "params": 324, "set5_psnr_y": {"a": 30.5, "mean": 30.5}}')
    kwargs = {"max_tile": 64, "metrics_json": metrics}
    a = package(src, "tiny_x2", 2, 3, repository=tmp_path / "a", **kwargs)  # type: ignore[arg-type]
    b = package(src, "tiny_x2", 2, 3, repository=tmp_path / "b", **kwargs)  # type: ignore[arg-type]
    first = _tree(a)
    assert first == _tree(b)
    package(src, "tiny_x2", 2, 3, repository=tmp_path / "a", **kwargs)  # type: ignore[arg-type]
    assert _tree(a) == first  # re-packaging in place changes nothing
    assert set(first) == {*FILES, "1/model.onnx", "1/model.py"}  # version 1 by default
    assert "30.50" in first["README.md"].decode()

    backend = LocalOnnx(tmp_path / "a")
    info = backend.model_info("tiny_x2")
    assert (info.scale, info.channels, info.max_tile, info.input_name, info.output_name) == (
        2, 3, 64, "LR_RGB", "SR_RGB",
    )  # fmt: skip
    y = backend.infer("tiny_x2", np.zeros((2, 3, 5, 7), dtype=np.float32))
    assert y.shape == (2, 3, 10, 14)


@pytest.mark.parametrize(
    ("scale", "channels", "match"),
    [pytest.param(4, 3, "check --scale", id="wrong-scale"), pytest.param(2, 1, "3 channels", id="wrong-channels")],
)
def test_package_model_refuses_mismatch(tmp_path: Path, scale: int, channels: int, match: str) -> None:
    src = tmp_path / "tiny.onnx"
    _tiny_sr_onnx(src)
    with pytest.raises(ValueError, match=match):
        package(src, "tiny", scale, channels, repository=tmp_path / "repo")
