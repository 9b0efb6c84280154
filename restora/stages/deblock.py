"""Compression-artifact removal stage: luma through the ``deblock`` model, chroma untouched.

The model (trained by ``training/train_deblock.py`` on grayscale JPEG and real H.264/HEVC
re-encodes of video, see ``triton_models/deblock/README.md``) removes blocking, ringing and
mosquito noise from Y.

``strength="auto"`` sets the blend from the source's own quantiser: the pipeline hands each
chunk's mean H.264 QP or MPEG-2 / MPEG-4 Part 2 quantiser (``restora.media.FrameIndex.mean_qp``) to
:meth:`Deblock.adapt`, and the strength follows the ramp fitted for the model version and that codec
by ``training/calibrate_deblock.py`` (:data:`QP_RAMPS`): nothing on lightly compressed sources,
where a blind model removes texture, full strength on heavily compressed ones.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from restora.errors import ConfigError
from restora.stages.base import StageContext
from restora.stages.luma import LumaRestoreStage

log = logging.getLogger(__name__)

# (model, version, codec) -> (q0, q1): strength 0 at a mean quantiser <= q0, 1 at >= q1, linear between,
# on the codec's scale (``restora.media.QP_CODECS``: H.264 QP 0-51; MPEG-2 and MPEG-4 Part 2 2-62).
# Fitted by ``make calibrate-deblock`` (``training/calibrate_deblock.py``) on the training clips; its
# held-out scores are the ``strength=auto`` column of ``make eval`` (README). Re-fit after re-training.
QP_RAMPS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("deblock", "1", "h264"): (16.5, 42.5),
    ("deblock", "1", "mpeg2"): (0.0, 25.75),
    ("deblock", "1", "mpeg4"): (0.0, 25.0),
    ("deblock_heavy", "1", "h264"): (18.25, 46.5),
    ("deblock_heavy", "1", "mpeg2"): (0.0, 34.75),
    ("deblock_heavy", "1", "mpeg4"): (0.0, 35.5),
}


def ramp_strength(qp: float, ramp: tuple[float, float]) -> float:
    """Blend strength in [0, 1] for a mean quantiser on the ramp ``(q0, q1)``."""
    q0, q1 = ramp
    return min(1.0, max(0.0, (qp - q0) / (q1 - q0)))


class Deblock(LumaRestoreStage):
    """Remove compression artifacts at the same size with the ``deblock`` model (``strength`` in
    [0, 1], or ``"auto"``: from the source's H.264 / MPEG-2 / MPEG-4 quantiser, full strength when the source
    has none)."""

    type: ClassVar[str] = "deblock"
    default_model: ClassVar[str] = "deblock"

    def __init__(self, ctx: StageContext, model: str | None = None, strength: float | str = 1.0) -> None:
        self.auto = strength == "auto"
        super().__init__(ctx, model, 1.0 if self.auto else strength)  # type: ignore[arg-type]
        self.source_qp: float | None = None
        self.source_qp_codec: str | None = None
        self.adapted = self.warned = False
        self.ramps: dict[str, tuple[float, float]] = {}
        if self.auto:
            version = ctx.backend.model_info(self.model or "").version
            self.ramps = {c: r for (m, v, c), r in QP_RAMPS.items() if (m, v) == (self.model, version)}
            if not self.ramps:
                raise ConfigError(
                    f"deblock strength=auto has no QP calibration for model {self.model} v{version} "
                    f"(calibrated: {', '.join(sorted({f'{m} v{v}' for m, v, _ in QP_RAMPS}))}; "
                    "run training/calibrate_deblock.py)"
                )

    def adapt(self, source_qp: float | None, qp_codec: str | None = None) -> None:
        """With ``strength="auto"``, set the strength from the mean quantiser of the frames about to
        come on ``qp_codec``'s scale (None, or a codec without a calibrated ramp: full strength, as
        the model was trained, with one warning)."""
        if not self.auto:
            return
        self.source_qp, self.source_qp_codec, self.adapted = source_qp, qp_codec, True
        ramp = self.ramps.get(qp_codec or "")
        if source_qp is None or ramp is None:
            if not self.warned:
                log.warning(
                    "deblock strength=auto: the source carries no calibrated quantiser (%s); using full strength",
                    qp_codec or "none exported",
                )
                self.warned = True
            self.strength = 1.0
        else:
            self.strength = ramp_strength(source_qp, ramp)

    def describe(self) -> dict[str, object]:
        d = super().describe()
        if self.auto:  # "auto" until adapted to a chunk, then the strength in use
            d.update(
                strength="auto", strength_mode="auto", qp_ramps={c: list(r) for c, r in sorted(self.ramps.items())}
            )
            if self.adapted:  # the strength in use and the quantiser it follows (per chunk: spans, report chunks)
                d.update(strength=self.strength, source_qp=self.source_qp, source_qp_codec=self.source_qp_codec)
        return d
