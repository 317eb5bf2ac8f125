"""systemd's notification protocol (sd_notify): READY, STATUS, WATCHDOG, STOPPING.

Messages go to the datagram socket named by ``$NOTIFY_SOCKET`` (set by systemd for Type=notify
units); without it every call is a no-op, so the appliance runs the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self._address = address
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None  # ping twice per period
        self._sock: socket.socket | None = None
        self._last_ping = 0.0
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # Abstract-namespace sockets start with '@'.
            self._target = "\0" + address[1:] if address.startswith("@") else address

    @classmethod
    def from_environment(cls) -> Notifier:
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = None  # the watchdog is meant for another process
        return cls(os.environ.get("NOTIFY_SOCKET"), int(usec) if usec and usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._target)
        except OSError as exc:
            logger.warning("cannot notify systemd at %s: %s", self._address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self, healthy: bool) -> None:
        """Ping the watchdog at most once per half period, and only when ``healthy``."""
        if self.watchdog_interval_s is None or not healthy:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval_s:
            self.send("WATCHDOG=1")
            self._last_ping = now

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True)
class Liveness:
    """The watchdog's rule: frames flow and the storage stage keeps up."""

    frame_age_s: float  # since the last analysed frame
    sink_age_s: float  # since the storage stage last finished its loop
    stall_timeout_s: float

    @property
    def healthy(self) -> bool:
        return self.frame_age_s <= self.stall_timeout_s and self.sink_age_s <= self.stall_timeout_s
