"""The hub's MQTT side: persistent MQTT 5 sessions, batches acknowledged after their commit, and
workers that share the stream and take over a dead peer's session.

Every connection keeps its session (``clean_start`` off, a week's expiry), so the broker queues QoS 1
messages while a worker is down. Messages go into one bounded queue (a full queue holds the network thread: the
broker holds back the rest); the writer thread takes up to
``ingest.batch_size`` of them, or what arrived within ``ingest.batch_ms`` of the first, stores them
in one transaction (:meth:`hub.ingest.Ingest.store_batch`) and only then acknowledges each (paho's
manual acknowledgement). A database failure leaves the batch unacknowledged; it is tried again
until it is stored.

With ``ingest.share_group`` set, several workers subscribe to
``$share/<group>/<prefix>/+/+/summary`` (and ``.../event``, ``.../retract``) and the broker gives
each message to one of them. The broker keeps sending a share of the stream to the session of a
worker that died (and, for MQTT, rightly keeps what that worker had not acknowledged). So every
worker announces itself on ``<prefix>/_hub/workers/<group>/<name>`` (retained ``online``,
``offline`` as its last will, ``stopped`` on a clean stop); when a peer is not online, the next live
worker in name order connects with the peer's client id and stores its session's messages too, until
the peer comes back and takes its session over. Nothing is lost and, with de-duplication by message
id, nothing is counted twice."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from clinic_common.errors import PublishError
from clinic_common.mqtt import MqttConfig, configure_credentials
from hub.config import IngestConfig
from hub.ingest import TRANSIENT, Ingest

logger = logging.getLogger(__name__)

QOS = 1
SEQUENCED = ("summary", "event", "retract")  # the topics of a room's sequence
SESSION_EXPIRY_S = 7 * 24 * 3600
TAKEN_OVER = 142  # MQTT 5 reason code: "Session taken over"


@dataclass(frozen=True)
class Delivery:
    link: Link
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class Link:
    """One MQTT connection (one session) whose messages go to the writer's queue."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        deliver: Callable[[Delivery], None],
        *,
        receive_maximum: int,
        topics: list[str],
        will: tuple[str, str] | None = None,
        on_up: Callable[[Link], None] | None = None,
        adopted: bool = False,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.deliver = deliver
        self.topics = topics
        self.receive_maximum = receive_maximum
        self.adopted = adopted
        self.generation = 0
        self.connected = threading.Event()
        self.closed = threading.Event()
        self._on_up = on_up
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        configure_credentials(self.client, config)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.receive_maximum  # unacknowledged messages the broker may send at once
        try:
            self.client.connect_async(
                self.config.host,
                self.config.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot reach the MQTT broker {self.config.host}:{self.config.port}: {exc}") from exc
        self.client.loop_start()

    def stop(self) -> None:
        self.closed.set()
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge a stored message, unless the connection it came on is gone (the broker then sends
        it again on the next one, and it is recognised as a duplicate)."""
        with self._lock:
            if delivery.generation == self.generation and self.connected.is_set():
                self.client.ack(delivery.mid, delivery.qos)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            logger.error("MQTT broker refused %s: %s", self.client_id, reason)
            return
        with self._lock:
            self.generation += 1
            self.connected.set()
        for topic in self.topics:
            client.subscribe(topic, qos=QOS)
        logger.info("%s connected to %s:%d", self.client_id, self.config.host, self.config.port)
        if self._on_up is not None:
            self._on_up(self)

    def _on_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.connected.clear()
        if self.adopted and reason.value == TAKEN_OVER:
            logger.info("%s is back and took its session over", self.client_id)
            self.closed.set()
            client.disconnect()  # no reconnection: the session is its owner's again
            return
        if not self.closed.is_set():
            logger.warning("%s disconnected from the broker (%s); reconnecting", self.client_id, reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.deliver(Delivery(self, self.generation, message.mid, message.qos, message.topic, bytes(message.payload)))


class Subscriber:
    """Receives the rooms' messages (alone, or as one of a group of workers) and stores them in batches."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        ingest: Ingest,
        settings: IngestConfig | None = None,
        worker: str | None = None,
    ) -> None:
        self.config = config
        self.ingest = ingest
        self.settings = settings or IngestConfig()
        self.base_id = client_id
        self.worker = worker
        self.group = self.settings.share_group
        self.name = worker or "main"
        self.connected = threading.Event()
        self.handled = 0  # messages stored (or set aside) and acknowledged
        self._halt = threading.Event()
        s = self.settings
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=2 * s.batch_size)
        self._writer = threading.Thread(target=self._write, name="hub-writer", daemon=True)
        self._adopted: dict[str, Link] = {}
        self._peers: dict[str, str] = {}
        self._peer_lock = threading.Lock()
        prefix = config.topic_prefix
        # Summaries, disparity events and retractions: the room's sequence, shared among the workers.
        sequenced = [f"{prefix}/+/+/{kind}" for kind in SEQUENCED]
        topics = [f"$share/{self.group}/{t}" if self.group else t for t in sequenced] + [f"{prefix}/+/+/status"]
        will = None
        if self.group:
            self.presence = f"{prefix}/_hub/workers/{self.group}"
            topics.append(f"{self.presence}/+")
            will = (f"{self.presence}/{self.name}", "offline")
        self.link = Link(
            config,
            self._client_id(self.name) if worker or self.group else client_id,  # a peer adopts it by name
            self._enqueue,
            receive_maximum=s.receive_maximum,
            topics=topics,
            will=will,
            on_up=self._announce,
        )

    @property
    def topics(self) -> list[str]:
        return self.link.topics

    def _client_id(self, name: str) -> str:
        return f"{self.base_id}-{name}"

    def start(self) -> None:
        self._writer.start()
        self.link.start()

    def stop(self) -> None:
        self._halt.set()
        self._writer.join(timeout=30)  # what was taken is stored and acknowledged before leaving
        if self.group and self.link.connected.is_set():
            self.link.client.publish(f"{self.presence}/{self.name}", "stopped", qos=1, retain=True).wait_for_publish(5)
        for link in list(self._adopted.values()):
            link.stop()
        self.link.stop()

    # --- receiving ---------------------------------------------------------------------------------

    def _announce(self, link: Link) -> None:
        self.connected.set()
        self.ingest.metrics.connected.set(1)
        if self.group:
            link.client.publish(f"{self.presence}/{self.name}", "online", qos=1, retain=True)

    def _enqueue(self, delivery: Delivery) -> None:
        if self.group and delivery.topic.startswith(self.presence + "/"):
            self._peer(delivery.topic.rsplit("/", 1)[-1], delivery.payload.decode("utf-8", "replace"))
            delivery.link.ack(delivery)
            return
        if self._halt.is_set():
            return  # stopping: not taken, so not acknowledged; the broker sends it again
        # A full queue holds paho's network thread, so the broker holds the rest (TCP flow control):
        # nothing is dropped. A wait longer than the keep-alive ends the connection; the broker then
        # sends everything unacknowledged again and duplicates are recognised.
        while not self._halt.is_set():
            try:
                self._queue.put(delivery, timeout=1.0)
                return
            except queue.Full:
                self.ingest.metrics.queue_waits.inc()

    # --- writing -----------------------------------------------------------------------------------

    def _take(self) -> list[Delivery]:
        """The next batch: up to ``batch_size`` messages, or what came within ``batch_ms`` of the first."""
        try:
            batch = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.settings.batch_ms / 1000
        while len(batch) < self.settings.batch_size:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self) -> None:
        while not (self._halt.is_set() and self._queue.empty()):
            batch = self._take()
            if batch:
                self._store(batch)

    def _store(self, batch: list[Delivery]) -> None:
        delay = 0.1
        while True:
            try:
                self.ingest.store_batch([(d.topic, d.payload) for d in batch])
                break
            except TRANSIENT as exc:  # not acknowledged; tried again until the database answers
                self.ingest.metrics.store_failures.inc(len(batch))
                logger.error("storing a batch of %d failed (%s); trying again in %.1f s", len(batch), exc, delay)
                if self._halt.wait(delay):
                    return  # stopping: unacknowledged, the broker sends them again
                delay = min(delay * 2, 30.0)
        for d in batch:
            d.link.ack(d)
        self.handled += len(batch)

    # --- peers -------------------------------------------------------------------------------------

    def _peer(self, name: str, state: str) -> None:
        """A worker's presence changed: adopt a peer's session when it is not online and this worker is
        the next live one after it; give an adopted session back when its owner is online. An empty
        presence is a retired worker (its session ended: nothing to adopt)."""
        with self._peer_lock:
            if state:
                self._peers[name] = state
            else:
                self._peers.pop(name, None)
            for gone in [p for p in self._adopted if p not in self._peers]:
                threading.Thread(target=self._adopted.pop(gone).stop, daemon=True).start()
            live = sorted(n for n, s in self._peers.items() if s == "online")
            for peer, peer_state in sorted(self._peers.items()):
                if peer == self.name:
                    continue
                adopter = next((n for n in live if n > peer), live[0] if live else None)
                link = self._adopted.get(peer)
                if link is not None and link.closed.is_set():
                    del self._adopted[peer]
                    link = None
                if peer_state != "online" and adopter == self.name and link is None:
                    logger.warning("worker %s is %s: storing its share of the stream here", peer, peer_state)
                    self._adopt(peer)
                elif (peer_state == "online" or adopter != self.name) and link is not None:
                    threading.Thread(target=link.stop, daemon=True).start()
                    del self._adopted[peer]

    def _adopt(self, peer: str) -> None:
        link = Link(
            self.config,
            self._client_id(peer),
            self._enqueue,
            receive_maximum=self.settings.receive_maximum,
            topics=[],  # the session keeps its subscription
            adopted=True,
        )
        self._adopted[peer] = link
        link.start()

    def retire(self, quiet_s: float = 5.0) -> int:
        """End this worker's place in the share group for good: leave the shared subscription, store
        what its session still holds (until nothing came for ``quiet_s``), end the session at the
        broker and clear the presence. Returns the messages stored meanwhile."""
        if not self.group or not self.link.connected.wait(60):
            raise PublishError(f"cannot retire {self.link.client_id}: not a connected worker of a share group")
        self.link.client.unsubscribe([t for t in self.link.topics if t.startswith("$share/")])
        last, seen = -1, time.monotonic()
        while time.monotonic() - seen < quiet_s or not self._queue.empty():
            if self.handled != last:
                last, seen = self.handled, time.monotonic()
            time.sleep(0.2)
        self._halt.set()
        self._writer.join(timeout=60)
        presence = f"{self.presence}/{self.name}"
        self.link.client.publish(presence, b"", qos=1, retain=True).wait_for_publish(10)
        end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        end.SessionExpiryInterval = 0  # the broker forgets the session: no more share of the stream
        self.link.closed.set()
        self.link.client.disconnect(properties=end)
        self.link.client.loop_stop()
        return self.handled

    @property
    def adopted(self) -> list[str]:
        with self._peer_lock:
            return sorted(n for n, link in self._adopted.items() if not link.closed.is_set())
