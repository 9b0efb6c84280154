"""One typed settings object, read from the environment (``RESTORA_<SECTION>__<FIELD>``).

Examples::

    RESTORA_TRITON__URL=127.0.0.1:8001      # use a Triton server instead of in-process ONNX Runtime
    RESTORA_STORAGE__ROOT=/data/restora      # local asset store root
    RESTORA_OTEL__SPAN_FILE=spans.jsonl      # where the default exporter writes spans

Secrets may also come from files (``*_FILE`` variants), never from code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class TritonSettings(BaseModel):
    """Where neural models run. ``url`` unset means in-process ONNX Runtime (embedded default)."""

    url: str | None = Field(None, description="Triton endpoint host:port; unset = local ONNX Runtime")
    protocol: Literal["grpc", "http"] = Field("grpc", description="tritonclient protocol")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="per-request timeout in seconds")
    max_batch: int = Field(8, ge=1, le=256, description="frames or tiles per inference request")


class ModelSettings(BaseModel):
    """Where model files live (``<repository>/<name>/1/model.onnx``)."""

    repository: Path = Field(REPO_ROOT / "triton_models", description="Triton-layout model repository")
    tile: int = Field(
        0,
        ge=0,
        le=8192,
        description="tile size (input pixels) for large frames; 0 = whole frame unless the model sets a limit",
    )
    threads: int = Field(0, ge=0, le=256, description="ONNX Runtime intra-op threads; 0 = all cores")


class StorageSettings(BaseModel):
    """The asset store. Local filesystem by default; S3/MinIO when ``s3_endpoint`` is set."""

    root: Path = Field(Path.home() / ".restora" / "store", description="local asset store root")
    s3_endpoint: str | None = Field(None, description="e.g. http://127.0.0.1:9000")


class OtelSettings(BaseModel):
    """Tracing. OTLP is switched on by the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` variable."""

    span_file: str | None = Field(
        None, description="JSON-lines span file; default: <output>.spans.jsonl next to the output"
    )
    enabled: bool = Field(True, description="emit spans at all")


class EncodeSettings(BaseModel):
    """Output encoding defaults (per-run overrides come from the CLI / RestoreSpec)."""

    crf: float = Field(16.0, ge=0, le=51, description="libx264 constant rate factor")
    preset: str = Field("fast", description="libx264 preset")


class LimitsSettings(BaseModel):
    """Concurrency limits."""

    shot_workers: int = Field(1, ge=1, le=64, description="chunks restored concurrently in one flow run")


class Settings(BaseSettings):
    """All of Restora's configuration."""

    model_config = SettingsConfigDict(env_prefix="RESTORA_", env_nested_delimiter="__", extra="ignore")

    triton: TritonSettings = Field(default_factory=TritonSettings)  # type: ignore[arg-type]
    models: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    otel: OtelSettings = Field(default_factory=OtelSettings)  # type: ignore[arg-type]
    encode: EncodeSettings = Field(default_factory=EncodeSettings)  # type: ignore[arg-type]
    limits: LimitsSettings = Field(default_factory=LimitsSettings)  # type: ignore[arg-type]


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests change the environment)."""
    return Settings()
