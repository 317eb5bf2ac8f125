"""Channels are plug-ins: a channel registered beside the product's four reaches the fused result, the
stored window, the published summary and the report, with no other code changed.

The extra channel is small on purpose ("steadiness": how little the client's face moved in the
window, voting calm when it was steady); its per-frame hook reads the face's centre, its window
analysis the spread, its explanation the largest step between frames. It runs in a real appliance on
the demo clip, with SQLite, mosquitto and the session report.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import override

from clinic_signals.fusion import ChannelVote
from contract.classes import CLASSES
from contract.payload import Summary
from edge.channels.base import (
    Channel,
    ChannelState,
    ExplainModels,
    FrameContext,
    FrameHook,
    FrameModels,
    LoadedModels,
    Stateless,
    WindowContext,
)
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config import load_config
from edge.config.models import AppConfig
from edge.report.data import load_session
from edge.report.render import render_html
from edge.runtime import Appliance
from tests.conftest import CONSENT, Broker, Collector, write_config

CALM = tuple(0.9 if c == "calm" else 0.1 / 7 for c in CLASSES)


@dataclass(frozen=True, slots=True)
class SteadyResult:
    spread_px: float  # standard deviation of the face centre's x over the window
    quality: str
    probs: tuple[float, ...] | None


class SteadySummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    spread_px: float = Field(ge=0.0)
    quality: str


def centre(frame: FrameContext) -> None:
    """Per frame: where the client's face is (a number, never pixels)."""
    if frame.face is not None:
        frame.values["steadiness"] = frame.face.center[0]


class SteadyState(Stateless):
    def analyze(self, context: WindowContext) -> SteadyResult | None:
        centres = [f.values["steadiness"] for f in context.window.frames if "steadiness" in f.values]
        if len(centres) < 3:
            return None
        spread = float(np.std(centres))
        return SteadyResult(round(spread, 3), "good", CALM if spread < 20 else None)


def largest_step(context: WindowContext, result: SteadyResult | None) -> dict[str, Any] | None:
    """Its explanation: the largest move of the face's centre between two frames of the window."""
    centres = [f.values["steadiness"] for f in context.window.frames if "steadiness" in f.values]
    if result is None or len(centres) < 2:
        return None
    return {"largest_step_px": round(float(np.max(np.abs(np.diff(centres)))), 3)}


class Steadiness(Channel):
    name = "steadiness"
    result = SteadyResult
    votes = True
    summary_model = SteadySummary

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> SteadyState:
        return SteadyState()

    @override
    def frame_hook(self, config: AppConfig, models: FrameModels) -> FrameHook:
        return centre

    @override
    def explainer(self, config: AppConfig, state: ChannelState, models: ExplainModels) -> Any:
        return largest_step

    @override
    def vote(self, result: SteadyResult | None) -> ChannelVote:
        return ChannelVote(self.name, None, "") if result is None else ChannelVote(self.name, result.probs, "good")

    @override
    def summarize(self, results: Sequence[SteadyResult]) -> SteadySummary:
        return SteadySummary(spread_px=float(np.mean([r.spread_px for r in results])), quality="good")

    @override
    def restore(self, raw: Mapping[str, Any]) -> SteadyResult:
        return SteadyResult(raw["spread_px"], raw["quality"], tuple(raw["probs"]) if raw["probs"] else None)


@pytest.mark.unit
def test_the_registry_refuses_a_second_channel_of_a_name() -> None:
    registry = default_registry()
    assert registry.names == ("face", "voice", "words", "pulse")
    assert registry.wire().summary is Summary  # the contract's own models for the product's channels
    registry.register(Steadiness())
    extended = registry.wire()
    assert extended.summary is not Summary and "steadiness" in extended.channels
    assert registry.wire() is extended  # built once, not per summary
    with pytest.raises(ValueError, match=r"already registered; registered: face, voice, words, pulse, steadiness"):
        registry.register(Steadiness())
    with pytest.raises(KeyError, match="no channel named 'gaze'; registered: face, voice, words, pulse, steadiness"):
        registry["gaze"]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["Steady", "2d", "steady-ness", "_steady", "s" * 33])
