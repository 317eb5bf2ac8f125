"""Prometheus metrics of the appliance. Counts and timings only; never emotion values."""

from edge.metrics.metrics import Metrics

__all__ = ["Metrics"]
