"""Enrolled staff voices: one file per staff member, holding the embedding only.

``clinic-edge staff-voice enroll`` reads a recording of the staff member (a WAV file they made for
this, at least ``MIN_SPEECH_S`` seconds of speech), keeps only its voiced frames in memory, and
stores their speaker embedding with the enrolment date and the reference of the staff member's
consent; the recording itself is never copied. A voice embedding is biometric data: files are
``0600`` in a ``0700`` folder, written atomically, listed and removed by the same command.
Embeddings belong to the encoder that made them: an enrolment made with another encoder (a new
pack) is not compared and is named at start, to be made again.
"""

from __future__ import annotations

import logging
import os
import re
import wave
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clinic_signals.audio import LogMel
from contract.audio import SAMPLE_RATE
from edge.audio.vad import voice_activity
from edge.config.models import AudioConfig
from edge.errors import EdgeError
from edge.speakers.encoder import SpeakerEncoder

logger = logging.getLogger(__name__)

MIN_SPEECH_S = 10.0
STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class EnrolmentError(EdgeError):
    """A staff voice cannot be enrolled, read or removed (the message says why)."""

    exit_code = 2


class StaffVoice(BaseModel):
    """One staff member's enrolment: an embedding, never audio."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    staff_id: Annotated[str, Field(pattern=STAFF_ID.pattern)]
    consent: str = Field(min_length=1, max_length=200, description="Reference of the staff member's consent.")
    enrolled_at: str = Field(max_length=40)
    speech_s: float = Field(ge=MIN_SPEECH_S)
    encoder: str = Field(max_length=100)
    encoder_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    embedding: list[float] = Field(min_length=16, max_length=4096)

    @field_validator("embedding")
    @classmethod
    def _unit(cls, value: list[float]) -> list[float]:
        norm = float(np.linalg.norm(value))
        if not 0.99 <= norm <= 1.01:
            raise ValueError(f"not a unit embedding (norm {norm:.3f})")
        return value


@dataclass(frozen=True)
class StaffEmbeddings:
    """The enrolled voices a room compares with: ``(n, d)`` unit rows, and their staff ids."""

    ids: tuple[str, ...]
    matrix: npt.NDArray[np.float32]

    @classmethod
    def none(cls, dims: int = 256) -> StaffEmbeddings:
        return cls((), np.zeros((0, dims), dtype=np.float32))


def read_wav(path: Path | BinaryIO) -> npt.NDArray[np.float32]:
    """A 16-bit PCM WAV file (a path, or its bytes in memory) as 16 kHz mono float32.

    Raises:
        EnrolmentError: the file is missing or is not 16-bit PCM WAV."""
    if not isinstance(path, Path):
        path_or_file: str | BinaryIO = path
        path = Path("the recording")  # how messages name a file given in memory
    else:
        path_or_file = str(path)
    try:
        with wave.open(path_or_file, "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except FileNotFoundError:
        raise EnrolmentError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise EnrolmentError(f"{path}: not a WAV file ({exc})") from None
    if width != 2:
        raise EnrolmentError(
            f"{path}: {8 * width}-bit samples; record 16-bit PCM (e.g. arecord -f S16_LE -r {SAMPLE_RATE})"
        )
    pcm = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
    mono = pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly  # noqa: PLC0415 - only here: SciPy's signal module is ~60 MiB

        divisor = np.gcd(rate, SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // divisor, rate // divisor).astype(np.float32)
    return mono.astype(np.float32)


def speech_only(audio: npt.NDArray[np.float32], config: AudioConfig) -> npt.NDArray[np.float32]:
    """The voiced 10 ms frames of ``audio``, joined (pauses and silence removed)."""
    logmel = LogMel(n_mels=config.n_mels)
    activity = voice_activity(audio, logmel, config)
    hop = logmel.hop
    spans = [audio[i * hop : (i + 1) * hop] for i in np.flatnonzero(activity.voiced)]
    return np.concatenate(spans) if spans else np.zeros(0, dtype=np.float32)


class StaffVoices:
    """The folder of enrolments (``[speakers] staff_dir``)."""

    def __init__(self, folder: Path, owner: tuple[int, int] | None = None) -> None:
        self.folder = folder
        self.owner = owner  # (uid, gid) given the folder and files when root enrols for the service user

    def _path(self, staff_id: str) -> Path:
        if not STAFF_ID.match(staff_id):
            raise EnrolmentError(
                f"staff id {staff_id!r}: use letters, digits, '.', '_' or '-' (at most 64, not starting with a sign)"
            )
        return self.folder / f"{staff_id}.json"

    def enroll(
        self, staff_id: str, consent: str, audio: npt.NDArray[np.float32], encoder: SpeakerEncoder, config: AudioConfig
    ) -> StaffVoice:
        """Embed the speech in ``audio`` and store it (replacing an earlier enrolment of ``staff_id``).

        Raises:
            EnrolmentError: less than ``MIN_SPEECH_S`` seconds of speech, a bad id or consent, or the
                folder cannot be written."""
        path = self._path(staff_id)
        speech = speech_only(audio, config)
        seconds = speech.shape[0] / SAMPLE_RATE
        if seconds < MIN_SPEECH_S:
            raise EnrolmentError(
                f"{seconds:.1f} s of speech in the recording; enrolment needs at least {MIN_SPEECH_S:.0f} s "
                "(read a paragraph aloud, in the room's usual voice)"
            )
        embedding = encoder.embed(speech)
        try:
            voice = StaffVoice(
                staff_id=staff_id,
                consent=consent,
                enrolled_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                speech_s=round(seconds, 1),
                encoder=encoder.name,
                encoder_sha256=encoder.sha256,
                embedding=[round(float(v), 6) for v in embedding],
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise EnrolmentError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        self._write(path, voice.model_dump_json(indent=1))
        logger.info("enrolled the voice of %s (%.0f s of speech)", staff_id, seconds)
        return voice

    def _write(self, path: Path, text: str) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.folder.chmod(0o700)
            tmp = path.with_suffix(".json.partial")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if self.owner is not None:
                os.chown(self.folder, *self.owner)
                os.chown(tmp, *self.owner)
            tmp.replace(path)
        except OSError as exc:
            raise EnrolmentError(f"cannot write {path}: {exc.strerror}") from None

    def list(self) -> list[StaffVoice]:
        """Every readable enrolment (unreadable files are named in the log and skipped)."""
        if not self.folder.is_dir():
            return []
        voices = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                voices.append(StaffVoice.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                logger.warning("%s is not a staff voice enrolment and is ignored (%s)", path, type(exc).__name__)
        return voices

    def remove(self, staff_id: str) -> None:
        """Delete the enrolment (overwritten first, then unlinked).

        Raises:
            EnrolmentError: nobody of that id is enrolled."""
        path = self._path(staff_id)
        if not path.is_file():
            enrolled = ", ".join(v.staff_id for v in self.list()) or "nobody"
            raise EnrolmentError(f"{staff_id} has no enrolled voice (enrolled: {enrolled})")
        try:
            size = path.stat().st_size
            with path.open("r+b") as f:
                f.write(b"\0" * size)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
        except OSError as exc:
            raise EnrolmentError(f"cannot remove {path}: {exc.strerror}") from None
        logger.info("removed the enrolled voice of %s", staff_id)

    def embeddings(self, encoder: SpeakerEncoder) -> StaffEmbeddings:
        """The enrolments made with ``encoder`` (others are named: they must be made again)."""
        usable: list[StaffVoice] = []
        stale: list[StaffVoice] = []
        for voice in self.list():
            (usable if voice.encoder_sha256 == encoder.sha256 else stale).append(voice)
        if stale:
            logger.warning(
                "enrolled with another speaker encoder, so not compared (enrol again): %s",
                ", ".join(v.staff_id for v in stale),
            )
        if not usable:
            return StaffEmbeddings.none()
        return StaffEmbeddings(
            tuple(v.staff_id for v in usable), np.array([v.embedding for v in usable], dtype=np.float32)
        )
