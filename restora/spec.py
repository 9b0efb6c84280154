"""Small pydantic specs that tasks exchange (references and parameters, never pixels)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from restora.errors import ConfigError, StageNotImplementedError

Preset = Literal["fidelity", "forensic", "broadcast", "archival-film"]


class StageSpec(BaseModel):
    """One restoration stage: ``type`` picks the registered class, ``options`` its parameters.

    ``shots`` overrides options for single shots (shot index -> options merged over ``options``),
    e.g. ``{"type": "sr", "options": {"strength": 1.0}, "shots": {"3": {"strength": 0.5}}}`` to
    restore shot 3 more gently. A chunk's cache key holds only the options effective for its
    shot, so changing one shot's override re-renders that shot's chunks and reuses the others.
    """

    type: str
    options: dict[str, Any] = Field(default_factory=dict)
    shots: dict[int, dict[str, Any]] = Field(default_factory=dict, description="per-shot option overrides")

    def for_shot(self, shot: int | None) -> StageSpec:
        """This stage with the options effective for ``shot`` (None: the base options)."""
        extra = self.shots.get(shot, {}) if shot is not None else {}
        return StageSpec(type=self.type, options={**self.options, **extra})

    def key(self) -> str:
        """Stable text of this stage's base options for cache keys (use :meth:`for_shot` first for a chunk)."""
        return f"{self.type}:{json.dumps(self.options, sort_keys=True)}"


class RestoreSpec(BaseModel):
    """Parameters of one ``restore_video`` flow run."""

    input: str = Field(description="input file path or URI")
    output: str = Field(description="output file path or URI; the extension picks the container")
    preset: Preset = "fidelity"
    scale: Literal[1, 2, 4] = 2
    stages: list[StageSpec] = Field(default_factory=list, description="explicit stages; empty = preset's")
    crf: float = Field(16.0, ge=0, le=51)
    x264_preset: str = "fast"
    bit_depth: Literal[8, 10] | None = Field(
        None, description="output bits per sample; None: the source's (10 for HDR, FFV1 and ProRes keep theirs)"
    )
    chunk_frames: int = Field(120, ge=1, le=100000, description="longest chunk of a shot, in frames")
    field_rate: bool = Field(
        False,
        description="interlaced sources: one output frame per field (50i -> 50p, 59.94i -> 59.94p) instead of "
        "one per frame; progressive sources are not affected",
    )
    reinterlace: bool = Field(
        False,
        description="interlaced sources: restore each field's picture at its own instant (as field_rate), then "
        "weave the restored fields back into interlaced frames at the source's rate, field order and timecode, "
        "for an interlaced delivery chain (1080i25 in, 1080i25 out)",
    )
    mxf_codec: Literal["dnxhr", "xdcam"] | None = Field(
        None,
        description="MXF output only: dnxhr (intra-only DNxHR HQ/HQX/444) or xdcam (XDCAM HD422: 8-bit MPEG-2 "
        "4:2:2, long GOP, 50 Mbit/s HD); None: DNxHR, XDCAM HD422 where re-interlaced (DNxHR has no interlaced coding)",
    )

    @property
    def decode_fields(self) -> bool:
        """Whether an interlaced source is decoded at one picture per field (field_rate or reinterlace)."""
        return self.field_rate or self.reinterlace

    def resolved_stages(self) -> list[StageSpec]:
        """The stage list this run executes: explicit stages, else the preset's."""
        stages = list(self.stages) if self.stages else preset_stages(self.preset, self.scale)
        sr = [s for s in stages if s.type == "sr"]
        if self.scale > 1 and not sr:  # before the first stage that belongs after SR (grain re-synthesis)
            at = next((i for i, s in enumerate(stages) if s.type in AFTER_SR), len(stages))
            stages.insert(at, StageSpec(type="sr", options={"scale": self.scale}))
        for s in stages:
            if s.type == "sr":
                s.options.setdefault("scale", self.scale)
                if s.options["scale"] != self.scale:
                    raise ConfigError(f"sr stage scale {s.options['scale']} differs from --scale {self.scale}")
        if self.scale == 1 and sr:
            raise ConfigError("an sr stage needs --scale 2 or 4")
        from restora.stages import REGISTRY, check_chain, check_stage

        for s in stages:
            if s.type == "sr" and any("scale" in o for o in s.shots.values()):
                raise ConfigError("the sr scale is the run's --scale: it cannot change per shot")
            for options in (s.options, *s.shots.values()):
                check_stage(s.type, options)
        check_chain([(s.type, s.options) for s in stages])
        if self.preset == "forensic":
            made_up = [s.type for s in stages if REGISTRY[s.type].synthesizes]
            if made_up:
                raise ConfigError(f"the forensic preset refuses stages that synthesize pixels: {', '.join(made_up)}")
        return stages

    def stages_for(self, shot: int | None) -> list[StageSpec]:
        """The resolved stages with the options effective for ``shot`` (per-shot overrides applied)."""
        return [s.for_shot(shot) for s in self.resolved_stages()]

    def digest(self, shot: int | None = None) -> str:
        """Hash of everything that changes the pixels of ``shot``'s chunks (stages with the options
        effective for that shot, scale, encoding); ``shot=None`` hashes the base options."""
        payload = json.dumps(
            {
                "stages": [s.key() for s in self.stages_for(shot)],
                "scale": self.scale,
                "crf": self.crf,
                "x264_preset": self.x264_preset,
                "bit_depth": self.bit_depth,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# Stages each preset runs, in order, with their options (ARCHITECTURE.md section 8); SR is added for
# scale > 1, before the stages of AFTER_SR. Unimplemented ones raise. ``broadcast`` deblocks as
# strongly as the source's own quantiser calls for (``strength=auto``): at full strength the blind
# model removes texture from lightly compressed sources (README, deblock).
PRESET_STAGES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "fidelity": [],
    "forensic": [],
    "broadcast": [("deblock", {"strength": "auto"}), ("denoise", {}), ("deflicker", {})],
    "archival-film": [("stabilize", {}), ("deflicker", {}), ("dust_scratch", {}), ("degrain", {}), ("regrain", {})],
}
AFTER_SR = frozenset({"regrain"})  # preset stages that run on the upscaled frames: SR goes in before them


def preset_stages(preset: str, scale: int) -> list[StageSpec]:
    """Stage specs for a preset (SR is appended by :meth:`RestoreSpec.resolved_stages`)."""
    if preset not in PRESET_STAGES:
        raise ConfigError(f"unknown preset {preset!r}")
    from restora.stages import IMPLEMENTED

    missing = [s for s, _ in PRESET_STAGES[preset] if s not in IMPLEMENTED]
    if missing:
        raise StageNotImplementedError(
            f"preset {preset!r} needs stages not implemented yet: {', '.join(missing)} "
            f"(available: {', '.join(sorted(IMPLEMENTED))})"
        )
    return [StageSpec(type=s, options=dict(o)) for s, o in PRESET_STAGES[preset]]


class ShotSpec(BaseModel):
    """One shot (or one chunk of a long shot): frames ``[start, stop)`` in stream order."""

    shot: int
    chunk: int = 0
    start: int
    stop: int
    start_s: float
    end_s: float
    planned_at: float | None = Field(None, description="wall-clock time the chunk was planned (queue-wait metric)")
    shot_start: int | None = Field(None, description="first frame of the whole shot (temporal context; default start)")
    shot_stop: int | None = Field(None, description="end of the whole shot (temporal context; default stop)")

    @property
    def frames(self) -> int:
        return self.stop - self.start
