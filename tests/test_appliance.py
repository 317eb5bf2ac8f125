"""The appliance end to end: real GStreamer, MediaPipe, ONNX Runtime, SQLite and mosquitto."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from prometheus_client import generate_latest

from contract.classes import CLASSES
from contract.payload import SCHEMA_PATH
from edge.config import load_config
from edge.runtime import Appliance
from tests.conftest import CONSENT, Broker, Collector, collect, stable_port, start_broker, write_config

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _windows(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM windows ORDER BY idx").fetchall()


def test_demo_clip_end_to_end(
    tmp_path: Path, face_model: Path, demo_clip: Path, broker: Broker, collector: Collector
) -> None:
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "state", mqtt_port=broker.port)
    )
    appliance = Appliance(config, demo_clip.as_uri())
    report = appliance.run(consent=CONSENT)
    metrics_text = generate_latest(appliance.metrics.registry).decode()

    assert report.frames == 140  # 14 s at 10 fps, nothing dropped from a file
    assert report.frames_dropped == 0
    # 12 complete windows of 2.5 s every 1 s over 14 s, and [12, 14.5) which the media covers to
    # within half a hop
    assert report.windows == 13
    assert report.unpublished == 0

    rows = _windows(report.database)
    summaries = collector.wait_for("summary", report.windows)
    assert len(rows) == len(summaries) == report.windows
    for body in summaries:
        jsonschema.validate(body, SCHEMA)
        assert body["session_id"] == report.session_id
        assert (body["site"], body["room"], body["device_id"]) == ("test-site", "room-a", "edge-test")
    assert [s["seq"] for s in summaries] == list(range(1, len(summaries) + 1))
    assert len({s["message_id"] for s in summaries}) == len(summaries)

    # The face: the smiling astronaut is happy; the cut-away to a coffee cup has no face.
    labels = [s["emotion"]["label"] for s in summaries]
    assert labels.count("happy") >= 8
    assert set(labels) <= {"happy", None}
    no_face = [s for s in summaries if "no_face" in s["quality"]]
    assert no_face and all(s["emotion"]["label"] is None for s in no_face)
    # The voice: espeak-ng speech with pauses.
    voiced = [s["modalities"]["voice"]["voiced_ratio"] for s in summaries]
    assert max(voiced) > 0.3
    assert any("silence" in s["quality"] for s in summaries)
    # SQLite holds the same windows.
    assert [r["label"] for r in rows] == labels
    assert json.loads(rows[0]["probs"]).keys() == set(CLASSES)
    # Channels: no speech model in a single-file setup, so the voice gives acoustic cues; the pulse
    # needs ten seconds of skin colour first; the words channel is off by default.
    voices = [s["modalities"]["voice"] for s in summaries]
    assert {v["method"] for v in voices} == {"acoustic"}
    assert any(v["arousal"] is not None for v in voices)
    # Once the speaker's baseline settled, the voice votes: its cues' place in the affect space.
    assert all((v["probs"] is not None) == (v["quality"] == "good") for v in voices)
    assert any(v["quality"] == "good" for v in voices)
    assert all(s["modalities"]["words"] is None for s in summaries)
    pulses = [s["modalities"]["pulse"] for s in summaries]
    assert pulses[0]["quality"] == "too_short" and pulses[0]["bpm"] is None
    assert all(p["bpm"] is None or 40 <= p["bpm"] <= 180 for p in pulses)
    for s in summaries:
        fused, voice = s["emotion"]["fused"], s["modalities"]["voice"]
        assert fused["voice"] == (voice["quality"] == "good") and not fused["words"]
        assert (s["emotion"]["valence"] is None) == (not any(fused.values()))
    assert any(s["emotion"]["fused"]["voice"] and s["emotion"]["fused"]["face"] for s in summaries)
    assert json.loads(rows[-1]["pulse"])["seconds"] > 9

    statuses = [s["state"] for s in collector.json("status")]
    assert statuses[0] == "online" and statuses[-1] == "stopped"

    assert f"clinic_edge_frames_total {float(report.frames)}" in metrics_text
    assert (
        'clinic_edge_inference_backend{backend="onnxruntime-cpu",degraded="no",model="face-fer-minixception",'
        'requested="onnxruntime"} 1.0'
    ) in metrics_text
    assert 'clinic_edge_stage_seconds_count{stage="detect"}' in metrics_text
    for stage in ("skin", "voice_cues", "pulse"):  # each channel's own latency, published once the session ended
        assert f'clinic_edge_stage_recent_seconds{{quantile="0.95",stage="{stage}"}}' in metrics_text
        assert f'clinic_edge_stage_seconds_count{{stage="{stage}"}}' not in metrics_text  # no count of such windows
    families = {family.name for family in appliance.metrics.registry.collect()}
    assert families <= PRIVATE_METRICS, families - PRIVATE_METRICS
    for label in CLASSES:
        assert label not in metrics_text  # no emotion values in metrics


# Every metric the appliance exports, each checked to carry nothing of what a session found (no count
# of disparity moments, explanations, speakers or channel qualities): a new one is added here after
# that check (edge.metrics.metrics says what may be counted).
PRIVATE_METRICS = {
    "clinic_edge_frames",
    "clinic_edge_audio_buffers",
    "clinic_edge_dropped",
    "clinic_edge_session_state",
    "clinic_edge_commands",
    "clinic_edge_faces_ignored",
    "clinic_edge_source_up",
    "clinic_edge_source_restarts",
    "clinic_edge_windows",
    "clinic_edge_store_failures",
    "clinic_edge_windows_lost",
    "clinic_edge_degraded",
    "clinic_edge_published",
    "clinic_edge_publish_refused",
    "clinic_edge_windows_waiting",
    "clinic_edge_outbox_pending",
    "clinic_edge_mqtt_connected",
    "clinic_edge_inference_backend",
    "clinic_edge_stage_seconds",
    "clinic_edge_stage_recent_seconds",
    "clinic_edge_build",
}


def test_retained_status_says_stopped_after_a_clean_exit(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    )
    Appliance(config, "test:").run(consent=CONSENT, duration_s=1.5)
    late = collect(broker.host, broker.port, "clinic/v1/+/+/status")
    got = late.wait_for("status", 1, timeout=5)
    late.close()
    assert got and got[0]["state"] == "stopped"
    assert late.messages[0][2] is True  # retained


def test_live_source_with_duration_serves_metrics(
    tmp_path: Path, face_model: Path, broker: Broker, collector: Collector
) -> None:
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    )
    appliance = Appliance(config, "test:?pattern=ball")
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(report=appliance.run(consent=CONSENT, duration_s=4.5)))
    runner.start()
    scraped = ""
    deadline = time.monotonic() + 10
    while runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.3)
        if not appliance.metrics.port:
            continue
        with urllib.request.urlopen(f"http://127.0.0.1:{appliance.metrics.port}/metrics", timeout=2) as resp:
            scraped = resp.read().decode()
        if re.search(r"^clinic_edge_frames_total [1-9]", scraped, re.MULTILINE):
            break
    runner.join(timeout=30)
    report = result["report"]
    assert re.search(r"^clinic_edge_frames_total [1-9]", scraped, re.MULTILINE), "scraped while frames flowed"
    assert "clinic_edge_mqtt_connected 1.0" in scraped
    assert "clinic_edge_build_info{" in scraped
    assert report.windows >= 2  # type: ignore[attr-defined]
    summaries = collector.wait_for("summary", report.windows)  # type: ignore[attr-defined]
    for body in summaries:
        jsonschema.validate(body, SCHEMA)
        assert "no_face" in body["quality"]  # a bouncing ball is not a face
        assert "silence" in body["quality"]  # a steady tone is not a voice


def test_interval_summaries(
    tmp_path: Path, face_model: Path, demo_clip: Path, broker: Broker, collector: Collector
) -> None:
    path = write_config(
        tmp_path / "room.toml",
        face_model=face_model,
        state_dir=tmp_path / "s",
        mqtt_port=broker.port,
    )
    path.write_text(path.read_text().replace("[mqtt]\n", '[mqtt]\nsummary = "interval"\ninterval_s = 4\n'))
    report = Appliance(load_config(path), demo_clip.as_uri()).run(consent=CONSENT)
    summaries = collector.wait_for("summary", 4)
    assert all(s["kind"] == "interval" for s in summaries)
    # windows start every second from 0 to 12: intervals [0, 4), [4, 8), [8, 12), [12, 16)
    assert [s["span"]["windows"] for s in summaries] == [4, 4, 4, 1]
    assert sum(s["span"]["windows"] for s in summaries) == report.windows
    for body in summaries:
        jsonschema.validate(body, SCHEMA)


def test_broker_down_keeps_summaries_and_publishes_them_later(tmp_path: Path, face_model: Path) -> None:
    port = stable_port()  # the server restarts on it
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=port)
    )
    first = Appliance(config, "test:").run(consent=CONSENT, duration_s=4.0)
    assert first.windows >= 2
    assert first.published == 0
    assert first.unpublished == first.windows  # nothing lost: all waiting in the outbox

    broker = start_broker(tmp_path, port)
    try:
        col = collect(broker.host, broker.port)
        second = Appliance(config, "test:").run(consent=CONSENT, duration_s=3.0)
        total = first.windows + second.windows
        summaries = col.wait_for("summary", total)
        col.close()
    finally:
        broker.stop()
    assert second.unpublished == 0
    assert sorted(s["seq"] for s in summaries) == list(range(1, total + 1))
    assert {s["session_id"] for s in summaries} == {first.session_id, second.session_id}


@pytest.mark.parametrize("source", ["test:?audio=0"])
def test_video_only_source_flags_missing_audio(tmp_path: Path, face_model: Path, source: str) -> None:
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    )
    report = Appliance(config, source).run(consent=CONSENT, duration_s=3.5)
    rows = _windows(report.database)
    assert rows
    assert all("no_audio" in json.loads(r["flags"]) for r in rows)
