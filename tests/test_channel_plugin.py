"""A channel is a plug-in from end to end: its own configuration section, its own model in the
room's signed model pack, a vote, an explanation and its part of the report, the review page's
timeline and the FHIR bundle, added here in a test with no product file touched.

The channel ("gaze": how still the client's gaze was, from the face's centre) is small on purpose.
Its model is a real ONNX graph (logits from the spread of the face's centre, softmax) added to a copy
of the default pack under its own role and re-signed; the room loads it from the pack on its
inference backend like any other model. It runs in a real appliance on the demo clip with SQLite.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from clinic_signals.fusion import ChannelVote
from contract.classes import CLASSES
from contract.files import sha256_file
from edge.channels.base import (
    Channel,
    ChannelState,
    ExplainModels,
    FrameContext,
    FrameHook,
    FrameModels,
    LoadedModels,
    PackModels,
    Stateless,
    WindowContext,
)
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config import load_config
from edge.config.models import AppConfig
from edge.errors import ConfigError
from edge.inference.base import InferenceEngine
from tests.conftest import CONSENT, sign_pack, write_config

ROLE = "gaze"


class GazeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    min_frames: int = Field(default=3, ge=2, le=30)


@dataclass(frozen=True, slots=True)
class GazeResult:
    spread_px: float
    quality: str
    probs: tuple[float, ...] | None


class GazeState(Stateless):
    def __init__(self, settings: GazeConfig, engine: InferenceEngine) -> None:
        self.settings = settings
        self.engine = engine

    def analyze(self, context: WindowContext) -> GazeResult | None:
        centres = [f.values["gaze"] for f in context.window.frames if "gaze" in f.values]
        if len(centres) < self.settings.min_frames:
            return None
        spread = float(np.std(centres))
        probs = self.engine.infer(np.array([[spread]], dtype=np.float32))[0]
        return GazeResult(round(spread, 3), "good", tuple(round(float(p), 5) for p in probs))


def centre(frame: FrameContext) -> None:
    if frame.face is not None:
        frame.values["gaze"] = frame.face.center[0]


def why(context: WindowContext, result: GazeResult | None) -> dict[str, Any] | None:
    centres = [f.values["gaze"] for f in context.window.frames if "gaze" in f.values]
    if result is None or len(centres) < 2:
        return None
    return {"largest_step_px": round(float(np.max(np.abs(np.diff(centres)))), 3)}


class Gaze(Channel):
    name = "gaze"
    result = GazeResult
    votes = True
    config_model = GazeConfig

    @override
    def load_models(self, config: AppConfig, pack: PackModels) -> InferenceEngine | None:
        return pack.engine(ROLE) if self.settings(config).enabled else None

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> GazeState | None:
        engine = models.own.get(self.name)
        return GazeState(self.settings(config), engine) if engine is not None else None

    @override
    def frame_hook(self, config: AppConfig, models: FrameModels) -> FrameHook:
        return centre

    @override
    def explainer(self, config: AppConfig, state: ChannelState, models: ExplainModels) -> Any:
        return why

    @override
    def vote(self, result: GazeResult | None) -> ChannelVote:
        return ChannelVote(self.name, None, "") if result is None else ChannelVote(self.name, result.probs, "good")

    @override
    def restore(self, raw: Mapping[str, Any]) -> GazeResult:
        return GazeResult(raw["spread_px"], raw["quality"], tuple(raw["probs"]) if raw["probs"] else None)

    @override
    def report_section(self, explanations: Sequence[Mapping[str, Any]]) -> str | None:
        steps = [e["largest_step_px"] for e in explanations if "largest_step_px" in e]
        if not steps:
            return None
        return f"<h3>Gaze</h3><p>Largest step of the face's centre: {html.escape(f'{max(steps):.1f}')} px.</p>"


def gaze_model(path: Path) -> None:
    """spread (N, 1) -> probabilities over the eight classes (N, 8): calm when the face is still."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((1, len(CLASSES)), np.float32)
    weights[0, CLASSES.index("calm")] = -0.2
    weights[0, CLASSES.index("fearful")] = 0.2
    bias = np.zeros(len(CLASSES), np.float32)
    bias[CLASSES.index("calm")] = 3.0
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["spread", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "gaze",
        [helper.make_tensor_value_info("spread", TensorProto.FLOAT, ["n", 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", len(CLASSES)])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.fixture(scope="module")
def gaze_pack(default_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pack with the gaze model added under its own role, re-signed."""
    pack = tmp_path_factory.mktemp("pack") / "pack"
    shutil.copytree(default_pack, pack)
    folder = pack / "gaze-still"
    folder.mkdir()
    onnx_path = folder / "gaze-still.fp32.onnx"
    gaze_model(onnx_path)
    template = json.loads((pack / "speaker-ge2e" / "speaker-ge2e.fp32.json").read_text(encoding="utf-8"))
    manifest = {
        **{k: template[k] for k in ("manifest_version", "format", "precision", "classes")},
        "name": "gaze-still",
        "task": ROLE,
        "file": onnx_path.name,
        "sha256": sha256_file(onnx_path),
        "input": {**template["input"], "name": "spread", "shape": [None, 1], "layout": "NC", "features": "gaze"},
        "output": {"name": "probs", "labels": list(CLASSES), "activation": "softmax"},
        "label_map": {c: {c: 1.0} for c in CLASSES},
    }
    onnx_path.with_suffix(".json").write_text(json.dumps(manifest), encoding="utf-8")
    index = json.loads((pack / "pack.json").read_text(encoding="utf-8"))
    index["models"]["gaze-still"] = {
        "role": ROLE,
        "architecture": "linear-softmax",
        "variants": {"fp32": "gaze-still/gaze-still.fp32.onnx"},
        "files": [],
        "card": {"data": "none (a test model)", "licence": "test", "intended_use": "tests", "limits": []},
    }
    for rel in ("gaze-still/gaze-still.fp32.onnx", "gaze-still/gaze-still.fp32.json"):
        index["files"][rel] = sha256_file(pack / rel)
    (pack / "pack.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return sign_pack(pack)


def registry_with_gaze() -> ChannelRegistry:
    registry = default_registry()
    registry.register(Gaze())
    return registry


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "registry", "message"),
    [
        ("[channels.gaze]\nmin_frames = 4\n", None, r"\[channels.gaze\]: no registered channel"),
        ("[channels.gazee]\nmin_frames = 4\n", registry_with_gaze(), r"\[channels.gazee\]: no registered channel"),
        ("[channels.gaze]\nmin_frames = 1\n", registry_with_gaze(), "min_frames"),
        ("[channels.gaze]\nmin_frame = 4\n", registry_with_gaze(), "min_frame"),
        ("[fusion.weights]\ngaze = 11.0\n", registry_with_gaze(), "gaze = 11.0: must be a number from 0 to 10"),
        ("[fusion.weights]\npulse = 1.0\n", registry_with_gaze(), "pulse: not a registered voting channel"),
    ],
)
def test_a_channels_own_section_is_checked_by_its_own_model(
    tmp_path: Path, extra: str, registry: ChannelRegistry | None, message: str
) -> None:
    path = write_config(
        tmp_path / "room.toml", face_model=Path("f.onnx"), state_dir=tmp_path, mqtt_port=None, extra=extra
    )
    with pytest.raises(ConfigError, match=message):
        load_config(path, registry)


def test_a_plugin_channel_with_its_own_config_and_pack_model_runs_in_the_room(
    tmp_path: Path, gaze_pack: Path, demo_clip: Path
) -> None:
    from edge.report.data import load_session
    from edge.report.render import render_html
    from edge.review.fhir import build_bundle, report_for
    from edge.review.timeline import timeline_data
    from edge.runtime import Appliance

    registry = registry_with_gaze()
    path = write_config(
        tmp_path / "room.toml",
        face_model=Path(),
        state_dir=tmp_path / "state",
        mqtt_port=None,
        pack=gaze_pack,
        extra='[channels.gaze]\nmin_frames = 4\n[fusion.weights]\ngaze = 2.0\n[explain]\nwhen = "every"\n',
    )
    config = load_config(path, registry)
    assert Gaze().settings(config) == GazeConfig(min_frames=4)
    assert config.fusion.weights.model_dump()["gaze"] == 2.0  # the late fusion's weights, as it reads them
    report = Appliance(config, demo_clip.as_uri(), registry=registry).run(consent=CONSENT)
    session = load_session(report.database, report.session_id, registry)
    results = [w.channels["gaze"] for w in session.windows if "gaze" in w.channels]
    assert results, "the model from the pack analysed the windows with a face"
    still = [r for r in results if r.spread_px < 5]
    assert still and all(max(r.probs) == r.probs[CLASSES.index("calm")] for r in still), "the pack's model ran"
    assert all(abs(sum(r.probs) - 1) < 1e-3 for r in results)
    # Explained in every window it analysed, and shown in the report's explanations by the channel itself.
    assert all(w.explained("gaze", "largest_step_px") is not None for w in session.windows if "gaze" in w.channels)
    page = render_html(session, config, registry)
    assert 'id="explained-gaze"' in page and "Largest step of the face" in page
    # The review page's timeline has its row, the FHIR bundle its Observation.
    timeline = timeline_data(session, registry, transcripts_kept=False)
    assert "gaze" in timeline["channels"]
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    bundle = build_bundle(session, config, report_for(tmp_path / "report.html", None), None, registry)
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert any("gaze" in json.dumps(o.get("code", {})) for o in observations), "its own Observation"


@pytest.mark.unit
def test_a_plugin_channels_section_is_in_the_reference_and_the_example(tmp_path: Path) -> None:
    from edge.config import reference

    registry = registry_with_gaze()
    assert "[channels.gaze]" not in reference.example_toml()
    example = reference.example_toml(registry)
    assert "[channels.gaze]\nenabled = true\nmin_frames = 3\n" in example
    assert "## `[channels.gaze]`" in reference.reference_markdown(registry)
    path = tmp_path / "room.toml"
    path.write_text(example, encoding="utf-8")
    assert Gaze().settings(load_config(path, registry)) == GazeConfig()
