"""A session's channels: fresh per-session state for every channel the room runs (in the
registry's order), the speaker attribution, the fusion, the disparity tracker and the explainer,
built from the models :class:`edge.channels.load.ChannelModels` loaded once for the room."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from clinic_signals.fusion import Fuser, LateFusion, WindowFusion
from edge.analysis.summarize import SessionChannels
from edge.channels.base import ExplainModels, LoadedModels
from edge.channels.registry import ChannelRegistry
from edge.config.models import AppConfig
from edge.disparity.score import DisparityTracker
from edge.explain.policy import Explainer
from edge.explain.worker import ExplanationWorker
from edge.fusion.head import HeadFusion
from edge.inference.face import FaceExpressionModel
from edge.speakers.attribution import SpeakerSession
from edge.speakers.encoder import SpeakerEncoder
from edge.speakers.staff import StaffVoices

logger = logging.getLogger(__name__)


def staff_dir(config: AppConfig) -> Path:
    """Where the room's enrolled staff voices are."""
    return config.speakers.staff_dir or config.storage.state_dir / "staff-voices"


def build(
    config: AppConfig,
    registry: ChannelRegistry,
    loaded: LoadedModels,
    *,
    head: HeadFusion | None,
    speaker: SpeakerEncoder | None,
    face_model: FaceExpressionModel | None = None,
    requested: Callable[[float], bool] = lambda _t: False,
    live: bool = False,
) -> SessionChannels:
    """The session's channels; the explainer runs ``face_model`` for face maps and honours
    ``requested`` explanation periods."""
    states = {}
    for channel in registry:
        state = channel.session(config, loaded, live=live)
        if state is not None:
            states[channel.name] = state
    fuser: Fuser = (
        head
        if head is not None
        else LateFusion(config.fusion.weights.model_dump(), config.fusion.channel_temperatures.model_dump())
    )
    disparity = config.disparity
    explain = ExplainModels(face=face_model, speech=loaded.speech)
    speakers = None
    if speaker is not None:
        staff = StaffVoices(staff_dir(config)).embeddings(speaker)
        if not staff.ids:
            logger.warning(
                "no staff voice is enrolled in %s: every voice is analysed as the client's until staff enrol "
                "(clinic-edge staff-voice enroll)",
                staff_dir(config),
            )
        speakers = SpeakerSession(speaker, staff, config.speakers)
    explainer = (
        Explainer(
            config.explain,
            {
                c.name: e
                for c in registry
                if c.name in states and (e := c.explainer(config, states[c.name], explain)) is not None
            },
            disparity_threshold=disparity.threshold,
            requested=requested,
        )
        if config.explain.when != "off"
        else None
    )
    return SessionChannels(
        speakers=speakers,
        states=states,
        fusion=WindowFusion(fuser, config.fusion),
        disparity=DisparityTracker(disparity.threshold, disparity.min_duration_s) if disparity.enabled else None,
        explainer=explainer,
        explanations=ExplanationWorker(explainer) if explainer is not None and live else None,
        registry=registry,
        max_wait_s=config.channels.words.max_wait_s,
    )