def test_a_channel_name_must_fit_a_column_a_field_and_an_event(name: str) -> None:
    class Named(Steadiness):
        pass

    Named.name = name
    with pytest.raises(ValueError, match="must be 1-32 lowercase letters"):
        default_registry().register(Named())


@pytest.mark.unit
def test_a_registered_voting_channel_can_be_a_side_of_a_disparity_event() -> None:
    """The event's sides are any channel the registry accepts, not the product's three: an event
    with the extra channel validates (it used to fail inside the store's transaction)."""
    from edge.publish.payload import disparity_event
    from edge.results import DisparityEvent

    registry = default_registry()
    registry.register(Steadiness())
    assert "steadiness" in [c.name for c in registry.voters]
    event = disparity_event(
        DisparityEvent(start_s=4.0, end_s=9.0, peak=0.8, mean=0.7, windows=6, pair=("face", "steadiness")),
        session_id="0" * 8 + "-0000-4000-8000-" + "0" * 12,
        site="s",
        room="r",
        device_id="d",
        seq=1,
        message_id="1" * 8 + "-1111-4111-8111-" + "1" * 12,
    )
    assert (event.first, event.second) == ("face", "steadiness")


def test_a_registered_channel_reaches_fusion_store_summary_and_report(
    tmp_path: Path, face_model: Path, demo_clip: Path, broker: Broker, collector: Collector
) -> None:
    registry = ChannelRegistry([*default_registry(), Steadiness()])
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=face_model,
            state_dir=tmp_path / "state",
            mqtt_port=broker.port,
            extra='[explain]\nwhen = "every"\n',
        )
    )
    report = Appliance(config, demo_clip.as_uri(), registry=registry).run(consent=CONSENT)
    assert report.windows == 13

    # Fused: the face windows fuse the new channel as well, and it gets its Shapley share.
    summaries = collector.wait_for("summary", report.windows)
    fused = [s for s in summaries if s["emotion"]["fused"]["steadiness"]]
    assert fused, "the per-frame hook found the face's centre, and the steady face votes calm"
    assert all(s["emotion"]["fused"]["face"] for s in fused)
    assert all(s["emotion"]["contributions"]["steadiness"] is not None for s in fused)
    # The summary carries its part; the hub's contract (which does not list it) refuses it.
    assert all(s["modalities"]["steadiness"]["spread_px"] >= 0 for s in fused)
    registry.wire().summary.model_validate(fused[0])
    with pytest.raises(ValidationError, match="steadiness"):
        Summary.model_validate(fused[0])
    # Stored: its own column, read back by the channel itself.
    conn = sqlite3.connect(report.database)
    stored = [json.loads(v) for (v,) in conn.execute("SELECT steadiness FROM windows WHERE steadiness IS NOT NULL")]
    conn.close()
    assert len(stored) >= len(fused) and all(v["quality"] == "good" for v in stored)
    session = load_session(report.database, report.session_id, registry)
    restored = [w.channels["steadiness"] for w in session.windows if "steadiness" in w.channels]
    assert [r.spread_px for r in restored] == [v["spread_px"] for v in stored]
    # Explained: its own part of every explained window's explanation, beside the face's map.
    steps = [w.explained("steadiness", "largest_step_px") for w in session.windows]
    assert sum(s is not None for s in steps) == len(restored)
    assert all(s >= 0 for s in steps if s is not None)
    assert any(w.explained("face", "map") for w in session.windows)
    # The report: its coverage row, its contribution and its timeline row.
    page = render_html(session, config, registry)
    assert "<td>steadiness</td>" in page
    assert "the steadiness channel in" in page
    # The product's own channels still report as before.
    assert all(s["modalities"]["voice"] is not None for s in summaries)
