"""Compression-artifact removal stage: luma through the ``deblock`` model, chroma untouched.

The model (trained by ``training/train_deblock.py`` on grayscale JPEG and real H.264/HEVC
re-encodes of video, see ``triton_models/deblock/README.md``) removes blocking, ringing and
mosquito noise from Y.

``strength="auto"`` sets the blend from the source's own H.264 quantiser: the pipeline hands each
chunk's mean QP (``restora.media.FrameIndex.mean_qp``) to :meth:`Deblock.adapt`, and the strength
follows the ramp fitted for the model version by ``training/calibrate_deblock.py``
(:data:`QP_RAMPS`): nothing on lightly compressed sources, where a blind model removes texture,
full strength on heavily compressed ones.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from restora.errors import ConfigError
from restora.stages.base import StageContext
from restora.stages.luma import LumaRestoreStage

log = logging.getLogger(__name__)

# (model, version) -> (q0, q1): strength 0 at mean H.264 QP <= q0, 1 at >= q1, linear between.
# Fitted by ``make calibrate-deblock`` (``training/calibrate_deblock.py``) on the training clips; its
# held-out scores are the ``strength=auto`` column of ``make eval`` (README). Re-fit after re-training.
QP_RAMPS: dict[tuple[str, str], tuple[float, float]] = {
    ("deblock", "1"): (16.5, 42.5),
}


def ramp_strength(qp: float, ramp: tuple[float, float]) -> float:
    """Blend strength in [0, 1] for a mean H.264 QP (0-51) on the ramp ``(q0, q1)``."""
    q0, q1 = ramp
    return min(1.0, max(0.0, (qp - q0) / (q1 - q0)))


class Deblock(LumaRestoreStage):
    """Remove compression artifacts at the same size with the ``deblock`` model (``strength`` in
    [0, 1], or ``"auto"``: from the source's H.264 QP, full strength when the source has none)."""

    type: ClassVar[str] = "deblock"
    default_model: ClassVar[str] = "deblock"

    def __init__(self, ctx: StageContext, model: str | None = None, strength: float | str = 1.0) -> None:
        self.auto = strength == "auto"
        super().__init__(ctx, model, 1.0 if self.auto else strength)  # type: ignore[arg-type]
        self.source_qp: float | None = None
        self.adapted = self.warned = False
        self.ramp: tuple[float, float] | None = None
        if self.auto:
            version = ctx.backend.model_info(self.model or "").version
            self.ramp = QP_RAMPS.get((self.model or "", version))
            if self.ramp is None:
                raise ConfigError(
                    f"deblock strength=auto has no QP calibration for model {self.model} v{version} "
                    f"(calibrated: {', '.join(f'{m} v{v}' for m, v in QP_RAMPS)}; run training/calibrate_deblock.py)"
                )

    def adapt(self, source_qp: float | None) -> None:
        """With ``strength="auto"``, set the strength from the mean H.264 QP of the frames about to
        come (None: the source carries no QP; full strength, as the model was trained)."""
        if not self.auto or self.ramp is None:
            return
        self.source_qp, self.adapted = source_qp, True
        if source_qp is None:
            if not self.warned:
                log.warning("deblock strength=auto: the source carries no H.264 QP; using full strength")
                self.warned = True
            self.strength = 1.0
        else:
            self.strength = ramp_strength(source_qp, self.ramp)

    def describe(self) -> dict[str, object]:
        d = super().describe()
        if self.auto:  # "auto" until adapted to a chunk, then the strength in use
            d.update(strength=self.strength if self.adapted else "auto", strength_mode="auto",
                     source_qp=self.source_qp, qp_ramp=list(self.ramp or ()))  # fmt: skip
        return d
