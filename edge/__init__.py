"""clinic-edge room runtime: capture, per-window emotion analysis, local storage and MQTT summaries.

Raw video and audio never leave this process: frames and samples live in bounded in-memory queues
and are dropped once analysed; only validated summaries are stored and published.
"""

__version__ = "0.1.0"
