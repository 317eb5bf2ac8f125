"""Per-window audio: log-mel features and voice activity."""

from edge.audio.features import LogMel
from edge.audio.vad import VoiceActivity, detect_voice

__all__ = ["LogMel", "VoiceActivity", "detect_voice"]
