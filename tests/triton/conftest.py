"""Fixtures for the Triton tests: one real local Triton server per test session.

The server is ``serving.triton_server`` (the ``nvidia-pytriton`` build, python backend, models
with ``configs/cpu.pbtxt``) on free ports on 127.0.0.1, serving ``triton_models/``. Its state
(pid, log, backend directory) lives in a temporary directory, so a developer's ``make triton-up``
server is left alone. The first run creates ``.venv-triton`` (a pip install, about a minute).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from restora.inference import LocalOnnx
from serving.triton_client import Triton
from serving.triton_server import TritonServer, free_ports, start
from training.package_model import DEFAULT_REPOSITORY as REPOSITORY


@pytest.fixture(scope="session")
def triton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """A running Triton server on ``triton_models/`` (started once, stopped at the end)."""
    http, grpc, metrics = free_ports(3)
    server = start(
        REPOSITORY, http_port=http, grpc_port=grpc, metrics_port=metrics,
        state_dir=tmp_path_factory.mktemp("triton-state"), timeout=180.0,
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["grpc", "http"])
def triton(request: pytest.FixtureRequest, triton_server: TritonServer) -> Iterator[Triton]:
    """A :class:`Triton` backend on the session server, once per protocol."""
    url = triton_server.grpc_url if request.param == "grpc" else triton_server.http_url
    backend = Triton(url, protocol=request.param, timeout_s=60.0)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def local() -> Iterator[LocalOnnx]:
    """In-process ONNX Runtime on the same model files (the reference)."""
    backend = LocalOnnx(REPOSITORY, threads=0, max_batch=8)
    yield backend
    backend.close()
