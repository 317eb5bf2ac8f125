"""From frames and samples to per-window results."""

from edge.analysis.frame import FrameAnalyzer
from edge.analysis.results import FaceChannel, FrameAnalysis, VoiceChannel, WindowResult
from edge.analysis.summarize import WindowSummarizer
from edge.analysis.windower import Windower, WindowInput

__all__ = [
    "FaceChannel",
    "FrameAnalysis",
    "FrameAnalyzer",
    "VoiceChannel",
    "WindowInput",
    "WindowResult",
    "WindowSummarizer",
    "Windower",
]
