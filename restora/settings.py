"""One typed settings object, read from the environment (``RESTORA_<SECTION>__<FIELD>``).

Examples::

    RESTORA_TRITON__URL=127.0.0.1:8001      # use a Triton server instead of in-process ONNX Runtime
    RESTORA_STORAGE__ROOT=/data/restora      # local asset store root
    RESTORA_OTEL__SPAN_FILE=spans.jsonl      # where the default exporter writes spans
    RESTORA_STORAGE__S3_ENDPOINT=http://127.0.0.1:9000         # S3/MinIO asset store instead of local files
    RESTORA_STORAGE__ACCESS_KEY_FILE=/var/run/secrets/s3/access  # mounted secret (or ..._ACCESS_KEY)
    RESTORA_STORAGE__SECRET_KEY_FILE=/var/run/secrets/s3/secret

Secrets may also come from files (``*_FILE`` variants), never from code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from restora.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


class TritonSettings(BaseModel):
    """Where neural models run. ``url`` unset means in-process ONNX Runtime (embedded default)."""

    url: str | None = Field(None, description="Triton endpoint host:port; unset = local ONNX Runtime")
    protocol: Literal["grpc", "http"] = Field("grpc", description="tritonclient protocol")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="per-request timeout in seconds")
    max_batch: int = Field(8, ge=1, le=256, description="frames or tiles per inference request")


class ModelSettings(BaseModel):
    """Where model files live (``<repository>/<name>/<version>/model.onnx``, the highest version served)."""

    repository: Path = Field(REPO_ROOT / "triton_models", description="Triton-layout model repository")
    tile: int = Field(
        0,
        ge=0,
        le=8192,
        description="tile size (input pixels) for large frames; 0 = whole frame unless the model sets a limit",
    )
    threads: int = Field(0, ge=0, le=256, description="ONNX Runtime intra-op threads; 0 = all cores")


class StorageSettings(BaseModel):
    """The asset store. Local filesystem by default; S3/MinIO when ``s3_endpoint`` is set.

    Credentials come from ``RESTORA_STORAGE__ACCESS_KEY`` / ``RESTORA_STORAGE__SECRET_KEY`` or, for
    mounted secrets, from the files named by ``RESTORA_STORAGE__ACCESS_KEY_FILE`` /
    ``RESTORA_STORAGE__SECRET_KEY_FILE`` (read each time :meth:`credentials` is called, so rotated
    secrets are picked up). Secret values are :class:`~pydantic.SecretStr`: reprs and logs show ``**********``.
    """

    root: Path = Field(Path.home() / ".restora" / "store", description="local asset store root")
    s3_endpoint: str | None = Field(
        None, description="S3/MinIO endpoint URL, e.g. http://127.0.0.1:9000 (https:// means TLS); unset = local store"
    )
    bucket: str = Field(
        "assets",
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        description="bucket holding the asset layout",
    )
    prefix: str = Field("", max_length=512, description="key prefix inside the bucket ('' = bucket root)")
    region: str | None = Field(None, max_length=64, description="S3 region; unset = ask the server")
    access_key: SecretStr | None = Field(None, description="S3 access key (prefer access_key_file)")
    secret_key: SecretStr | None = Field(None, description="S3 secret key (prefer secret_key_file)")
    access_key_file: Path | None = Field(None, description="file holding the access key (a mounted secret)")
    secret_key_file: Path | None = Field(None, description="file holding the secret key (a mounted secret)")
    timeout_s: float = Field(30.0, gt=0, le=3600, description="S3 connect and read timeout in seconds")
    retries: int = Field(
        3, ge=0, le=20, description="HTTP-level retries for connection errors and 5xx before a TransientServiceError"
    )
    part_size_mb: int = Field(16, ge=5, le=5120, description="multipart upload part size in MiB (S3 minimum 5)")
    cache_dir: Path = Field(
        Path.home() / ".restora" / "cache", description="where S3 objects are cached for local readers (PyAV)"
    )

    @field_validator("s3_endpoint")
    @classmethod
    def _check_endpoint(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"s3_endpoint must be http(s)://host[:port], got {safe_url(v)!r}")
        if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise ValueError("s3_endpoint must not carry credentials, a path or a query: use access_key(_file)")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v and (any(p in ("", ".", "..") for p in v.split("/")) or re.search(r"[\x00-\x1f\x7f\\]", v)):
            raise ValueError(f"invalid storage prefix {v!r}")
        return v

    @property
    def secure(self) -> bool:
        """TLS or not, from the endpoint's scheme."""
        return bool(self.s3_endpoint and self.s3_endpoint.startswith("https://"))

    @property
    def endpoint_host(self) -> str | None:
        """``host:port`` of the endpoint (what the minio SDK wants), or None."""
        return urlsplit(self.s3_endpoint).netloc if self.s3_endpoint else None

    def credentials(self) -> tuple[SecretStr, SecretStr] | None:
        """The (access key, secret key) pair, reading ``*_file`` settings now; None = anonymous.

        Raises:
            ConfigError: a value and its ``*_file`` are both set, a file is unreadable or empty, or
                only one of the two keys is configured.
        """
        access = _secret(self.access_key, self.access_key_file, "access_key")
        secret = _secret(self.secret_key, self.secret_key_file, "secret_key")
        if access is None and secret is None:
            return None
        if access is None or secret is None:
            raise ConfigError("S3 credentials need both access_key(_file) and secret_key(_file)")
        return access, secret


