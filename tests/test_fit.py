"""``clinic-export fit``: the fusion learned from evaluation records (no media), with held-out figures
that leave speakers out; a channel made uninformative loses its weight, a set where nothing can
improve is refused, the words are never learned from fixed sentences, and the room loads the fitted
pack like any other. The records are generated in the very format ``clinic-edge evaluate`` writes."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract.classes import CLASSES
from contract.evaluation import ClipRecord, VoteRecord, WindowRecord
from edge.config import load_config
from edge.fusion.calibration import calibrated
from edge.inference.pack import open_pack, trust_pack
from export.cli import main as export_main
from export.folds import folds
from tests.conftest import make_scene, signing_key, write_config

LABELS = ("neutral", "happy", "sad", "angry")


def _peaked(rng: random.Random, at: str, peak: float) -> tuple[float, ...]:
    rest = (1 - peak) / (len(CLASSES) - 1)
    noisy = [rest * rng.uniform(0.5, 1.5) for _ in CLASSES]
    noisy[CLASSES.index(at)] = peak
    total = sum(noisy)
    return tuple(round(v / total, 5) for v in noisy)


def _corpus(
    out: Path, *, informative_face: bool, honest_voice: bool = False, speakers: int = 10, seed: int = 3
) -> Path:
    """An evaluation folder: a face that mostly sees the truth (or not), a confident voice that says
    anything (or the truth), and fixed-sentence words that always say neutral."""
    rng = random.Random(seed)
    (out / "clips").mkdir(parents=True)
    for s in range(speakers):
        for i in range(8):
            label = LABELS[i % len(LABELS)]
            windows = []
            for k in range(2):
                face_at = label if informative_face and rng.random() < 0.8 else rng.choice(LABELS)
                voice_at = label if honest_voice else rng.choice(LABELS)
                votes = (
                    VoteRecord(name="face", probs=_peaked(rng, face_at, 0.55), quality="good", reliability=0.9),
                    VoteRecord(name="voice", probs=_peaked(rng, voice_at, 0.9), quality="good", reliability=0.8),
                    VoteRecord(name="words", probs=_peaked(rng, "neutral", 0.6), quality="good", reliability=0.5),
                )
                windows.append(
                    WindowRecord(index=k, start_s=k, end_s=k + 2.5, votes=votes, fused=None, label=None, state=None)
                )
            record = ClipRecord(
                clip_id=f"ravdess-{s:02d}-{i}",
                corpus="ravdess",
                path=f"Actor_{s + 1:02d}/clip-{i}.mp4",
                label=label,
                speaker=f"ravdess-{s + 1:02d}",
                modality="audiovisual",
                words_applicable=False,
                windows=tuple(windows),
            )
            (out / "clips" / f"{record.clip_id}.json").write_text(record.model_dump_json())
    room = {
        "fusion": {
            "weights": {"face": 1.0, "voice": 1.0, "words": 1.0},
            "channel_temperatures": {"face": 1.0, "voice": 1.0, "words": 1.0},
            "temperature": 1.0,
            "min_confidence": 0.4,
            "mixed_margin": 0.1,
        },
        "voice_tempering": 1 / 3,
    }
    (out / "evaluation.json").write_text(json.dumps({"room": room}))
    return out


def _pack(default_pack: Path, where: Path) -> Path:
    shutil.copytree(default_pack, where, symlinks=True)
    return where


def _fit(evaluation: Path, default_pack: Path, tmp_path: Path) -> tuple[int, Path]:
    """``clinic-export fit`` on a copy of the default pack, signed with the tests' key."""
    out = tmp_path / "fitted"
    pack = _pack(default_pack, tmp_path / "pack")
    args = ["fit", "--evaluation", str(evaluation), "--pack", str(pack), "--out", str(out)]
    return export_main([*args, "--key", str(signing_key()[0])]), out


@pytest.mark.unit
def test_speakers_never_sit_on_both_sides() -> None:
    speakers = [f"s{i}" for i in range(12) for _ in range(3)]
    parts = folds(speakers)
    assert len(parts) == 5 and set().union(*parts) == set(speakers)
    assert all(a.isdisjoint(b) for i, a in enumerate(parts) for b in parts[i + 1 :])


