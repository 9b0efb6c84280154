"""Restoration stages: frames in, frames out. Registered by name; a spec's ``type`` picks the class.

Every stage maps ``(T, H, W, 3)`` RGB to ``(T, H*scale, W*scale, 3)`` RGB of the same dtype (uint8,
or uint16 for sources deeper than 8 bits) and never opens a file. The neural stages (``sr``,
``deblock``, ``denoise``) run models through the inference backend; ``deflicker``, ``stabilize``,
``dust_scratch`` and ``degrain`` are classical signal processing over a window of frames within the
shot (no model); ``regrain`` synthesizes grain after SR, matched to what ``degrain`` removed
(:func:`link` connects the two). Stages that are declared (presets name them) but not implemented
raise :class:`~restora.errors.StageNotImplementedError` when built: nothing is silently skipped.
"""

from __future__ import annotations

from restora.stages.base import Stage, StageContext
from restora.stages.deblock import Deblock
from restora.stages.deflicker import Deflicker
from restora.stages.degrain import Degrain
from restora.stages.denoise import Denoise
from restora.stages.dust_scratch import DustScratch
from restora.stages.regrain import Regrain
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
    Regrain.type: Regrain,
}

# Stage names a preset may ask for; those absent from REGISTRY are not implemented yet.
DECLARED = frozenset({"sr", "denoise", "deblock", "deflicker", "stabilize", "dust_scratch", "degrain", "regrain"})
IMPLEMENTED = frozenset(REGISTRY)

__all__ = [
    "DECLARED",
    "IMPLEMENTED",
    "REGISTRY",
    "Stage",
    "StageContext",
    "build_chain",
    "build_stage",
    "check_chain",
    "check_stage",
    "link",
]


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


def link(stages: list[Stage]) -> list[Stage]:
    """Connect the stages that work as a pair: each ``regrain`` takes the grain measured by the
    nearest ``degrain`` before it (which then records one measurement per frame for it)."""
    from collections import deque

    last: Degrain | None = None
    for stage in stages:
        if isinstance(stage, Degrain):
            last = stage
        elif isinstance(stage, Regrain) and last is not None:
            stage.source, last.measured = last, deque()
    return stages


def build_chain(specs: list[tuple[str, dict[str, object]]], ctx: StageContext) -> list[Stage]:
    """Build a run's stages in order (``(type, options)`` each) and :func:`link` them."""
    check_chain(specs)
    return link([build_stage(t, dict(o), ctx) for t, o in specs])


def check_chain(specs: list[tuple[str, dict[str, object]]]) -> None:
    """Fail fast on an order of stages that cannot work: ``regrain`` with neither a ``degrain``
    before it nor its own ``sigma``.

    Raises:
        ConfigError: as above.
    """
    from restora.errors import ConfigError

    seen = set()
    for t, options in specs:
        if t == "regrain" and "degrain" not in seen and options.get("sigma") is None:
            raise ConfigError("regrain needs a degrain stage before it (whose grain it matches), or sigma=...")
        seen.add(t)
