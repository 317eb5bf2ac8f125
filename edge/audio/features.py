"""The speech channel's features. Defined in :mod:`clinic_signals.audio`, shared with the model
toolchain so that models are trained on exactly the features the room computes."""

from clinic_signals.audio import FrameFeatures, LogMel

__all__ = ["FrameFeatures", "LogMel"]
