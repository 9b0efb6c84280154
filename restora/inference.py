"""One inference interface, several backends.

:class:`InferenceBackend` is what stages call. :class:`LocalOnnx` (the embedded default) runs the
ONNX files of the Triton model repository in-process with ONNX Runtime; the Triton client backend
(``serving/triton_client.py``, outside this library because it imports tritonclient) serves the
same files from a Triton server. Both return identical results (an equivalence test checks it).

Model repository layout (Triton's): ``<repository>/<name>/<version>/model.onnx``. Every Restora
model maps an image batch ``(N, C, h, w)`` float32 in [0, 1] to ``(N, C, h*scale, w*scale)``
float32; its scale, channel count and tile limit are stored as ONNX metadata
(``restora.scale``, ``restora.channels``, ``restora.max_tile``; ``restora.grid`` for a model that
works on the codec's block grid, whose tiles must start at multiples of it). A multi-frame (video) model also
declares ``restora.frames`` = F: its input stacks F consecutive frames, ``(N, F*C, h, w)`` (oldest
first), and its output is the middle frame restored, ``(N, C, h*scale, w*scale)``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from restora import telemetry
from restora.errors import ModelError
from restora.tiling import run_tiled

F32 = npt.NDArray[np.float32]

# ONNX Runtime's worker threads spin-wait after a run by default. The next run of the same session
# profits, but anything else on the CPU competes with them, e.g. the next stage's session: on 2 cores
# denoise -> deblock -> sr_x2 on a 160x120 frame took 121-138 ms with spinning, 49 ms with it
# stopped at the end of each run, while one session's own back-to-back runs stayed as fast (sr_x2 at
# 320x240: 53-54 ms either way). Spinning *during* a run, between its operators, is kept.
# The Triton python-backend adapter (training/package_model.py) sets the same.
STOP_SPINNING = ("session.force_spinning_stop", "1")


@dataclass(frozen=True)
class ModelInfo:
    """What a caller needs to know about a served model."""

    name: str
    version: str
    input_name: str
    output_name: str
    scale: int
    channels: int
    max_tile: int  # largest input edge the model accepts in one piece; 0 = unlimited
    max_batch: int
    frames: int = 1  # temporal window of a video model: input channels = frames * channels
    grid: int = 1  # tiles must start at multiples of this (block-aligned models: 8)
    overlap: int = 0  # least tile overlap (input pixels) the network needs for seamless tiles; 0 = caller's

    @property
    def in_channels(self) -> int:
        """Input channel count: ``frames * channels``."""
        return self.frames * self.channels


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs Restora models. Implementations: :class:`LocalOnnx`, ``serving.triton_client.Triton``."""

    name: str

    def model_info(self, model: str) -> ModelInfo:
        """Metadata of ``model``; raises :class:`ModelError` if it is missing or malformed."""
        ...

    def infer(self, model: str, batch: F32) -> F32:
        """One request: ``(N, C, h, w)`` float32 in [0, 1] -> ``(N, C, h*s, w*s)`` float32."""
        ...

    def healthy(self) -> bool:
        """True when the backend can serve requests now."""
        ...

    def close(self) -> None:
        """Release sessions and connections."""
        ...


