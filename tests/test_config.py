"""Room configuration: validated once, with messages that name the key, the value and what is allowed."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_config
from edge.config.load import parse_config
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BASE: dict[str, Any] = {
    "room": {"site": "north", "room": "room-1", "device_id": "edge-1"},
    "models": {"face": "models/face.onnx"},
}


def _with(section: str, **values: Any) -> dict[str, Any]:
    data = {k: dict(v) for k, v in BASE.items()}
    data.setdefault(section, {}).update(values)
    return data


@pytest.mark.unit
@pytest.mark.parametrize(
    ("data", "expectation"),
    [
        (BASE, nullcontext()),
        (_with("capture", source="rtsp://cam.local/stream", analysis_fps=15), nullcontext()),
        (_with("windows", length_s=2.5, hop_s=1.0), nullcontext()),
        (_with("mqtt", summary="interval", interval_s=30), nullcontext()),
        (
            _with(
                "inference",
                backends=[{"backend": "tensorrt", "engine_dir": "/e"}, {"backend": "onnxruntime"}],
            ),
            nullcontext(),
        ),
        (
            _with("capture", analysis_fps=60),
            pytest.raises(ConfigError, match=r"capture\.analysis_fps = 60: .*less than or equal to 30"),
        ),
        (
            _with("capture", source="http://x"),
            pytest.raises(ConfigError, match=r"capture\.source = 'http://x': must start with v4l2://"),
        ),
        (
            _with("capture", width=642),
            pytest.raises(ConfigError, match=r"capture\.width = 642: .*multiple of 4"),
        ),
        (
            _with("capture", microphone="usb"),
            pytest.raises(ConfigError, match=r"capture\.microphone = 'usb'"),
        ),
        (_with("capture", fps=10), pytest.raises(ConfigError, match=r"capture\.fps: unknown key")),
        (_with("channels", pulse={"mesh_every": 3}), nullcontext()),
        (
            _with("channels", pulse={"mesh_every": 4}),
            pytest.raises(ConfigError, match=r"channels\.pulse\.mesh_every = 4: .*less than or equal to 3"),
        ),
        (
            _with("windows", length_s=2.0, hop_s=3.0),
            pytest.raises(ConfigError, match=r"hop_s \(3\.0\) must not exceed length_s \(2\.0\)"),
        ),
        (
            _with("room", site="North Clinic"),
            pytest.raises(ConfigError, match=r"room\.site = 'North Clinic': must be 1-63 characters"),
        ),
        (_with("mqtt", port=70000), pytest.raises(ConfigError, match=r"mqtt\.port = 70000")),
        (
            _with("mqtt", password_file="/run/pw"),
            pytest.raises(ConfigError, match=r"password_file is set but username is not"),
        ),
        (
            _with("mqtt", topic_prefix="clinic/#"),
            pytest.raises(ConfigError, match=r"mqtt\.topic_prefix = 'clinic/#'"),
        ),
        (
            _with("mqtt", summary="hourly"),
            pytest.raises(ConfigError, match=r"mqtt\.summary = 'hourly': Input should be 'window' or 'interval'"),
        ),
        (
            _with("inference", backends=[{"backend": "openvino"}]),
            pytest.raises(ConfigError, match=r"inference\.backends\.0"),
        ),
        (_with("inference", backends=[]), pytest.raises(ConfigError, match=r"inference\.backends = \[\]")),
        ({"room": BASE["room"]}, pytest.raises(ConfigError, match=r"models: required but missing")),
        ({**BASE, "models": {"pack": "packs/main", "precision": "int8", "trusted_keys": ["k.pub"]}}, nullcontext()),
        (
            {**BASE, "models": {"pack": "packs/main"}},
            pytest.raises(ConfigError, match=r"models\.trusted_keys is empty: a pack is loaded only when signed"),
        ),
        (
            {**BASE, "models": {"face": "f.onnx", "pack": "packs/main"}},
            pytest.raises(ConfigError, match=r"give exactly one of models\.face .* and models\.pack"),
        ),
        ({**BASE, "models": {}}, pytest.raises(ConfigError, match=r"give exactly one of models\.face")),
        (
            {**BASE, "models": {"face": "f.onnx", "precision": "int8"}},
            pytest.raises(ConfigError, match=r"models\.precision and models\.face_model apply to a pack"),
        ),
        (
            {**BASE, "models": {"pack": "p", "precision": "int4"}},
            pytest.raises(ConfigError, match=r"models\.precision = 'int4'"),
        ),
        ({**BASE, "camera": {}}, pytest.raises(ConfigError, match=r"camera: unknown key")),
    ],
)
def test_parse_config(data: dict[str, Any], expectation: AbstractContextManager[Any]) -> None:
    with expectation:
        config = parse_config(data, Path("/etc/clinic-edge"))
        assert config.room.site == data["room"]["site"]


@pytest.mark.unit
def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "room.toml"
    path.write_text(
        '[room]\nsite="s"\nroom="r"\ndevice_id="d"\n[models]\nface="m/face.onnx"\n[storage]\nstate_dir="state"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.models.face == tmp_path / "m" / "face.onnx"
    assert config.storage.state_dir == tmp_path / "state"
    path.write_text(
        '[room]\nsite="s"\nroom="r"\ndevice_id="d"\n[models]\npack="packs/main"\ntrusted_keys=["keys/a.pub"]\n'
        '[storage]\nstate_dir="state"\n',
        encoding="utf-8",
    )
    assert load_config(path).models.pack == tmp_path / "packs" / "main"
    assert load_config(path).models.trusted_keys == [tmp_path / "keys" / "a.pub"]


@pytest.mark.unit
def test_every_path_field_resolves_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths are resolved by walking the model, not field by field: nested sections, lists of
    sections (the backend chain's engine folder) and secrets alike."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "room.toml"
    path.write_text(
        '[room]\nsite="s"\nroom="r"\ndevice_id="d"\n[models]\npack="p"\ntrusted_keys=["k.pub"]\n'
        '[inference]\nbackends=[{backend="tensorrt", engine_dir="engines"}, {backend="onnxruntime"}]\n'
        '[mqtt]\nusername="u"\npassword_file="secrets/pw"\n[mqtt.tls]\nca_file="ca.pem"\n'
        '[channels.words]\nmodel="whisper/ggml.bin"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    found = {
        "engine_dir": getattr(config.inference.backends[0], "engine_dir", None),
        "password_file": config.mqtt.password_file,
        "ca_file": config.mqtt.tls.ca_file if config.mqtt.tls else None,
        "words": config.channels.words.model,
        "pack": config.models.pack,
    }
    assert found == {
        "engine_dir": tmp_path / "engines",
        "password_file": tmp_path / "secrets" / "pw",
        "ca_file": tmp_path / "ca.pem",
        "words": tmp_path / "whisper" / "ggml.bin",
        "pack": tmp_path / "p",
    }


@pytest.mark.unit
def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"config file not found: {tmp_path / 'nope.toml'}")):
        load_config(tmp_path / "nope.toml")


@pytest.mark.unit
def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[room\nsite = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_config(path)


@pytest.mark.unit
def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "room.toml"
    path.write_text(
        '[room]\nsite="s"\nroom="r"\ndevice_id="d"\n[models]\nface="f.onnx"\n[capture]\nanalysis_fps=0\nwidth=10\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "capture.analysis_fps = 0" in str(err.value)
    assert "capture.width = 10" in str(err.value)


@pytest.mark.unit
@pytest.mark.parametrize("name", ["room.example.toml", "demo.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = load_config(ROOT / "config" / name)
    assert config.room.device_id


@pytest.mark.unit
def test_the_configuration_reference_and_example_are_written_from_the_models() -> None:
    """One declaration per option: docs/configuration-reference.md and config/room.example.toml are
    what the config models give (``python -m edge.config.reference --write`` after a change)."""
    from edge.config import reference

    assert reference.REFERENCE.read_text(encoding="utf-8") == reference.reference_markdown()
    assert reference.EXAMPLE.read_text(encoding="utf-8") == reference.example_toml()
    every = {f"{s.name}.{k.name}" for s in reference.sections() for k in s.keys}
    assert {"channels.words.device", "audio.vad", "review.fhir.url", "mqtt.tls.ca_file"} <= every
