"""A model pack's fusion calibration (``clinic-export fit``) applied to the room's config at start.

With ``fusion.calibration = "pack"`` (the default) and a pack that holds one, the fitted late-fusion
weights, per-channel and fused temperatures, the voice's tempering and the disparity threshold
replace the config file's; everything else stays as configured. The result is validated like any
config, and the log says where the values came from.
"""

from __future__ import annotations

import logging

from edge.config.models import (
    AppConfig,
    ChannelTemperatures,
    DisparityConfig,
    FusionConfig,
    FusionWeights,
    VoiceChannelConfig,
)
from edge.inference.pack import open_pack, trust_pack

logger = logging.getLogger(__name__)


def calibrated(config: AppConfig) -> AppConfig:
    """``config`` with the pack's fitted fusion, where it has one and the room takes it."""
    if config.fusion.calibration != "pack" or config.models.pack is None:
        return config
    trust_pack(config.models)
    index = open_pack(config.models.pack)
    fit = index.calibration
    if fit is None:
        return config
    weights = FusionWeights.model_validate(
        {
            **config.fusion.weights.model_dump(),
            **{k: v for k, v in fit.weights.items() if k in FusionWeights.model_fields},
        }
    )
    temperatures = ChannelTemperatures.model_validate(
        {
            **config.fusion.channel_temperatures.model_dump(),
            **{k: v for k, v in fit.channel_temperatures.items() if k in ChannelTemperatures.model_fields},
        }
    )
    fusion = FusionConfig.model_validate(
        {
            **config.fusion.model_dump(),
            "weights": weights.model_dump(),
            "channel_temperatures": temperatures.model_dump(),
            "temperature": fit.temperature,
        }
    )
    voice = VoiceChannelConfig.model_validate({**config.channels.voice.model_dump(), "tempering": fit.voice_tempering})
    channels = config.channels.model_copy(update={"voice": voice})
    disparity = config.disparity
    if fit.disparity_threshold is not None:
        disparity = DisparityConfig.model_validate({**disparity.model_dump(), "threshold": fit.disparity_threshold})
    logger.info(
        "fusion calibrated by pack %s (release %s): weights %s, temperatures %s, voice tempering %.3f, disparity %.2f",
        index.name,
        index.release,
        weights.model_dump(),
        temperatures.model_dump(),
        fit.voice_tempering,
        disparity.threshold,
    )
    return config.model_copy(update={"fusion": fusion, "channels": channels, "disparity": disparity})
