"""The MQTT connection (paho-mqtt 2, MQTT v5): topics, QoS, retained status and last will in one place."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from clinic_common.mqtt import MqttConfig, configure_credentials
from contract.payload import Status
from edge.config.models import RoomConfig
from edge.errors import PublishError

logger = logging.getLogger(__name__)

QOS = 1
OUTBOX_REPORT_S = 60.0  # a changing backlog is reported at most this often
# Reconnection waits 1, 2, 4, 8 s, then every RECONNECT_MAX_S: a broker back from a restart has the
# room's summaries within seconds (they wait in the outbox), and an attempt costs the broker nothing.
RECONNECT_MAX_S = 8

# (mid, success, reason) for each acknowledged publish; called on paho's network thread.
AckCallback = Callable[[int, bool, str], None]


class MqttClient:
    """Publishes to ``<prefix>/<site>/<room>/<suffix>``; keeps ``status`` retained with a last will."""

    def __init__(self, config: MqttConfig, room: RoomConfig) -> None:
        self.config = config
        self.base = f"{config.topic_prefix}/{room.site}/{room.room}"
        self.device_id = room.device_id
        self.connected = threading.Event()
        self.on_ack: AckCallback | None = None
        self.on_connection_change: Callable[[bool], None] | None = None
        self._last_error: str | None = None
        self._stopping = False
        self._degraded: set[str] = set()
        self._session: Literal["standby", "recording", "paused"] = "standby"
        self._outbox: int | None = None
        self._outbox_shown: int | None = None  # the backlog the last published status carried
        self._outbox_published_at = 0.0
        self.calibrated_at: str | None = None
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"clinic-edge-{room.site}-{room.room}-{room.device_id}",
            protocol=mqtt.MQTTv5,
        )
        configure_credentials(self._client, config)
        self._client.will_set(self.topic("status"), self._status("offline"), qos=QOS, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    def topic(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"

    def _publish_status(self) -> None:
        """The retained ``online`` status with the current session, backlog and degradations."""
        self._outbox_shown = self._outbox
        self._client.publish(self.topic("status"), self._status("online"), qos=QOS, retain=True)

    def _status(self, state: Literal["online", "offline", "stopped"]) -> str:
        return Status(
            state=state,
            session=self._session,
            degraded=sorted(self._degraded),  # type: ignore[arg-type]
            device_id=self.device_id,
            ts=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            outbox=self._outbox,
            calibrated_at=self.calibrated_at,
        ).model_dump_json()

    # -- paho callbacks (network thread) ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._last_error = f"broker refused the connection: {reason}"
            logger.error("MQTT %s", self._last_error)
            return
        self._publish_status()
        for topic in self._subscriptions:  # (re)subscribe on every connection
            client.subscribe(topic, qos=QOS)
        self.connected.set()
        logger.info("MQTT connected to %s:%d", self.config.host, self.config.port)
        if self.on_connection_change:
            self.on_connection_change(True)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping:
            logger.warning("MQTT disconnected (%s); summaries stay in the outbox until it returns", reason)
        if self.on_connection_change:
            self.on_connection_change(False)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        if self.on_ack:
            self.on_ack(mid, not reason.is_failure, str(reason))

    def set_session(self, state: Literal["standby", "recording", "paused"]) -> None:
        """Publish the session state in the retained status at once."""
        self._session = state
        if self.connected.is_set():
            self._publish_status()

    def set_outbox(self, pending: int) -> None:
        """Report the outbox backlog in the retained status: at once when a backlog begins (more
        than the in-flight window waits) or when a reported backlog clears, otherwise at most once
        a minute. Summaries passing through one by one change nothing worth a status."""
        self._outbox = pending
        shown = self._outbox_shown
        now = time.monotonic()
        due = (
            shown is None
            or (shown > 0 and pending == 0)
            or (shown < self.config.max_inflight <= pending)
            or (pending != shown and now - self._outbox_published_at >= OUTBOX_REPORT_S)
        )
        if self.connected.is_set() and due:
            self._outbox_published_at = now
            self._publish_status()

    def set_degraded(self, reason: str, degraded: bool) -> None:
        """Add or clear a degradation reason; the retained status is republished at once."""
        if degraded == (reason in self._degraded):
            return
        (self._degraded.add if degraded else self._degraded.discard)(reason)
        if self.connected.is_set():
            self._publish_status()

    # -- the three operations -----------------------------------------------------------------------
    def connect(self, *, required: bool) -> None:
        """Start the network loop and wait up to ``connect_timeout_s`` for the broker.

        Raises:
            PublishError: when ``required`` and the broker cannot be reached in time.
        """
        where = f"{self.config.host}:{self.config.port}"
        try:
            self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot connect to MQTT broker {where}: {exc}") from exc
        self._client.loop_start()
        if self.connected.wait(self.config.connect_timeout_s):
            return
        reason = self._last_error or f"no answer within {self.config.connect_timeout_s:.0f} s"
        if required:
            self.stop(clean=False)
            raise PublishError(
                f"MQTT broker {where} is unreachable ({reason}); start it or set mqtt.required_at_start = false"
            )
        logger.warning(
            "MQTT broker %s is unreachable (%s); running anyway, summaries are kept in the local outbox and "
            "published when the broker is back",
            where,
            reason,
        )

    def publish(self, suffix: str, payload: str, *, retain: bool = False) -> int:
        """Queue a QoS 1 publish; returns its message id, or raises when not connected."""
        if not self.connected.is_set():
            raise PublishError("not connected to the MQTT broker")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "application/json"
        info = self._client.publish(self.topic(suffix), payload, qos=QOS, retain=retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {self.topic(suffix)} failed: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def publish_topic(self, topic: str, payload: str) -> int:
        """Publish to a full topic already built with :meth:`topic` (outbox rows keep theirs)."""
        if not topic.startswith(self.base + "/"):
            raise PublishError(f"topic {topic!r} is outside this room's {self.base}/")
        return self.publish(topic.removeprefix(self.base + "/"), payload)

    def subscribe(self, suffix: str, callback: Callable[[str, bytes], None]) -> None:
        """Subscribe to one of this room's topics; kept across reconnections."""
        topic = self.topic(suffix)
        self._subscriptions[topic] = callback

        def deliver(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            if msg.retain:
                # A retained command would act again at every connection: never obeyed, and cleared.
                if msg.payload:
                    logger.warning("ignored a retained message on %s (commands are never retained); clearing it", topic)
                    self._client.publish(topic, b"", qos=QOS, retain=True)
                return
            callback(msg.topic, bytes(msg.payload))

        self._client.message_callback_add(topic, deliver)
        if self.connected.is_set():
            self._client.subscribe(topic, qos=QOS)

    def stop(self, *, clean: bool = True) -> None:
        """Publish ``stopped`` (retained) on a clean exit, then disconnect."""
        self._stopping = True
        if clean and self.connected.is_set():
            info = self._client.publish(self.topic("status"), self._status("stopped"), qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout=3.0)
            except RuntimeError:
                logger.warning("could not publish the 'stopped' status")
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
