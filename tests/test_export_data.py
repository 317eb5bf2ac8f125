"""Corpus loaders on generated data in each corpus' real layout, label maps and person-wise splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import corpora
import numpy as np
import pytest

from export.data import ravdess, scan
from export.data.inputs import build_arrays, read_wav
from export.data.sample import Sample
from export.data.split import split_by_person
from export.errors import DataError
from export.models.registry import FaceCNNSpec, SpeechCNN1DSpec, SpeechCNN2DSpec


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "03-01-06-02-01-02-12.wav",
            ravdess.RavdessName("audio", "speech", "fearful", "strong", "Kids are talking by the door", 2, 12),
        ),
        (
            "01-02-02-01-02-01-01.mp4",
            ravdess.RavdessName("audio-video", "song", "calm", "normal", "Dogs are sitting by the door", 1, 1),
        ),
        (
            "02-01-08-01-01-01-24",
            ravdess.RavdessName("video", "speech", "surprised", "normal", "Kids are talking by the door", 1, 24),
        ),
    ],
)
def test_ravdess_file_names_decode(name: str, expected: ravdess.RavdessName) -> None:
    assert ravdess.parse_name(name) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("03-01-06-02-01-02.wav", "seven 2-digit fields"),
        ("03-01-09-01-01-01-01.wav", "emotion 09"),
        ("04-01-01-01-01-01-01.wav", "modality 04"),
        ("03-01-01-01-01-01-25.wav", "actor 25"),
        ("03-01-01-03-01-01-01.wav", "intensity 03"),
        ("notes.wav", "seven 2-digit fields"),
    ],
)
def test_ravdess_bad_names_are_refused_with_the_reason(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ravdess.parse_name(name)


@pytest.mark.unit
def test_ravdess_scan_keeps_speech_audio_and_labels_all_eight(tmp_path: Path) -> None:
    root = corpora.ravdess(tmp_path / "ravdess", actors=[1, 2, 3], seconds=0.2)
    samples = scan("ravdess", root)
    assert len(samples) == 3 * 8 * 2  # the song clip and the video file are left out
    assert Counter(s.label for s in samples) == dict.fromkeys(corpora.PRODUCT, 6)
    assert {s.speaker for s in samples} == {"01", "02", "03"}
    assert all(s.meta["channel"] == "speech" for s in samples)


@pytest.mark.unit
def test_cremad_scan(tmp_path: Path) -> None:
    samples = scan("cremad", corpora.cremad(tmp_path / "crema", actors=[1001, 1002]))
    assert len(samples) == 2 * 6 * 2
    assert {s.label for s in samples} == set(corpora.CREMAD.values())  # no calm, no surprised
    assert {s.meta["level"] for s in samples} == {"high", "unspecified"}


@pytest.mark.unit
def test_tess_scan_reads_both_folder_spellings(tmp_path: Path) -> None:
    samples = scan("tess", corpora.tess(tmp_path / "tess"))
    assert {s.speaker for s in samples} == {"OAF", "YAF"}
    assert Counter(s.label for s in samples)["surprised"] == 4
    assert "calm" not in {s.label for s in samples}


@pytest.mark.unit
def test_fer2013_keeps_its_own_split(tmp_path: Path) -> None:
    samples = scan("fer2013", corpora.fer2013(tmp_path / "fer", {"Training": 2, "PublicTest": 1, "PrivateTest": 1}))
    assert Counter(s.preset_split for s in samples) == {"train": 14, "val": 7, "test": 7}
    assert samples[0].data is not None and samples[0].data.shape == (48, 48)
    assert "calm" not in {s.label for s in samples}


@pytest.mark.unit
def test_fer2013_bad_row_names_line_and_values(tmp_path: Path) -> None:
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,pixels,Usage\n3," + " ".join(["1"] * 2304) + ",Training\n9,1 2 3,Training\n")
    with pytest.raises(DataError, match=r"fer2013.csv:3: expected emotion 0-6.*emotion='9'.*3 pixels"):
        scan("fer2013", csv)


@pytest.mark.unit
def test_ckplus_original_layout_peak_frames_neutral_first_and_no_contempt(tmp_path: Path) -> None:
    samples = scan("ckplus", corpora.ckplus(tmp_path / "ck", subjects=[5, 6]))
    per_subject = Counter(s.speaker for s in samples)
    # 6 labelled sequences (contempt left out) x (1 neutral first frame + 3 peak frames)
    assert per_subject == {"S005": 24, "S006": 24}
    assert Counter(s.label for s in samples)["neutral"] == 12
    assert all(s.path is not None and s.path.suffix == ".png" for s in samples)


@pytest.mark.unit
def test_ckplus_folder_layout(tmp_path: Path) -> None:
    root = tmp_path / "ck48"
    for folder in ("happy", "contempt", "sadness"):
        (root / folder).mkdir(parents=True)
        for subject in (10, 11):
            img = corpora.face("happy", 48, np.random.default_rng(0))
            from PIL import Image

            Image.fromarray(img).save(root / folder / f"S{subject:03d}_004_00000017.png")
    samples = scan("ckplus", root)
    assert Counter(s.label for s in samples) == {"happy": 2, "sad": 2}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("corpus", "make", "message"),
    [
        ("ravdess", lambda p: p.mkdir(), "no RAVDESS audio"),
        ("cremad", lambda p: (p / "AudioWAV").mkdir(parents=True), "no CREMA-D audio"),
        ("tess", lambda p: p.mkdir(), "no TESS audio"),
        ("fer2013", lambda p: p.mkdir(), "no FER2013 CSV"),
        ("nope", lambda p: p.mkdir(), "unknown corpus 'nope'"),
        ("ravdess", lambda p: None, "ravdess data not found"),
    ],
)
def test_missing_or_empty_corpora_say_what_was_expected(
    tmp_path: Path, corpus: str, make: object, message: str
) -> None:
    root = tmp_path / "data"
    make(root)  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        scan(corpus, root)


@pytest.mark.unit
def test_cremad_foreign_file_is_refused(tmp_path: Path) -> None:
    root = corpora.cremad(tmp_path / "crema", actors=[1001])
    corpora.write_wav(root / "AudioWAV" / "1001_IEO_XYZ_HI.wav", np.zeros(100, np.float32), 16_000)
    with pytest.raises(DataError, match=r"1001_IEO_XYZ_HI\.wav"):
        scan("cremad", root)


def _samples(persons: int, per_person: int = 3) -> list[Sample]:
    return [
        Sample("c", f"p{p}", corpora.PRODUCT[i % 8], "audio", path=Path(f"/x/{p}-{i}.wav"))
        for p in range(persons)
        for i in range(per_person)
    ]


@pytest.mark.unit
@pytest.mark.parametrize(("persons", "seed"), [(3, 0), (6, 1), (10, 2), (24, 3), (91, 4)])
def test_split_never_puts_a_person_in_two_splits(persons: int, seed: int) -> None:
    splits = split_by_person(_samples(persons), val_fraction=0.15, test_fraction=0.15, seed=seed)
    who = {name: {s.person for s in items} for name, items in splits.items()}
    assert (
        who["train"].isdisjoint(who["val"])
        and who["train"].isdisjoint(who["test"])
        and who["val"].isdisjoint(who["test"])
    )
    assert sum(len(v) for v in splits.values()) == persons * 3
    assert all(splits.values())


@pytest.mark.unit
def test_split_is_fixed_by_the_seed_and_changes_with_it() -> None:
    a = split_by_person(_samples(20), val_fraction=0.2, test_fraction=0.2, seed=7)
    b = split_by_person(_samples(20), val_fraction=0.2, test_fraction=0.2, seed=7)
    c = split_by_person(_samples(20), val_fraction=0.2, test_fraction=0.2, seed=8)
    assert [s.person for s in a["test"]] == [s.person for s in b["test"]]
    assert {s.person for s in a["test"]} != {s.person for s in c["test"]}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("persons", "val", "test", "message"),
    [
        (2, 0.15, 0.15, "only 2 person"),
        (5, 0.5, 0.5, "sum below 1"),
        (5, 0.0, 0.2, "must be in"),
    ],
)
def test_impossible_splits_are_refused(persons: int, val: float, test: float, message: str) -> None:
    with pytest.raises(DataError, match=message):
        split_by_person(_samples(persons), val_fraction=val, test_fraction=test, seed=0)


@pytest.mark.unit
def test_same_speaker_id_in_two_corpora_is_two_persons() -> None:
    samples = [Sample(corpus, "01", "happy", "audio") for corpus in ("ravdess", "cremad", "tess")]
    splits = split_by_person(samples, val_fraction=0.3, test_fraction=0.3, seed=0)
    assert all(len(items) == 1 for items in splits.values())


@pytest.mark.unit
def test_wav_reader_mixes_and_resamples(tmp_path: Path) -> None:
    t = np.arange(48_000) / 48_000
    path = corpora.write_wav(
        tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48_000, channels=2
    )
    signal = read_wav(path)
    assert signal.shape == (16_000,)
    spectrum = np.abs(np.fft.rfft(signal))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second
    assert 0.3 < np.sqrt(2) * signal.std() < 0.55


@pytest.mark.unit
def test_unreadable_wav_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match=r"bad\.wav as PCM WAV"):
        read_wav(bad)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (SpeechCNN1DSpec(window_s=0.5, n_mels=32, n_mfcc=13), (13 + 12 + 32 + 2, 48)),
        (SpeechCNN2DSpec(window_s=0.5, n_mels=40), (1, 40, 48)),
    ],
)
def test_audio_inputs_have_the_model_shape(
    tmp_path: Path, spec: SpeechCNN1DSpec | SpeechCNN2DSpec, shape: tuple[int, ...]
) -> None:
    samples = scan("cremad", corpora.cremad(tmp_path / "c", actors=[1001]))
    arrays = build_arrays(spec, samples[:3])
    assert arrays.x.shape == (3, *shape) and arrays.x.dtype == np.float32
    assert np.isfinite(arrays.x).all()


@pytest.mark.unit
def test_face_inputs_are_square_crops_scaled_like_the_room(tmp_path: Path) -> None:
    samples = scan("ckplus", corpora.ckplus(tmp_path / "ck", subjects=[5]))
    arrays = build_arrays(FaceCNNSpec(size=48), samples[:4])
    assert arrays.x.shape == (4, 1, 48, 48)
    assert -1.0 <= arrays.x.min() < -0.3 and 0.3 < arrays.x.max() <= 1.0
    with pytest.raises(DataError, match="face-cnn needs face images; cremad gives audio"):
        build_arrays(FaceCNNSpec(), scan("cremad", corpora.cremad(tmp_path / "c", actors=[1001]))[:1])
