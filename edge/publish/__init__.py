"""MQTT publishing of validated summaries (never media) from the local outbox."""

from edge.publish.mqtt import MqttClient
from edge.publish.payload import interval_summary, window_summary
from edge.publish.publisher import OutboxPublisher

__all__ = [
    "MqttClient",
    "OutboxPublisher",
    "interval_summary",
    "window_summary",
]
