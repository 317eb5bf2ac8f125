"""Fusion of the channels' class distributions into the window's emotion, with calibration,
abstention, mixed emotions and exact Shapley contributions of each channel."""
