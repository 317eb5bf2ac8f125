"""Several rooms in one process, sharing the model engines.

``clinic-edge serve --config room-a.toml --config room-b.toml`` runs one :class:`Appliance` per
room on its own thread: each room keeps its own capture, analysis, database, control socket, MQTT
connection and metrics, as if it ran alone, while the models are loaded once
(:class:`edge.inference.shared.SharedEngines`) and the Python runtime, GStreamer, MediaPipe and
ONNX Runtime libraries are in memory once. This trades latency for memory: the rooms' Python work
takes turns on one interpreter (docs/benchmarks.md, the rooms benchmark, has both figures).

systemd sees one service: READY once every room is up, STATUS naming each room's state, and the
watchdog fed only while every room is healthy, so one stalled room restarts the service. The first
room that fails stops the others, and the device exits with that room's error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge.config.models import AppConfig
from edge.control.commands import Consent
from edge.errors import ConfigError, EdgeError
from edge.inference.shared import SharedEngines
from edge.runtime.app import Appliance
from edge.runtime.notify import Notifier
from edge.runtime.report import RunReport

logger = logging.getLogger(__name__)


def room_name(config: AppConfig) -> str:
    return f"{config.room.site}/{config.room.room}"


def check_rooms(configs: Sequence[AppConfig]) -> None:
    """Rooms of one process must not share what each room owns.

    Raises:
        ConfigError: no rooms, two rooms with the same site/room, state folder (database and
            control socket) or metrics endpoint.
    """
    if not configs:
        raise ConfigError("a device needs at least one room configuration")
    owners: dict[tuple[str, str], str] = {}
    for config in configs:
        name = room_name(config)
        owned = [("site/room", name), ("storage.state_dir", str(config.storage.state_dir.resolve()))]
        if config.metrics.enabled and config.metrics.port != 0:
            owned.append(("metrics endpoint", f"{config.metrics.host}:{config.metrics.port}"))
        for what, value in owned:
            if (what, value) in owners:
                raise ConfigError(
                    f"rooms {owners[(what, value)]} and {name} have the same {what} ({value}); "
                    "each room of a device needs its own"
                )
            owners[(what, value)] = name


class DeviceNotifier:
    """Folds the rooms' systemd notifications into the one service's."""

    def __init__(self, notifier: Notifier, rooms: Sequence[str]) -> None:
        self._notifier = notifier
        self._lock = threading.Lock()
        self._status = dict.fromkeys(rooms, "starting")
        self._ready: set[str] = set()
        self._healthy_at = dict.fromkeys(rooms, time.monotonic())
        self._announced = False
        # A room not healthy for one watchdog period stops the pings (systemd then restarts).
        interval = notifier.watchdog_interval_s
        self.max_silence_s = 2 * interval if interval is not None else None

    def room(self, name: str) -> RoomNotifier:
        return RoomNotifier(self, name)

    def _summary(self) -> str:
        return "; ".join(f"{room}: {status}" for room, status in self._status.items())

    def ready(self, room: str, status: str) -> None:
        with self._lock:
            self._status[room] = status
            self._ready.add(room)
            self._healthy_at[room] = time.monotonic()
            if not self._announced and self._ready == set(self._status):
                self._announced = True
                self._notifier.ready(self._summary())
            else:
                self._notifier.status(self._summary())

    def status(self, room: str, status: str) -> None:
        with self._lock:
            self._status[room] = status
            self._notifier.status(self._summary())

    def watchdog(self, room: str, healthy: bool, now: float | None = None) -> bool:
        """Record ``room``'s health; ping when every room was healthy within the watchdog period.
        Returns whether the device as a whole counts as healthy."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if healthy:
                self._healthy_at[room] = now
            limit = self.max_silence_s
            all_healthy = limit is not None and all(now - t <= limit for t in self._healthy_at.values())
        self._notifier.watchdog(healthy=all_healthy)
        return all_healthy

    def stopping(self) -> None:
        self._notifier.stopping()


class RoomNotifier(Notifier):
    """The notifier one room of a device uses; everything goes through the :class:`DeviceNotifier`."""

    def __init__(self, device: DeviceNotifier, room: str) -> None:
        super().__init__(None, None)
        self._device = device
        self._room = room

    def ready(self, status: str) -> None:
        self._device.ready(self._room, status)

    def status(self, status: str) -> None:
        self._device.status(self._room, status)

    def stopping(self) -> None:
        self._device.status(self._room, "stopped")

    def watchdog(self, healthy: bool) -> None:
        self._device.watchdog(self._room, healthy)


@dataclass
class _Outcome:
    reports: list[RunReport]
    error: BaseException | None = None


class Device:
    """The rooms of one process. Build it (models load, configs are checked), then ``run`` or ``serve``."""

    def __init__(self, configs: Sequence[AppConfig], notifier: Notifier | None = None) -> None:
        check_rooms(configs)
        self.engines = SharedEngines()
        self._notifier = notifier if notifier is not None else Notifier.from_environment()
        names = [room_name(c) for c in configs]
        self.notifications = DeviceNotifier(self._notifier, names)
        self.rooms: list[Appliance] = []
        try:
            for config, name in zip(configs, names, strict=True):
                self.rooms.append(Appliance(config, engines=self.engines, notifier=self.notifications.room(name)))
        except BaseException:
            for room in self.rooms:
                room.close()
            raise
        logger.info(
            "device: %d rooms (%s) share %d model engines", len(self.rooms), ", ".join(names), len(self.engines)
        )

    def _each(self, work: Callable[[Appliance], list[RunReport]]) -> list[RunReport]:
        outcomes = [_Outcome([]) for _ in self.rooms]

        def target(i: int, room: Appliance) -> None:
            try:
                outcomes[i].reports = work(room)
            except BaseException as exc:  # any room's failure stops the device
                outcomes[i].error = exc
                logger.error("room %s failed: %s; stopping the other rooms", room_name(room.config), exc)
                self.request_stop()

        threads = [
            threading.Thread(target=target, args=(i, room), name=f"room-{room_name(room.config)}")
            for i, room in enumerate(self.rooms)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.5)  # short joins keep the main thread free for signals
        finally:
            self.request_stop()
            for thread in threads:
                thread.join()
            self._notifier.stopping()
            self._notifier.close()
        errors = [o.error for o in outcomes if o.error is not None]
        if errors:
            first = errors[0]
            if isinstance(first, EdgeError):
                raise first
            raise EdgeError(f"a room failed: {first!r}") from first
        return [report for outcome in outcomes for report in outcome.reports]

    def run(self, duration_s: float | None = None, *, consent: Consent) -> list[RunReport]:
        """Record one session in every room now, with ``consent`` obtained for each."""
        return self._each(lambda room: [room.run(duration_s, consent=consent)])

    def serve(self) -> list[RunReport]:
        """Every room in standby, running sessions on its own start commands, until asked to stop."""
        return self._each(lambda room: room.serve())

    def request_stop(self) -> None:
        for room in self.rooms:
            room.request_stop()
