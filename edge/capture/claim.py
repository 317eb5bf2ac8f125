"""Who has the room's camera and microphone: a session, or the technician's preview.

The setup page's preview (``clinic-edge setup``) and the room's sessions are different processes on
the same devices. A session always wins, at once: before it opens its capture it marks the devices
as wanted (``<state_dir>/capture.wanted``) and takes the lock (``<state_dir>/capture.lock``, an
``flock``). The preview holds the lock while it captures, looks for the mark before every picture,
and when it sees it releases the devices and says why; the session's wait for the lock is bounded
(:data:`CLAIM_TIMEOUT_S`). While the mark is there (a session is on) the preview does not start.
Nothing is written but the two empty files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK = "capture.lock"
WANTED = "capture.wanted"
CLAIM_TIMEOUT_S = 10.0


def _open_lock(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def session_claim(state_dir: Path, timeout_s: float = CLAIM_TIMEOUT_S) -> Iterator[None]:
    """The devices for a session: the preview is told to let go, and the session waits for it (at
    most ``timeout_s``; past that the session goes on and its capture reports a busy device)."""
    wanted = state_dir / WANTED
    fd = _open_lock(state_dir)
    wanted.touch(mode=0o600)
    locked = False
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    logger.error("the setup page's preview did not release the camera within %.0f s", timeout_s)
                    break
                time.sleep(0.05)
        yield
    finally:
        wanted.unlink(missing_ok=True)
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def session_on(state_dir: Path) -> bool:
    """Whether a session wants (or has) the devices."""
    return (state_dir / WANTED).exists()


class PreviewHold:
    """The preview's hold on the devices: taken only when no session wants them."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._fd: int | None = None

    def take(self) -> bool:
        """Whether the preview may capture now (no session, and the lock was free)."""
        if session_on(self.state_dir):
            return False
        fd = _open_lock(self.state_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        if session_on(self.state_dir):  # a session marked itself between the two looks
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            return False
        self._fd = fd
        return True

    def wanted(self) -> bool:
        """A session asks for the devices: release them now."""
        return session_on(self.state_dir)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
