"""Labelled corpora in their own layouts, read into clips (``--corpus KIND=PATH``).

* ``ravdess``: ``Actor_NN/01-01-EE-II-SS-RR-AA.mp4`` (audio-visual speech) and ``03-01-...wav``
  (audio-only speech: the voice and words path); video-only files and song are left out.
* ``cremad``: ``VideoFlash/AAAA_SSS_EEE_LL.flv`` (audio-visual) with ``AudioWAV/...wav``; a recording
  with a video file runs from it, one with only its sound from the WAV.
* ``manifest``: a CSV ``path,label[,speaker][,valence,arousal]`` (with that header) for a clinic's
  own consented recordings; paths relative to the CSV's folder.

A corpus whose layout does not match says so in one line (which file, what was expected).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clinic_common.errors import ConfigError
from contract.corpora import CorpusNameError, parse_cremad, parse_ravdess
from contract.evaluation import Modality, check_label

MANIFEST_HEADER = "path,label[,speaker][,valence,arousal]"
MANIFEST_COLUMNS = frozenset({"path", "label", "speaker", "valence", "arousal"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"})


class CorpusLayoutError(ConfigError):
    """The folder is not the corpus it was given as (exit code 2)."""


@dataclass(frozen=True)
class Clip:
    id: str
    corpus: str
    path: Path
    root: Path
    label: str
    speaker: str
    modality: Modality
    words_applicable: bool
    disparate: bool | None = None  # truly a disparity between channels (None: unknown)
    intensity: str | None = None
    statement: str | None = None
    valence: float | None = None
    arousal: float | None = None

    @property
    def relative(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def _clip_id(corpus: str, relative: str) -> str:
    return f"{corpus}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", relative.rsplit(".", 1)[0])


def ravdess(root: Path) -> list[Clip]:
    actors = sorted(p for p in root.glob("Actor_*") if p.is_dir())
    if not actors:
        raise CorpusLayoutError(f"{root} is not a RAVDESS folder: expected Actor_01 ... Actor_24 folders in it")
    clips = []
    for path in sorted(p for folder in actors for p in folder.iterdir() if p.is_file()):
        try:
            name = parse_ravdess(path.name)
        except CorpusNameError as exc:
            raise CorpusLayoutError(f"{path}: {exc}") from None
        if path.parent.name != f"Actor_{name.actor:02d}":
            raise CorpusLayoutError(f"{path}: actor {name.actor:02d} in the name but the folder is {path.parent.name}")
        if name.channel != "speech" or name.modality == "video":
            continue  # song, and video without sound: not what a room hears
        expected = ".mp4" if name.modality == "audio-video" else ".wav"
        if path.suffix.lower() != expected:
            raise CorpusLayoutError(f"{path}: a RAVDESS {name.modality} file should end in {expected}")
        relative = path.relative_to(root).as_posix()
        clips.append(
            Clip(
                id=_clip_id("ravdess", relative),
                corpus="ravdess",
                path=path,
                root=root,
                label=name.emotion,
                speaker=f"ravdess-{name.actor:02d}",
                modality="audiovisual" if name.modality == "audio-video" else "audio",
                words_applicable=False,  # two fixed, neutral statements
                disparate=False,  # acted: face and voice show the one emotion asked for
                intensity=name.intensity,
                statement=name.statement,
            )
        )
    if not clips:
        raise CorpusLayoutError(f"{root}: no RAVDESS speech files (01-01-*.mp4 or 03-01-*.wav) in its Actor folders")
    return clips


def cremad(root: Path) -> list[Clip]:
    video, audio = root / "VideoFlash", root / "AudioWAV"
    if not video.is_dir() and not audio.is_dir():
        raise CorpusLayoutError(
            f"{root} is not a CREMA-D folder: expected VideoFlash/ (.flv) and AudioWAV/ (.wav) in it"
        )
    recordings: dict[str, Path] = {}
    for folder, suffix in ((audio, ".wav"), (video, ".flv")):  # a video file replaces its WAV
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            if path.suffix.lower() != suffix:
                raise CorpusLayoutError(f"{path}: {folder.name}/ should hold only {suffix} files")
            try:
                parse_cremad(path.stem, suffix)
            except CorpusNameError as exc:
                raise CorpusLayoutError(f"{path}: {exc}") from None
            recordings[path.stem] = path
    clips = []
    for stem, path in sorted(recordings.items()):
        name = parse_cremad(stem)
        clips.append(
            Clip(
                id=_clip_id("cremad", stem),
                corpus="cremad",
                path=path,
                root=root,
                label=name.emotion,
                speaker=f"cremad-{name.actor}",
                modality="audiovisual" if path.suffix.lower() == ".flv" else "audio",
                words_applicable=False,  # twelve fixed, neutral sentences
                disparate=False,  # acted: face and voice show the one emotion asked for
                intensity=name.level,
                statement=name.sentence,
            )
        )
    if not clips:
        raise CorpusLayoutError(f"{root}: no CREMA-D recordings in VideoFlash/ or AudioWAV/")
    return clips


def _float(value: str, where: str, column: str) -> float | None:
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise CorpusLayoutError(f"{where}: {column} {value!r} is not a number") from None
    if not -1.0 <= number <= 1.0:
        raise CorpusLayoutError(f"{where}: {column} {number} is outside [-1, 1]")
    return number


FLAGS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def _flag(value: str, where: str) -> bool | None:
    """A manifest's ``disparate`` column: whether face, voice and words truly disagree in the clip."""
    if not value.strip():
        return None
    try:
        return FLAGS[value.strip().lower()]
    except KeyError:
        raise CorpusLayoutError(f"{where}: disparate {value!r} is not one of yes, no (or true/false, 1/0)") from None


