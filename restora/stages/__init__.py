"""Restoration stages: frames in, frames out. Registered by name; a spec's ``type`` picks the class.

Every stage maps ``(T, H, W, 3)`` RGB to ``(T, H*scale, W*scale, 3)`` RGB of the same dtype (uint8,
or uint16 for sources deeper than 8 bits) and never opens a file. The neural stages (``sr``,
``deblock``, ``denoise``) run models through the inference backend; ``deflicker``, ``stabilize``,
``dust_scratch`` and ``degrain`` are classical signal processing over a window of frames within the
shot (no model). Stages that are declared (presets name them) but not implemented (``regrain``)
raise :class:`~restora.errors.StageNotImplementedError` when built: nothing is silently skipped.
"""

from __future__ import annotations

from restora.stages.base import Stage, StageContext
from restora.stages.deblock import Deblock
from restora.stages.deflicker import Deflicker
from restora.stages.degrain import Degrain
from restora.stages.denoise import Denoise
from restora.stages.dust_scratch import DustScratch
from restora.stages.sr import SuperResolution
from restora.stages.stabilize import Stabilize

REGISTRY: dict[str, type[Stage]] = {
    SuperResolution.type: SuperResolution,
    Deblock.type: Deblock,
    Denoise.type: Denoise,
    Deflicker.type: Deflicker,
    Stabilize.type: Stabilize,
    DustScratch.type: DustScratch,
    Degrain.type: Degrain,
}

# Stage names a preset may ask for; those absent from REGISTRY are not implemented yet.
DECLARED = frozenset({"sr", "denoise", "deblock", "deflicker", "stabilize", "dust_scratch", "degrain", "regrain"})
IMPLEMENTED = frozenset(REGISTRY)

__all__ = ["DECLARED", "IMPLEMENTED", "REGISTRY", "Stage", "StageContext", "build_stage", "check_stage"]


def build_stage(stage_type: str, options: dict[str, object], ctx: StageContext) -> Stage:
    """Instantiate a registered stage.

    Raises:
        StageNotImplementedError: the stage is declared but has no implementation yet.
        ConfigError: the name is unknown or the options are invalid.
    """
    check_stage(stage_type, options)
    return REGISTRY[stage_type](ctx, **options)


def check_stage(stage_type: str, options: dict[str, object]) -> None:
    """Fail fast, without loading a model, on a stage that cannot be built: unknown or unimplemented
    type, or an option the stage does not take.

    Raises:
        StageNotImplementedError: the stage is declared but has no implementation yet.
        ConfigError: unknown stage or option.
    """
    import inspect

    from restora.errors import ConfigError, StageNotImplementedError

    if stage_type not in REGISTRY:
        if stage_type in DECLARED:
            raise StageNotImplementedError(
                f"stage {stage_type!r} is not implemented yet (available: {', '.join(sorted(IMPLEMENTED))})"
            )
        raise ConfigError(f"unknown stage {stage_type!r} (known: {', '.join(sorted(DECLARED))})")
    known = [p for p in inspect.signature(REGISTRY[stage_type].__init__).parameters if p not in ("self", "ctx")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"stage {stage_type!r} has no option {', '.join(unknown)} (options: {', '.join(known)})")
