"""How a window's channels become one result: fusion, explanations, disparity."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from clinic_common.config import StrictModel
from edge.config.plugins import voter_values


class _PerVoter(StrictModel):
    """One number per voting channel: the product's three as fields, another registered voter's
    beside them (checked against the room's registry, within the same bounds)."""

    model_config = StrictModel.model_config | {"title": "per channel", "extra": "allow"}
    BOUNDS: ClassVar[tuple[float, float]]

    @model_validator(mode="after")
    def _registered_voters(self, info: ValidationInfo) -> _PerVoter:
        voter_values(self.__pydantic_extra__, info, *self.BOUNDS)
        return self


class FusionWeights(_PerVoter):
    """Late fusion's weight of each voting channel, before its reliability."""

    BOUNDS = (0.0, 10.0)
    face: float = Field(default=1.0, ge=0.0, le=10.0)
    voice: float = Field(default=1.0, ge=0.0, le=10.0)
    words: float = Field(default=1.0, ge=0.0, le=10.0)


class ChannelTemperatures(_PerVoter):
    """Each voting channel's own temperature, applied before the pool."""

    BOUNDS = (0.05, 20.0)
    face: float = Field(default=1.0, gt=0.05, le=20.0)
    voice: float = Field(default=1.0, gt=0.05, le=20.0)
    words: float = Field(default=1.0, gt=0.05, le=20.0)


class FusionConfig(StrictModel):
    calibration: Literal["pack", "config"] = Field(
        default="pack",
        description="pack: where the model pack holds a calibration fitted from labels (`clinic-export fit`), its "
        "weights, temperatures, the voice's tempering and the disparity threshold replace this file's; config: "
        "this file's values always.",
    )
    method: Literal["auto", "late"] = Field(
        default="auto",
        description="auto: the model pack's fusion head when it has one trained on the channels' distributions; "
        "late: the weighted late fusion.",
    )
    weights: FusionWeights = Field(
        default=FusionWeights(), description="Late fusion: each channel's weight before its reliability."
    )
    channel_temperatures: ChannelTemperatures = Field(
        default=ChannelTemperatures(),
        description="Late fusion: each channel's distribution is flattened (above 1) or sharpened (below 1) by its "
        "own temperature before the pool.",
    )
    temperature: float = Field(
        default=1.0,
        gt=0.05,
        le=20.0,
        description="Calibration temperature of the fused distribution (fit it with `clinic-export fit-temperature`).",
    )
    min_confidence: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Below this top probability the window abstains ('uncertain')."
    )
    mixed_margin: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Top two classes closer than this make the window 'mixed'."
    )


class ExplainConfig(StrictModel):
    """Which windows carry an explanation (face maps, voice segments, words, Shapley values)."""

    when: Literal["every", "disagreement", "request", "off"] = Field(
        default="disagreement",
        description="Windows explained: every one; those whose channels disagree or whose result is mixed or "
        "uncertain; only on request (the explain command); or none. Requests count in every mode but off.",
    )
    grid: int = Field(default=8, ge=2, le=16, description="Face occlusion map: cells per side of the aligned face.")


class DisparityConfig(StrictModel):
    """Moments where face, voice and words disagree."""

    enabled: bool = Field(default=True, description="Score each window's disagreement between face, voice and words.")
    # Chosen on generated clips (benchmarks/disparity.py): every smiling face over sad words makes an event,
    # no congruent clip does; acoustic cues alone (weight 0.5) can never reach 0.6.
    threshold: float = Field(
        default=0.6, ge=0.05, le=1.0, description="Windows scoring at least this (0-1) count as disparate."
    )
    min_duration_s: float = Field(
        default=3.0, ge=0.0, le=600.0, description="A run of disparate windows this long (seconds) becomes an event."
    )