def manifest(path: Path) -> list[Clip]:
    if not path.is_file() or path.suffix.lower() != ".csv":
        raise CorpusLayoutError(
            f"{path}: a manifest corpus is a CSV file with the header "
            "path,label[,speaker][,valence,arousal][,disparate]"
        )
    root = path.parent
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0].keys()) if rows else []
    if (
        not rows
        or header[:2] != ["path", "label"]
        or not set(header) <= {"path", "label", "speaker", "valence", "arousal", "disparate"}
    ):
        raise CorpusLayoutError(
            "expected the header path,label[,speaker][,valence,arousal][,disparate] and at least one row, "
            f"got {header} in {path}"
        )
    clips = []
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        media = root / row["path"]
        if not media.is_file():
            raise CorpusLayoutError(f"{where}: no file {media}")
        try:
            label = check_label(row["label"].strip())
        except ValueError as exc:
            raise CorpusLayoutError(f"{where}: {exc}") from None
        clips.append(
            Clip(
                id=_clip_id("manifest", row["path"]),
                corpus="manifest",
                path=media,
                root=root,
                label=label,
                speaker=(row.get("speaker") or "").strip() or f"manifest-{media.stem}",
                modality="audio" if media.suffix.lower() in AUDIO_SUFFIXES else "audiovisual",
                words_applicable=True,  # a clinic's own recordings: what is said varies
                valence=_float(row.get("valence") or "", where, "valence"),
                arousal=_float(row.get("arousal") or "", where, "arousal"),
                disparate=_flag(row.get("disparate") or "", where),
            )
        )
    return clips


# The corpora evaluate reads: a new layout is one function and one entry here.
CORPORA: dict[str, Callable[[Path], list[Clip]]] = {"ravdess": ravdess, "cremad": cremad, "manifest": manifest}


def read_corpus(spec: str) -> list[Clip]:
    """The clips of ``KIND=PATH``.

    Raises:
        CorpusLayoutError: an unknown kind, a missing path, or a layout that is not the corpus's.
    """
    kind, sep, where = spec.partition("=")
    if not sep or kind not in CORPORA:
        raise CorpusLayoutError(f"--corpus expects KIND=PATH with KIND one of {', '.join(CORPORA)}; got {spec!r}")
    path = Path(where).expanduser()
    if not path.exists():
        raise CorpusLayoutError(f"--corpus {kind}: {path} does not exist")
    return CORPORA[kind](path.resolve())
