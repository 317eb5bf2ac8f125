"""clinic-edge room runtime: capture, per-window emotion analysis, local storage and MQTT summaries.

Raw video and audio never leave this process: frames and samples live in bounded in-memory queues
and are dropped once analysed; only validated summaries are stored and published.
"""

from edge.native import apply_defaults, tune_malloc

# Before numpy or any model library is loaded by anything under edge (edge.native says why).
apply_defaults()
tune_malloc()

from clinic_common import __version__  # noqa: E402 - after the thread defaults

__all__ = ["__version__"]