def model_path(repository: Path, name: str, version: str | None = None) -> tuple[Path, str]:
    """Locate ``<repository>/<name>/<version>/model.onnx`` (highest numeric version by default)."""
    folder = repository / name
    if not folder.is_dir():
        known = (
            sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").exists()) if repository.is_dir() else []
        )
        raise ModelError(f"model {name!r} not found in {repository} (known: {', '.join(known) or 'none'})")
    versions = sorted((p.name for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=int)
    if version is None:
        if not versions:
            raise ModelError(f"model {name!r} has no numeric version folder in {folder}")
        version = versions[-1]
    path = folder / version / "model.onnx"
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    return path, version


def read_model_info(path: Path, name: str, version: str, max_batch: int) -> ModelInfo:
    """Build :class:`ModelInfo` from an ONNX file's graph and ``restora.*`` metadata."""
    import onnx  # local import: only needed when a model is first opened

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ModelError(f"cannot read ONNX model {path}: {exc}") from exc
    meta = {p.key: p.value for p in m.metadata_props}
    if len(m.graph.input) != 1 or len(m.graph.output) != 1:
        raise ModelError(f"{path}: expected one input and one output")
    try:
        return ModelInfo(
            name=name,
            version=version,
            input_name=m.graph.input[0].name,
            output_name=m.graph.output[0].name,
            scale=int(meta["restora.scale"]),
            channels=int(meta["restora.channels"]),
            max_tile=int(meta.get("restora.max_tile", "0")),
            max_batch=max_batch,
            frames=int(meta.get("restora.frames", "1")),
            grid=int(meta.get("restora.grid", "1")),
            overlap=int(meta.get("restora.overlap", "0")),
        )
    except KeyError as exc:
        raise ModelError(f"{path}: missing metadata {exc}") from exc


class LocalOnnx:
    """In-process ONNX Runtime on the CPU (the embedded default).

    Args:
        repository: Triton-layout model repository holding ``<name>/<version>/model.onnx``.
        threads: intra-op threads; 0 lets ONNX Runtime use every core.
        max_batch: frames or tiles per call.
    """

    name = "onnxruntime"

    def __init__(self, repository: Path, threads: int = 0, max_batch: int = 8) -> None:
        self.repository = repository
        self.threads = threads
        self.max_batch = max_batch
        self._sessions: dict[str, tuple[object, ModelInfo]] = {}
        self._lock = threading.Lock()

    def _session(self, model: str) -> tuple[object, ModelInfo]:
        with self._lock:
            if model not in self._sessions:
                import onnxruntime as ort

                path, version = model_path(self.repository, model)
                info = read_model_info(path, model, version, self.max_batch)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
                opts.inter_op_num_threads = 1
                opts.add_session_config_entry(*STOP_SPINNING)
                sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                self._sessions[model] = (sess, info)
            return self._sessions[model]

    def model_info(self, model: str) -> ModelInfo:
        return self._session(model)[1]

    def infer(self, model: str, batch: F32) -> F32:
        sess, info = self._session(model)
        if batch.ndim != 4 or batch.shape[1] != info.in_channels:
            raise ModelError(f"{model}: expected (N, {info.in_channels}, H, W) input, got {batch.shape}")
        out = sess.run([info.output_name], {info.input_name: np.ascontiguousarray(batch, dtype=np.float32)})  # type: ignore[attr-defined]
        return np.asarray(out[0], dtype=np.float32)

    def healthy(self) -> bool:
        return self.repository.is_dir()

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()


def infer_images(backend: InferenceBackend, model: str, x: F32, tile: int = 0, overlap: int = 16) -> F32:
    """Run ``model`` on a batch of images, tiling when they exceed the model's or the caller's limit.

    Args:
        backend: where the model runs.
        model: model name in the repository.
        x: ``(N, F*C, H, W)`` float32 in [0, 1] (``F`` = ``info.frames``, 1 for image models).
        tile: caller's tile size in input pixels (0 = the model's own limit, or none).
        overlap: tile overlap in input pixels (raised to the model's own ``restora.overlap``, a
            wide-receptive-field network's need).

    Returns:
        ``(N, C, H*scale, W*scale)`` float32, not clipped.
    """
    info = backend.model_info(model)
    n, _, h, w = x.shape
    with telemetry.span(
        "inference",
        **{
            "restora.model": model,
            "restora.model_version": info.version,
            "restora.backend": backend.name,
            "restora.frames": n,
            "restora.pixels": n * h * w,
        },
    ):
        t = time.perf_counter()
        out = _infer_tiled(backend, model, info, x, tile, overlap)
        telemetry.metrics().inference_latency.record(
            time.perf_counter() - t, {"restora.model": model, "restora.backend": backend.name}
        )
        return out


def _infer_tiled(backend: InferenceBackend, model: str, info: ModelInfo, x: F32, tile: int, overlap: int) -> F32:
    limit = min(t for t in (tile, info.max_tile) if t > 0) if (tile > 0 or info.max_tile > 0) else 0
    return run_tiled(
        lambda b: backend.infer(model, b),
        x,
        info.scale,
        limit,
        overlap=max(overlap, info.overlap),
        max_batch=info.max_batch,
        out_channels=info.channels,
        grid=info.grid,
    )
