"""GStreamer capture into numpy: one source abstraction over cameras, files, RTSP and test sources."""

from edge.capture.frames import AudioChunk, VideoFrame
from edge.capture.pipeline import CaptureStats, GstCapture
from edge.capture.source import SourceSpec, parse_source

__all__ = ["AudioChunk", "CaptureStats", "GstCapture", "SourceSpec", "VideoFrame", "parse_source"]
