"""``clinic-edge evaluate`` on generated corpora in RAVDESS's, CREMA-D's and a manifest's real layouts,
through the room's real pipeline (GStreamer, MediaPipe, ONNX Runtime, Whisper) in worker processes:
the scores agree with an independent count over the per-clip records, the run resumes, a config
change changes the result, layouts that are not the corpus's are refused in one line."""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from eval_corpora import cremad, manifest, ravdess

from contract.classes import CLASSES
from contract.evaluation import ClipRecord
from edge.cli import main
from tests.conftest import make_scene, write_config


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpora")
    scene = make_scene()
    return {
        "ravdess": ravdess(scene, root / "RAVDESS"),
        "cremad": cremad(scene, root / "CREMA-D"),
        "manifest": manifest(scene, root / "clinic"),
    }


def _room(tmp: Path, pack: Path, extra: str = "") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return write_config(
        tmp / "room.toml", face_model=Path(), state_dir=tmp / "state", mqtt_port=None, pack=pack, extra=extra
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, corpora: dict[str, Path], default_pack: Path) -> Path:
    tmp = tmp_path_factory.mktemp("evaluate")
    out = tmp / "out"
    args = ["evaluate", "--config", str(_room(tmp, default_pack)), "--out", str(out), "--workers", "2", "--no-progress"]
    for kind, path in corpora.items():
        args += ["--corpus", f"{kind}={path}"]
    assert main(args) == 0
    return out


def _records(out: Path) -> list[ClipRecord]:
    return [ClipRecord.model_validate_json(p.read_text()) for p in sorted((out / "clips").glob("*.json"))]


def _independent(record: ClipRecord, channel: str | None) -> int | None:
    """The clip's class counted here, apart from clinic_signals: mean of the good distributions."""
    if channel is None:
        rows = [w.fused for w in record.windows if w.fused is not None]
    else:
        rows = [
            v.probs for w in record.windows for v in w.votes if v.name == channel and v.quality == "good" and v.probs
        ]
    return None if not rows else int(np.argmax(np.mean(np.array(rows), axis=0)))


def test_every_layout_is_read_and_the_confusion_is_an_independent_count(evaluated: Path) -> None:
    body = json.loads((evaluated / "evaluation.json").read_text())
    records = _records(evaluated)
    assert body["corpora"] == {"ravdess": 6, "cremad": 5, "manifest": 3}  # song and video-only left out
    assert {r.modality for r in records if r.corpus == "ravdess"} == {"audiovisual", "audio"}
    assert {r.modality for r in records if r.corpus == "cremad"} == {"audiovisual", "audio"}
    assert not [r.error for r in records if r.error], "every clip was analysed"
    assert all(r.windows for r in records)
    for name in ("fused", "face", "voice"):
        counted: Counter[tuple[int, int]] = Counter()
        abstained = Counter()
        for r in records:
            predicted = _independent(r, None if name == "fused" else name)
            if predicted is None:
                abstained[CLASSES.index(r.label)] += 1
            else:
                counted[(CLASSES.index(r.label), predicted)] += 1
        matrix = [[counted[(t, p)] for p in range(8)] for t in range(8)]
        scores = body["predictors"][name]
        assert scores["confusion"] == matrix, name
        assert scores["abstained"] == [abstained[c] for c in range(8)], name
        assert scores["n_clips"] == len(records)
    fused = body["predictors"]["fused"]
    correct = sum(fused["confusion"][i][i] for i in range(8))
    assert fused["accuracy"] == pytest.approx(correct / len(records))  # abstentions count as errors
    # Fixed, neutral sentences: the words are scored on the manifest's clips only.
    assert body["predictors"]["words"]["n_clips"] == 3
    assert body["by_corpus"]["ravdess"]["words"] == {"not_applicable": True}
    # The face channel sees the smiling photograph as happy: the room's own result, not a guess.
    face = body["predictors"]["face"]["confusion"]
    assert face[CLASSES.index("happy")][CLASSES.index("happy")] >= 3
    md = (evaluated / "evaluation.md").read_text()
    assert "83.3 %" in md and "| fused |" in md and "not applicable" in md
    assert "data:image/png;base64," in (evaluated / "evaluation.html").read_text()
    assert {"valence", "arousal"} <= set(fused["ccc"])  # the manifest carries them
    # The disparity rule on clips known to be congruent (acted corpora, the manifest's "no" rows),
    # against a count of runs of windows at or above the room's threshold lasting 3 s.
    rule = body["disparity"]
    congruent = [r for r in records if r.disparate is False]
    assert rule["congruent_clips"] == len(congruent) == 6 + 5 + 2 and rule["disparate_clips"] == 0
    runs = 0
    for r in congruent:
        above = [w for w in r.windows if w.disparity is not None and w.disparity >= rule["threshold"]]
        spans: list[list[float]] = []
        for w in r.windows:
            if w in above and spans and spans[-1][2] == w.index - 1:
                spans[-1][1:] = [w.end_s, w.index]
            elif w in above:
                spans.append([w.start_s, w.end_s, w.index])
        runs += sum(1 for start, end, _ in spans if end - start >= rule["min_duration_s"])
    assert rule["false_moments"] == runs
    assert "## Disparity moments" in md


