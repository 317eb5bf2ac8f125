"""MQTT publishing of validated summaries (never media) from the local outbox."""

from edge.publish.mqtt import MqttClient
from edge.publish.payload import SCHEMA_PATH, SCHEMA_VERSION, Summary, interval_summary, window_summary
from edge.publish.publisher import OutboxPublisher

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "MqttClient",
    "OutboxPublisher",
    "Summary",
    "interval_summary",
    "window_summary",
]
