"""The room's identity, what it captures and how: room, capture, windows, vision, audio."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from clinic_common.config import StrictModel

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
    behind_every: int = Field(
        default=3,
        ge=1,
        le=10,
        description="While frames wait for the analysis (the device is behind), face detection and the pulse's "
        "face mesh run on every Nth frame at most, the frames between reusing them, until the analysis has "
        "caught up. 1: every frame whatever the load.",
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