def _secret(value: SecretStr | None, path: Path | None, name: str, section: str = "storage") -> SecretStr | None:
    """A secret from its value or its file (never both); the error names the file, never its content."""
    if path is None:
        return value
    if value is not None:
        raise ConfigError(f"set {section} {name} or {name}_file, not both")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {section} {name}_file {path}: {exc.strerror}") from exc
    if not text:
        raise ConfigError(f"{section} {name}_file {path} is empty")
    return SecretStr(text)


def safe_url(url: str) -> str:
    """``url`` without userinfo, query or fragment (for error messages)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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


class IngestRule(BaseModel):
    """Which preset restores new objects under ``bucket``/``prefix``, and where outputs go."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$", description="source bucket"
    )
    prefix: str = Field("", max_length=1024, description="key prefix ('' = whole bucket)")
    preset: str = Field(min_length=1, max_length=64, description="restoration preset name")
    output_bucket: str | None = Field(
        None,
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        description="default: storage.bucket",
    )
    scale: Literal[1, 2, 4] = Field(2, description="upscaling factor of the restore run")
    field_rate: bool = Field(False, description="interlaced sources: one output frame per field (50i -> 50p)")
    reinterlace: bool = Field(
        False, description="interlaced sources: restore per field, deliver interlaced at the source's rate (50i -> 50i)"
    )
    mxf_codec: Literal["dnxhr", "xdcam"] | None = Field(
        None,
        description="MXF sources (delivered as MXF): dnxhr or xdcam (XDCAM HD422); None: DNxHR, XDCAM re-interlaced",
    )


class IngestSettings(BaseModel):
    """Bucket-notification ingest. ``RESTORA_INGEST__RULES`` is a JSON list of :class:`IngestRule`."""

    rules: list[IngestRule] = Field(default_factory=list, max_length=256, description="preset selection rules")
    seen_key: str = Field("ingest/seen.json", description="store key of the processed-events set")
    seen_max: int = Field(10000, ge=10, le=1_000_000, description="processed events remembered for dedupe")
    watermark_key: str = Field("ingest/watermarks.json", description="store key of the polling watermarks")
    deployment: str = Field(
        "restore-video/restore-video", description="Prefect deployment ('flow/deployment') that restores new objects"
    )
    webhook_token: SecretStr | None = Field(None, description="bearer token MinIO must send (prefer the _file variant)")
    webhook_token_file: Path | None = Field(None, description="file holding the webhook bearer token")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="largest notification body accepted")

    def token(self) -> SecretStr | None:
        """The webhook bearer token (read from its file now), or None when the listener is open."""
        return _secret(self.webhook_token, self.webhook_token_file, "webhook_token", section="ingest")


class Settings(BaseSettings):
    """All of Restora's configuration."""

    model_config = SettingsConfigDict(env_prefix="RESTORA_", env_nested_delimiter="__", extra="ignore")

    triton: TritonSettings = Field(default_factory=TritonSettings)  # type: ignore[arg-type]
    models: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    otel: OtelSettings = Field(default_factory=OtelSettings)  # type: ignore[arg-type]
    encode: EncodeSettings = Field(default_factory=EncodeSettings)  # type: ignore[arg-type]
    limits: LimitsSettings = Field(default_factory=LimitsSettings)  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests change the environment)."""
    return Settings()
