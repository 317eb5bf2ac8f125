"""Wires capture, analysis, storage and publishing into the running appliance."""

from edge.runtime.app import Appliance, RunReport

__all__ = ["Appliance", "RunReport"]