def test_a_rerun_resumes_and_redoes_only_what_is_missing(
    evaluated: Path, corpora: dict[str, Path], default_pack: Path, tmp_path: Path
) -> None:
    clips = sorted((evaluated / "clips").glob("*.json"))
    before = {p.name: p.stat().st_mtime_ns for p in clips}
    clips[0].unlink()
    args = ["evaluate", "--config", str(_room(tmp_path, default_pack)), "--out", str(evaluated), "--workers", "1"]
    args += ["--no-progress", "--corpus", f"ravdess={corpora['ravdess']}", "--corpus", f"cremad={corpora['cremad']}"]
    args += ["--corpus", f"manifest={corpora['manifest']}"]
    assert main(args) == 0
    after = {p.name: p.stat().st_mtime_ns for p in sorted((evaluated / "clips").glob("*.json"))}
    assert set(after) == set(before)
    changed = [name for name in after if after[name] != before.get(name)]
    assert changed == [clips[0].name]


def test_evaluate_runs_the_rooms_own_pipeline_a_config_change_changes_the_result(
    corpora: dict[str, Path], default_pack: Path, tmp_path: Path
) -> None:
    """The same clips with the face's weight at 0 and the words off: the fused answers follow. Nothing
    of the clips stays behind but the records (every clip's temporary state folder is gone)."""
    before = set(Path(tempfile.gettempdir()).glob("clinic-eval-*"))
    results = {}
    for name, extra in (
        ("as is", ""),
        ("no face, no words", "[fusion.weights]\nface = 0.0\n[channels.words]\nenabled = false\n"),
    ):
        out = tmp_path / name.replace(" ", "-")
        room = _room(tmp_path / f"{out.name}-room", default_pack, extra)
        assert (
            main(
                [
                    "evaluate",
                    "--config",
                    str(room),
                    "--out",
                    str(out),
                    "--workers",
                    "1",
                    "--no-progress",
                    "--corpus",
                    f"manifest={corpora['manifest']}",
                ]
            )
            == 0
        )
        results[name] = json.loads((out / "evaluation.json").read_text())
    assert "words" in results["as is"]["predictors"] and "words" not in results["no face, no words"]["predictors"]
    assert (
        results["as is"]["predictors"]["fused"]["confusion"]
        != results["no face, no words"]["predictors"]["fused"]["confusion"]
    )
    assert results["no face, no words"]["room"]["fusion"]["weights"]["face"] == 0.0
    assert set(Path(tempfile.gettempdir()).glob("clinic-eval-*")) == before


def _file(path: Path, content: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


LAYOUTS = [
    (
        "ravdess",
        lambda p: _file(p / "Actor_01" / "clip.mp4"),
        r"Actor_01/clip\.mp4: not a RAVDESS file name \(expected",
    ),
    ("ravdess", lambda p: p.mkdir(parents=True), r"is not a RAVDESS folder: expected Actor_01"),
    (
        "ravdess",
        lambda p: _file(p / "Actor_02" / "01-01-03-01-01-01-01.mp4"),
        r"actor 01 in the name but the folder is Actor_02",
    ),
    (
        "cremad",
        lambda p: _file(p / "AudioWAV" / "1001_DFA_XYZ_XX.wav"),
        r"1001_DFA_XYZ_XX\.wav: not a CREMA-D file name",
    ),
    ("cremad", lambda p: p.mkdir(parents=True), r"not a CREMA-D folder: expected VideoFlash/"),
    ("manifest", lambda p: _file(p, "file,emotion\nx.wav,happy\n"), r"expected the header path,label\[,speaker\]"),
    ("manifest", lambda p: _file(p, "path,label\nx.wav,happy\n"), r"manifest\.csv:2: no file"),
    (
        "manifest",
        lambda p: (_file(p.parent / "x.wav"), _file(p, "path,label\nx.wav,joyful\n")),
        r"manifest\.csv:2: label 'joyful' is not one of the product's classes",
    ),
    (
        "manifest",
        lambda p: (_file(p.parent / "x.wav"), _file(p, "path,label,disparate\nx.wav,sad,maybe\n")),
        r"manifest\.csv:2: disparate 'maybe' is not one of yes, no",
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize(("kind", "make", "message"), LAYOUTS)
def test_a_corpus_that_is_not_its_layout_is_refused_in_one_line(
    tmp_path: Path, default_pack: Path, caplog: pytest.LogCaptureFixture, kind: str, make: object, message: str
) -> None:
    target = tmp_path / ("corpus/manifest.csv" if kind == "manifest" else "corpus")
    make(target)  # type: ignore[operator]
    args = ["evaluate", "--config", str(_room(tmp_path, default_pack)), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*args, "--corpus", f"{kind}={target}"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert re.search(message, errors[0]), errors[0]
    assert not list((tmp_path / "out" / "clips").glob("*.json"))
