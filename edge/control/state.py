"""The session state machine shared by the analysis loop and every control channel.

standby --start(consent)--> recording <--pause/resume--> paused;  recording|paused --stop--> standby
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from edge.control.commands import (
    Command,
    CommandError,
    Consent,
    Explain,
    Pause,
    Resume,
    Start,
    StatusQuery,
    Stop,
)

logger = logging.getLogger(__name__)

State = Literal["standby", "recording", "paused"]


class SessionControl:
    def __init__(self, on_change: Callable[[State], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._state: State = "standby"
        self.consent: Consent | None = None
        self.start_requested = threading.Event()  # a start with consent is waiting to be picked up
        self.stop_requested = threading.Event()
        self.resumed = threading.Event()
        self.explain_until = 0.0  # monotonic time until which a clinician asked for explanations
        self.resumed.set()
        self.on_change = on_change
        self._paused_at: float | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def paused(self) -> bool:
        return self._state == "paused"

    def _set(self, state: State) -> None:
        self._state = state
        logger.info("session state: %s", state)
        if self.on_change is not None:
            self.on_change(state)

    def handle(self, command: Command, source: str) -> dict[str, str]:
        """Apply a command; returns a reply. Raises CommandError when the state does not allow it."""
        with self._lock:
            state = self._state
            if isinstance(command, StatusQuery):
                return {"result": "ok", "state": state}
            if isinstance(command, Start):
                if state != "standby" or self.start_requested.is_set():
                    raise CommandError(f"cannot start: a session is already {state}")
                self.consent = command.consent
                self.start_requested.set()
                logger.info(
                    "start requested from %s, consent %s by %s",
                    source,
                    command.consent.method,
                    command.consent.recorded_by,
                )
                return {"result": "ok", "state": "starting"}
            if isinstance(command, Pause):
                if state != "recording":
                    raise CommandError(f"cannot pause: the session is {state}")
                self._paused_at = time.monotonic()
                self.resumed.clear()
                self._set("paused")
                return {"result": "ok", "state": "paused"}
            if isinstance(command, Resume):
                if state != "paused":
                    raise CommandError(f"cannot resume: the session is {state}")
                self._set("recording")
                self.resumed.set()
                return {"result": "ok", "state": "recording"}
            if isinstance(command, Explain):
                if state != "recording":
                    raise CommandError(f"cannot explain: the session is {state}")
                self.explain_until = time.monotonic() + command.seconds
                logger.info("explanations requested from %s for %d s", source, command.seconds)
                return {"result": "ok", "state": state}
            if isinstance(command, Stop):
                if state == "standby":
                    raise CommandError("cannot stop: no session is running")
                self.stop_requested.set()
                self.resumed.set()
                return {"result": "ok", "state": "stopping"}
        raise CommandError(f"unsupported command {command!r}")  # pragma: no cover - exhaustive above

    # -- called by the appliance ------------------------------------------------------------------
    def begin(self, consent: Consent) -> None:
        with self._lock:
            self.consent = consent
            self.start_requested.clear()
            self.stop_requested.clear()
            self.resumed.set()
            self._set("recording")

    def pause_duration(self) -> float:
        """Seconds the last pause lasted (call after resuming)."""
        return 0.0 if self._paused_at is None else time.monotonic() - self._paused_at

    def end(self) -> None:
        with self._lock:
            self.consent = None
            self.explain_until = 0.0
            self.stop_requested.clear()
            self.resumed.set()
            self._set("standby")

    def explain_requested(self, at: float) -> bool:
        """Whether media that arrived at monotonic time ``at`` falls in a requested explanation period."""
        return at <= self.explain_until
