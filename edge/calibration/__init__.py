"""Room calibration: measure a room's camera and microphone, judge each measure, write the profile."""

from edge.calibration.checks import judge
from edge.calibration.measure import FrameStats, Measurements, measure_frame, measure_source

__all__ = ["FrameStats", "Measurements", "judge", "measure_frame", "measure_source"]
