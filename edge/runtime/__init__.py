"""Wires capture, analysis, storage and publishing into the running appliance."""

from edge.runtime.app import Appliance
from edge.runtime.report import RunReport

__all__ = ["Appliance", "RunReport"]
