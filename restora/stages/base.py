"""The stage interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from restora.color import Frames
from restora.errors import ConfigError
from restora.inference import InferenceBackend

MOTION = ("local", "global")  # how the temporal stages bring neighbouring frames onto a frame


def check_motion(stage: str, motion: object) -> str:
    """A temporal stage's ``motion`` option: ``local`` (global shift plus a local motion field) or
    ``global`` (the global shift only: faster, for footage where only the camera moves).

    Raises:
        ConfigError: anything else.
    """
    if motion not in MOTION:
        raise ConfigError(f"{stage} motion must be one of {', '.join(MOTION)}, not {motion!r}")
    return str(motion)


def check_strength(stage: str, strength: object) -> float:
    """A stage's ``strength`` option as a float in [0, 1] (0 = input unchanged, 1 = the model's output).

    Raises:
        ConfigError: not a number in [0, 1].
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ConfigError(f"{stage} strength must be a number in [0, 1], not {strength!r}")
    return float(strength)


@dataclass
class StageContext:
    """What a stage may use: the inference backend and tiling limits."""

    backend: InferenceBackend
    tile: int = 0
    overlap: int = 16


class Stage:
    """Base class. Subclasses set ``type`` and implement :meth:`process`; a stage that reads
    neighbouring frames (``context`` > 0) also implements :meth:`process_span`."""

    type: ClassVar[str]
    synthesizes: ClassVar[bool] = False  # makes up pixel content (grain): the forensic preset refuses it
    # A stage without a model: the version of its method, part of the chunk cache key. Bump it when a
    # change gives other pixels, so no chunk restored the old way is reused.
    method_version: ClassVar[int] = 0
    scale: int = 1
    model: str | None = None

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    @property
    def context(self) -> int:
        """Frames on each side this stage reads to restore one frame (0: frame by frame). The pipeline
        streams every frame to it with that many neighbours, across decode batches and chunks of a shot."""
        return 0

    def adapt(self, source_qp: float | None, qp_codec: str | None = None) -> None:
        """Called before each chunk with the mean quantiser of its source frames on ``qp_codec``'s
        scale (``restora.media.QP_CODECS``; None: the source carries none). Stages whose settings
        follow the source's compression override it."""

    def process(self, frames: Frames) -> Frames:
        """``(T, H, W, 3)`` RGB -> ``(T, H*scale, W*scale, 3)`` RGB of the same dtype: uint8 for 8-bit
        sources, uint16 (0-65535) for deeper ones (``restora.color.Frames``)."""
        raise NotImplementedError

    def process_span(self, frames: Frames, start: int, stop: int) -> Frames:
        """Restore ``frames[start:stop]`` of ``(T, H, W, 3)`` RGB, the other frames being their
        temporal context (clamped at the ends of ``frames``): ``(stop - start, H*scale, W*scale, 3)``."""
        return self.process(frames[start:stop])

    def describe(self) -> dict[str, object]:
        """Provenance: stage type, model, version, backend, scale, and whether pixels are synthesized."""
        d: dict[str, object] = {"type": self.type, "scale": self.scale, "synthesizes": self.synthesizes}
        if self.model:
            info = self.ctx.backend.model_info(self.model)
            d.update(model=self.model, model_version=info.version, backend=self.ctx.backend.name)
        if self.method_version:
            d["method_version"] = self.method_version
        return d
