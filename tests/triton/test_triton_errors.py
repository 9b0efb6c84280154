"""Triton failures arrive as Restora's typed errors: transient ones are retried by tasks, the rest are not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from restora.errors import ModelError, PermanentServiceError, TransientServiceError
from restora.inference import LocalOnnx
from restora.settings import Settings
from serving.backends import make_backend
from serving.triton_client import Triton, map_error
from serving.triton_server import TritonServer, free_ports, read_state, start, stop
from training.package_model import DEFAULT_REPOSITORY as REPOSITORY
from training.package_model import packaged_models

MODELS = packaged_models()


ISE = InferenceServerException


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(ISE("x", status="StatusCode.UNAVAILABLE"), TransientServiceError, id="grpc-unavailable"),
        pytest.param(ISE("x", status="StatusCode.DEADLINE_EXCEEDED"), TransientServiceError, id="grpc-deadline"),
        pytest.param(ISE("x", status="StatusCode.INVALID_ARGUMENT"), PermanentServiceError, id="grpc-invalid"),
        pytest.param(ISE("x", status="StatusCode.NOT_FOUND"), ModelError, id="grpc-not-found"),
        pytest.param(ISE("x", status="503"), TransientServiceError, id="http-503"),
        pytest.param(ISE("x", status="400"), PermanentServiceError, id="http-400"),
        pytest.param(ISE("Request for unknown model: 'm'", status="400"), ModelError, id="http-unknown-model"),
        pytest.param(ConnectionRefusedError(111, "refused"), TransientServiceError, id="connection-refused"),
        pytest.param(TimeoutError("timed out"), TransientServiceError, id="socket-timeout"),
    ],
)
def test_error_mapping(exc: Exception, expected: type[Exception]) -> None:
    err = map_error(exc, "infer m")
    assert type(err) is expected
    assert "infer m" in str(err)


def test_make_backend_picks_triton_or_local() -> None:
    assert isinstance(make_backend(Settings(triton={"url": None})), LocalOnnx)  # type: ignore[arg-type]
    for protocol in ("grpc", "http"):
        b = make_backend(Settings(triton={"url": "127.0.0.1:1", "protocol": protocol}))  # type: ignore[arg-type]
        assert isinstance(b, Triton) and b.name == f"triton-{protocol}"
        b.close()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_down_is_transient(protocol: str) -> None:
    (port,) = free_ports(1)
    backend = Triton(f"127.0.0.1:{port}", protocol=protocol, timeout_s=5.0, retries=0)  # type: ignore[arg-type]
    assert not backend.healthy()
    with pytest.raises(TransientServiceError, match=f"127.0.0.1:{port}"):
        backend.infer("sr_x2", np.zeros((1, 1, 8, 8), dtype=np.float32))
    backend.close()


@pytest.mark.triton
def test_unknown_model(triton: Triton) -> None:
    with pytest.raises(ModelError, match="no_such_model"):
        triton.model_info("no_such_model")
    with pytest.raises(ModelError):
        triton.infer("no_such_model", np.zeros((1, 1, 8, 8), dtype=np.float32))


@pytest.mark.triton
def test_bad_inputs(triton: Triton) -> None:
    name = MODELS[0]
    c = triton.model_info(name).channels
    with pytest.raises(ModelError, match="expected"):  # checked by the client
        triton.infer(name, np.zeros((1, c + 1, 8, 8), dtype=np.float32))
    with pytest.raises(PermanentServiceError, match="empty input"):  # refused by 1/model.py as TritonError
        triton.infer(name, np.zeros((1, c, 0, 8), dtype=np.float32))
    assert triton.healthy()  # a refused request does not hurt the server


@pytest.mark.triton
def test_deadline_exceeded_is_transient(triton_server: TritonServer) -> None:
    name = MODELS[0]
    probe = Triton(triton_server.grpc_url)
    info = probe.model_info(name)
    probe.close()
    backend = Triton(triton_server.grpc_url, timeout_s=0.001, retries=0)
    backend._infos[name] = info  # metadata known; only the inference request meets the 1 ms deadline
    with pytest.raises(TransientServiceError, match="DEADLINE_EXCEEDED"):
        backend.infer(name, np.zeros((1, info.channels, 256, 256), dtype=np.float32))
    backend.close()


@pytest.mark.triton
def test_start_refuses_taken_port(triton_server: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(PermanentServiceError, match="in use"):
        start(http_port=triton_server.http_port, grpc_port=1, metrics_port=2, state_dir=tmp_path_factory.mktemp("x"))


@pytest.mark.triton
def test_stop_cleans_up(tmp_path: Path) -> None:
    """A second server: pid file while it runs; after stop() no process, no pid file, no shared memory."""
    repo = tmp_path / "models"
    shutil.copytree(REPOSITORY / MODELS[0], repo / MODELS[0], ignore=shutil.ignore_patterns("__pycache__"))
    state = tmp_path / "state"
    http, grpc, metrics = free_ports(3)
    server = start(repo, http_port=http, grpc_port=grpc, metrics_port=metrics, state_dir=state)
    try:
        assert read_state(state) is not None and read_state(state).pid == server.pid  # type: ignore[union-attr]
        assert (state / "tritonserver.pid").read_text().strip() == str(server.pid)
        assert list(Path("/dev/shm").glob(server.shm_prefix + "*")), "python backend shared memory expected"
        assert "Started GRPCInferenceService" in (state / "tritonserver.log").read_text()
    finally:
        server.stop(timeout=15.0)
    assert not server.alive()
    assert not (state / "tritonserver.pid").exists()
    assert not list(Path("/dev/shm").glob(server.shm_prefix + "*"))
    assert stop(state) is False  # nothing left to stop
