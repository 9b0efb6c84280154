"""The stage interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from restora.inference import InferenceBackend


@dataclass
class StageContext:
    """What a stage may use: the inference backend and tiling limits."""

    backend: InferenceBackend
    tile: int = 0
    overlap: int = 16


class Stage:
    """Base class. Subclasses set ``type`` and implement :meth:`process`."""

    type: ClassVar[str]
    scale: int = 1
    model: str | None = None

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def process(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """``(T, H, W, 3)`` uint8 RGB -> ``(T, H*scale, W*scale, 3)`` uint8 RGB."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """Provenance: stage type, model, version, backend, scale, and whether pixels are synthesized."""
        d: dict[str, object] = {"type": self.type, "scale": self.scale, "synthesizes": False}
        if self.model:
            info = self.ctx.backend.model_info(self.model)
            d.update(model=self.model, model_version=info.version, backend=self.ctx.backend.name)
        return d
