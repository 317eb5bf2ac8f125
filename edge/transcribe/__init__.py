"""Speech to text on the device: whisper.cpp and faster-whisper behind one interface.

Transcripts are the most sensitive data the room sees: they stay in memory for the text channel
and are never published.
"""

from edge.transcribe.base import Segment, Transcriber, Transcript
from edge.transcribe.create import create_transcriber
from edge.transcribe.errors import TranscriberError

__all__ = ["Segment", "Transcriber", "TranscriberError", "Transcript", "create_transcriber"]
