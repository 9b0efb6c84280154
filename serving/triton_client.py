"""Triton Inference Server backend for :class:`restora.inference.InferenceBackend`.

``Triton`` talks to a Triton server with tritonclient, over gRPC (default) or HTTP. It serves
the same models as :class:`restora.inference.LocalOnnx` (``triton_models/<name>/``), so both
backends return the same pixels; tiling of large frames stays in
:func:`restora.inference.infer_images`, which calls :meth:`Triton.infer` once per batch of tiles.

Model facts come from the server: tensor names, dtypes and shapes from the model metadata,
``max_batch_size`` and ``restora.scale`` / ``restora.channels`` / ``restora.max_tile`` from the
config ``parameters`` that ``training/package_model.py`` writes. They are checked on first use.

Errors map onto :mod:`restora.errors`: unreachable server, UNAVAILABLE, deadline exceeded and
resource exhaustion are :class:`TransientServiceError` (tasks retry them); an unknown model or a
model whose signature does not match is :class:`ModelError`; invalid arguments and other refusals
are :class:`PermanentServiceError`.

Every request is a client span ``triton.infer`` (attributes ``restora.model``,
``restora.model_version``, ``restora.backend``, ``restora.batch``), and the active
OpenTelemetry context travels to the server as a W3C ``traceparent`` header.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from opentelemetry import propagate, trace

from restora.errors import ModelError, PermanentServiceError, RestoraError, TransientServiceError
from restora.inference import ModelInfo

F32 = npt.NDArray[np.float32]
Protocol = Literal["grpc", "http"]

_TRANSIENT_GRPC = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED"}
_TRANSIENT_HTTP = {"408", "429", "502", "503", "504"}
_RETRYABLE = {"UNAVAILABLE", "503", "connection"}  # retried in place; timeouts are left to the caller


def _status(exc: BaseException) -> str:
    """Normalised status of a tritonclient error: ``UNAVAILABLE``, ``NOT_FOUND``, ``400``, ``connection``..."""
    status = getattr(exc, "status", None)
    if callable(status):
        s = status()
        if s:
            return str(s).removeprefix("StatusCode.")
    if isinstance(exc, ConnectionError):
        return "connection"
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "Timeout":  # socket / gevent timeouts
        return "DEADLINE_EXCEEDED"
    if isinstance(exc, OSError):
        return "connection"
    return ""


def map_error(exc: BaseException, what: str) -> RestoraError:
    """Translate a tritonclient / socket error into Restora's error tree.

    Args:
        exc: the exception tritonclient raised.
        what: what was being done, for the message (``"infer sr_x2 on 127.0.0.1:8001"``).
    """
    status = _status(exc)
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)  # type: ignore[attr-defined]
    text = f"Triton {what}: {status or type(exc).__name__}: {message}"
    if status in _TRANSIENT_GRPC or status in _TRANSIENT_HTTP or status == "connection":
        return TransientServiceError(text)
    if "unknown model" in (message or "").lower() or status in ("NOT_FOUND", "404"):
        return ModelError(text)
    if status.isdigit() and status.startswith("5"):
        return TransientServiceError(text)
    return PermanentServiceError(text)


def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection is not worth reporting
        client.close()


def _param(config: dict[str, Any], key: str) -> str | None:
    value = config.get("parameters", {}).get(key)
    return None if value is None else str(value.get("string_value", ""))


class Triton:
    """:class:`~restora.inference.InferenceBackend` served by Triton over gRPC or HTTP.

    Args:
        url: ``host:port`` of the gRPC (or, with ``protocol="http"``, HTTP) endpoint; a
            ``grpc://`` / ``http://`` prefix is accepted.
        protocol: ``"grpc"`` (default) or ``"http"``.
        timeout_s: per-request timeout in seconds (metadata and inference).
        max_batch: optional cap on images per request; the model's ``max_batch_size`` always applies.
        retries: extra attempts for a request refused with UNAVAILABLE / connection refused
            (exponential backoff from 0.25 s). Timeouts are not retried here.
        tracer: OpenTelemetry tracer for the ``triton.infer`` spans (default: the global provider's).

    The gRPC client is safe to share between threads; HTTP requests are serialised by a lock
    (tritonclient's HTTP client is gevent-based).
    """

    def __init__(
        self,
        url: str,
        protocol: Protocol = "grpc",
        timeout_s: float = 60.0,
        max_batch: int | None = None,
        retries: int = 2,
        tracer: trace.Tracer | None = None,
    ) -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        for prefix in ("grpc://", "http://"):
            url = url.removeprefix(prefix)
        self.url = url
        self.protocol: Protocol = protocol
        self.name = f"triton-{protocol}"
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.retries = retries
        self._tracer = tracer
        self._infos: dict[str, ModelInfo] = {}
        self._info_lock = threading.Lock()
        self._http_lock = threading.Lock() if protocol == "http" else None
        self._client: Any
        if protocol == "grpc":
            import tritonclient.grpc as grpcclient

            self._mod: Any = grpcclient
            self._client = grpcclient.InferenceServerClient(url=url)
        else:
            import tritonclient.http as httpclient

            self._mod = httpclient
            self._client = httpclient.InferenceServerClient(
                url=url, connection_timeout=timeout_s, network_timeout=timeout_s
            )
        # Close at garbage collection or interpreter exit at the latest: a gRPC client left to its
        # own __del__ during interpreter shutdown prints "Exception ignored ... StatusCode".
        self._finalizer = weakref.finalize(self, _close_quietly, self._client)

    @classmethod
    def from_settings(cls, settings: Any) -> Triton:
        """Build from :class:`restora.settings.Settings` (``settings.triton``)."""
        t = settings.triton
        if not t.url:
            raise ValueError("settings.triton.url is not set")
        return cls(t.url, protocol=t.protocol, timeout_s=t.timeout_s, max_batch=t.max_batch)

    def __repr__(self) -> str:
        return f"Triton({self.url!r}, protocol={self.protocol!r})"

    # -- calls with error mapping ------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        """Run one tritonclient call with the timeout, mapping errors; retries UNAVAILABLE if ``retry``."""
        if self.protocol == "grpc":
            kwargs["client_timeout"] = self.timeout_s
        attempt = 0 if retry else self.retries
        while True:
            try:
                if self._http_lock is not None:
                    with self._http_lock:
                        return fn(*args, **kwargs)
                return fn(*args, **kwargs)
            except Exception as exc:
                err = map_error(exc, f"{what} on {self.url}")
                if attempt < self.retries and _status(exc) in _RETRYABLE:
                    time.sleep(0.25 * 2**attempt)
                    attempt += 1
                    continue
                raise err from exc
            except BaseException as exc:  # gevent.Timeout derives from BaseException
                if type(exc).__name__ != "Timeout":
                    raise
                raise TransientServiceError(f"Triton {what} on {self.url}: timed out after {self.timeout_s} s") from exc

    def _json(self, what: str, fn: Any, *args: Any) -> dict[str, Any]:
        if self.protocol == "grpc":
            return dict(self._call(what, fn, *args, as_json=True))
        return dict(self._call(what, fn, *args))

    # -- InferenceBackend --------------------------------------------------------------------

    def model_info(self, model: str) -> ModelInfo:
        """Model facts from the server's metadata and config (cached after the first call).

        Raises:
            ModelError: the model is unknown or its signature is not ``(N, C, h, w)`` FP32 in and
                out with the ``restora.*`` parameters.
            TransientServiceError: the server is unreachable.
        """
        with self._info_lock:
            if model in self._infos:
                return self._infos[model]
        meta = self._json(f"metadata of {model}", self._client.get_model_metadata, model)
        config = self._json(f"config of {model}", self._client.get_model_config, model)
        config = config.get("config", config)  # gRPC wraps it in {"config": ...}
        info = self._check(model, meta, config)
        with self._info_lock:
            self._infos[model] = info
        return info

    def _check(self, model: str, meta: dict[str, Any], config: dict[str, Any]) -> ModelInfo:
        where = f"Triton model {model!r} on {self.url}"
        inputs, outputs = meta.get("inputs", []), meta.get("outputs", [])
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{where}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        try:
            scale = int(_param(config, "restora.scale") or "")
            channels = int(_param(config, "restora.channels") or "")
            max_tile = int(_param(config, "restora.max_tile") or "0")
            frames = int(_param(config, "restora.frames") or "1")
            grid = int(_param(config, "restora.grid") or "1")
            overlap = int(_param(config, "restora.overlap") or "0")
        except ValueError as exc:
            raise ModelError(f"{where}: config parameters restora.scale/restora.channels missing or invalid") from exc
        server_max_batch = int(config.get("max_batch_size", 0))
        if server_max_batch < 1:
            raise ModelError(f"{where}: max_batch_size must be >= 1 (batched NCHW model), got {server_max_batch}")
        for t, want in ((inputs[0], [-1, frames * channels, -1, -1]), (outputs[0], [-1, channels, -1, -1])):
            shape = [int(d) for d in t.get("shape", [])]
            if t.get("datatype") != "FP32" or shape != want:
                raise ModelError(
                    f"{where}: tensor {t.get('name')!r} is {t.get('datatype')} {shape}, expected FP32 {want}"
                )
        versions = sorted((str(v) for v in meta.get("versions", [])), key=lambda v: int(v) if v.isdigit() else -1)
        return ModelInfo(
            name=model,
            version=versions[-1] if versions else "",
            input_name=str(inputs[0]["name"]),
            output_name=str(outputs[0]["name"]),
            scale=scale,
            channels=channels,
            max_tile=max_tile,
            frames=frames,
            grid=grid,
            overlap=overlap,
            max_batch=min(server_max_batch, self.max_batch) if self.max_batch else server_max_batch,
        )

    def infer(self, model: str, batch: F32) -> F32:
        """Run ``model`` on ``batch``, one request per ``max_batch`` images.

        Args:
            model: model name on the server.
            batch: ``(N, F*C, h, w)`` float32 in [0, 1] (``F`` frames of a video model, else 1).

        Returns:
            ``(N, C, h*scale, w*scale)`` float32 (not clipped).

        Raises:
            ModelError: wrong channel count or rank, unknown model.
            TransientServiceError: unreachable, UNAVAILABLE, timeout.
            PermanentServiceError: the server refused the request.
        """
        info = self.model_info(model)
        if batch.ndim != 4 or batch.shape[1] != info.in_channels:
            raise ModelError(f"{model}: expected (N, {info.in_channels}, H, W) input, got {batch.shape}")
        x = np.ascontiguousarray(batch, dtype=np.float32)
        outs = [self._request(info, x[i : i + info.max_batch]) for i in range(0, x.shape[0], info.max_batch)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)

    def _request(self, info: ModelInfo, x: F32) -> F32:
        tracer = self._tracer or trace.get_tracer("restora.serving.triton")
        attrs: dict[str, str | int] = {
            "restora.model": info.name,
            "restora.model_version": info.version,
            "restora.backend": self.name,
            "restora.batch": int(x.shape[0]),
            "server.address": self.url,
        }
        with tracer.start_as_current_span("triton.infer", kind=trace.SpanKind.CLIENT, attributes=attrs):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            inp = self._mod.InferInput(info.input_name, list(x.shape), "FP32")
            out = self._mod.InferRequestedOutput(info.output_name)
            if self.protocol == "http":
                inp.set_data_from_numpy(x, binary_data=True)
                out = self._mod.InferRequestedOutput(info.output_name, binary_data=True)
            else:
                inp.set_data_from_numpy(x)
            result = self._call(
                f"infer {info.name}", self._client.infer, info.name, [inp], outputs=[out], headers=headers or None
            )
            y = result.as_numpy(info.output_name)
        n, _, h, w = x.shape
        want = (n, info.channels, h * info.scale, w * info.scale)
        if y is None or tuple(y.shape) != want:
            got = None if y is None else tuple(y.shape)
            raise PermanentServiceError(f"Triton infer {info.name}: output {got}, expected {want}")
        return np.asarray(y, dtype=np.float32)

    def healthy(self) -> bool:
        """True when the server answers live and ready (never raises)."""
        try:
            return bool(self._call("health", self._client.is_server_ready, retry=False))
        except Exception:  # ServiceError, or anything odd from a half-open connection
            return False

    def close(self) -> None:
        """Close the connection; the instance must not be used afterwards."""
        self._finalizer()
