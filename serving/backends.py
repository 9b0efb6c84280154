"""Pick the inference backend from settings: Triton when ``settings.triton.url`` is set, else local ONNX Runtime."""

from __future__ import annotations

from restora.inference import InferenceBackend, LocalOnnx
from restora.settings import Settings


def make_backend(settings: Settings) -> InferenceBackend:
    """Return the configured :class:`~restora.inference.InferenceBackend`.

    ``RESTORA_TRITON__URL`` set: :class:`serving.triton_client.Triton` (protocol, timeout and batch
    cap from ``settings.triton``). Unset: :class:`restora.inference.LocalOnnx` on
    ``settings.models.repository`` with ``settings.models.threads`` threads and batches of
    ``settings.triton.max_batch``. No connection is opened until the first request.
    """
    if settings.triton.url:
        from serving.triton_client import Triton  # imports tritonclient only when Triton is used

        return Triton.from_settings(settings)
    return LocalOnnx(settings.models.repository, settings.models.threads, settings.triton.max_batch)