def test_fit_lowers_an_uninformative_channel_and_the_room_loads_the_fitted_pack(
    default_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _fit(_corpus(tmp_path / "eval", informative_face=True), default_pack, tmp_path)
    assert code == 0
    printed = capsys.readouterr().out
    assert "held-out UAR" in printed
    room = write_config(
        tmp_path / "room.toml", face_model=Path(), state_dir=tmp_path / "state", mqtt_port=None, pack=out
    )
    config = load_config(room)
    assert trust_pack(config.models) is not None  # signed like any other pack
    fit = open_pack(out).calibration
    assert fit is not None and fit.fitted is not None
    assert fit.fitted.held_out_uar_after >= fit.fitted.held_out_uar_before + 0.02
    assert fit.weights["voice"] < 1.0  # the confident voice that says anything counts less
    assert fit.weights["words"] == 1.0 and "words" not in fit.fitted.learned  # fixed sentences: never learned
    assert fit.channel_temperatures["words"] == 1.0
    assert set(fit.speakers) == {f"ravdess-{s:02d}" for s in range(1, 11)}
    room_config = calibrated(config)
    assert room_config.fusion.weights.voice == fit.weights["voice"]
    assert room_config.channels.voice.tempering == pytest.approx(fit.voice_tempering)
    assert "Fusion fitted from labels" in (out / "MODEL_CARD.md").read_text()
    release = open_pack(out).release
    assert release is not None
    # A room that asks for its config's own values keeps them.
    kept = write_config(
        tmp_path / "kept.toml",
        face_model=Path(),
        state_dir=tmp_path / "s2",
        mqtt_port=None,
        pack=out,
        extra='[fusion]\ncalibration = "config"\n',
    )
    assert calibrated(load_config(kept)).fusion.weights.voice == 1.0
    # Evaluating the fitted pack on speakers it was fitted on is warned about (a fresh process).
    scene = make_scene()
    clip = scene.compose(tmp_path / "ours" / "a.mkv", [scene.Shot(0.0, "astronaut")], [(0.3, "Hello there.")], 3.0)
    (clip.parent / "ours.csv").write_text("path,label,speaker\na.mkv,happy,ravdess-01\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "evaluate",
            "--config",
            str(room),
            "--out",
            str(tmp_path / "again"),
            "--corpus",
            f"manifest={clip.parent / 'ours.csv'}",
            "--workers",
            "1",
            "--no-progress",
        ],
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "1 speakers of this corpus were in the pack's training or fitting: ravdess-01" in run.stderr


def test_fit_refuses_where_nothing_can_improve_and_writes_nothing(
    default_pack: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The room already gets every clip right: there is nothing to gain.
    code, out = _fit(_corpus(tmp_path / "eval", informative_face=True, honest_voice=True), default_pack, tmp_path)
    assert code == 3
    assert "nothing improves by 2.0 points, nothing written" in caplog.text
    assert not out.exists()


def _with_moments(out: Path, *, judged: bool) -> Path:
    """An evaluation folder for the disparity threshold: the acted clips of :func:`_corpus` (congruent
    by design), where two in five carry a run of disparity scores between 0.62 and 0.75 (false moments
    at the room's 0.6), and, when ``judged``, clinicians' moments (truly disparate, scoring 0.8-0.95)
    from eight sessions."""
    _corpus(out, informative_face=True, honest_voice=True)
    rng = random.Random(11)
    for path in sorted((out / "clips").glob("*.json")):
        record = ClipRecord.model_validate_json(path.read_text())
        high = rng.random() < 0.4
        windows = tuple(
            w.model_copy(update={"disparity": rng.uniform(0.62, 0.75) if high else rng.uniform(0.0, 0.3)})
            for w in record.windows
        )
        path.write_text(record.model_copy(update={"windows": windows, "disparate": False}).model_dump_json())
    if judged:
        for s in range(8):
            for m in range(3):
                windows = tuple(
                    WindowRecord(
                        index=k,
                        start_s=k,
                        end_s=k + 2.5,
                        votes=(),
                        fused=None,
                        label=None,
                        state=None,
                        disparity=rng.uniform(0.8, 0.95),
                    )
                    for k in range(3)
                )
                record = ClipRecord(
                    clip_id=f"feedback-{s}-{m}",
                    corpus="feedback",
                    path=f"s{s}#moment-{m}",
                    label=None,
                    speaker=f"session-{s}",
                    modality="audiovisual",
                    words_applicable=True,
                    disparate=True,
                    windows=windows,
                )
                (out / "clips" / f"{record.clip_id}.json").write_text(record.model_dump_json())
    body = json.loads((out / "evaluation.json").read_text())
    body["room"]["disparity"] = {"enabled": True, "threshold": 0.6, "min_duration_s": 3.0}
    (out / "evaluation.json").write_text(json.dumps(body))
    return out


def test_fit_learns_the_disparity_threshold_from_judged_moments_and_the_room_uses_it(
    default_pack: Path, tmp_path: Path
) -> None:
    # The fusion already gets every clip right (nothing to gain there); the threshold can only be
    # learned because clinicians' real moments stand beside the acted corpus's congruent clips.
    code, out = _fit(_with_moments(tmp_path / "eval", judged=True), default_pack, tmp_path)
    assert code == 0
    room = write_config(
        tmp_path / "room.toml", face_model=Path(), state_dir=tmp_path / "state", mqtt_port=None, pack=out
    )
    config = load_config(room)
    assert trust_pack(config.models) is not None
    fit = open_pack(out).calibration
    assert fit is not None and fit.fitted is not None and fit.fitted.disparity is not None
    d = fit.fitted.disparity
    assert d.clips == 80 + 24 and d.disparate == 24 and d.written
    assert d.held_out_balanced_accuracy_before < 0.85 < d.held_out_balanced_accuracy_after
    assert fit.disparity_threshold is not None and 0.75 < fit.disparity_threshold <= 0.8
    assert not fit.fitted.fusion_written and fit.fitted.learned == ()  # the fusion kept the room's values
    assert fit.weights == {"face": 1.0, "voice": 1.0, "words": 1.0}
    assert calibrated(config).disparity.threshold == fit.disparity_threshold
    assert "Disparity threshold 0.6 -> 0.8" in (out / "MODEL_CARD.md").read_text()


def test_fit_never_learns_a_threshold_from_acted_corpora_alone(
    default_pack: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Only congruent clips: the highest threshold would "win" by never finding anything; fit learns nothing.
    code, out = _fit(_with_moments(tmp_path / "eval", judged=False), default_pack, tmp_path)
    assert code == 3 and not out.exists()
    assert "disparity threshold" not in caplog.text


@pytest.mark.unit
def test_fit_refuses_what_is_not_an_evaluation(
    tmp_path: Path, default_pack: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private, _ = signing_key()
    args = [
        "fit",
        "--evaluation",
        str(tmp_path),
        "--pack",
        str(default_pack),
        "--out",
        str(tmp_path / "o"),
        "--key",
        str(private),
    ]
    assert export_main(args) != 0
    assert "is not an evaluation folder" in caplog.text
