"""The fusion a report replays for its figures: the room's (the pack's fusion head when it has
one), with the pack authenticated first (a report is often its process's first use of it)."""

from __future__ import annotations

import logging

from clinic_signals.fusion import Fuser, LateFusion, WindowFusion
from edge.channels.load import fusion_head
from edge.channels.registry import ChannelRegistry
from edge.config.models import AppConfig
from edge.inference.pack import trust_pack
from edge.report.data import SessionData
from edge.report.figures import SessionFigures, figures

logger = logging.getLogger(__name__)


def fusion_for(config: AppConfig, registry: ChannelRegistry) -> tuple[WindowFusion, Fuser]:
    """The fusion the room uses (the pack's head when it has one), for the permutation importance.
    The pack is authenticated here: a report is often its process's first use of it."""
    pack = config.models.pack
    head = None
    if pack and config.fusion.method == "auto":
        trust_pack(config.models)
        head = fusion_head(config, pack, registry)
    fuser: Fuser = (
        head
        if head is not None
        else LateFusion(config.fusion.weights.model_dump(), config.fusion.channel_temperatures.model_dump())
    )
    return WindowFusion(fuser, config.fusion), fuser


def session_figures(session: SessionData, config: AppConfig, registry: ChannelRegistry) -> tuple[SessionFigures, str]:
    """The numbers behind a report of ``session`` and the fusion method they were computed with."""
    fusion, fuser = fusion_for(config, registry)
    try:
        return figures(session, fusion, registry), fuser.method
    finally:
        close = getattr(fuser, "engine", None)
        if close is not None:
            close.close()
