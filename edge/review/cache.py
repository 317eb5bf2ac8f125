"""The session pages' built parts, kept in the review process's memory (never written anywhere) so a
long session is built once, not on every view. An entry is keyed by the session and what can change
it (its windows, moments and end): a session that grows is built again. Erasure drops its entry at
once, and every view of the list drops the entries of sessions no longer stored (erased from the
shell, or past retention)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge.store import SessionRow

logger = logging.getLogger(__name__)

PAGES_KEPT = 24


@dataclass(frozen=True)
class BuiltPage:
    report: str  # the report's HTML body
    timeline: str  # the interactive timeline's JSON


Key = tuple[str, int, int, str | None]


def key_of(row: SessionRow) -> Key:
    return (row.id, row.windows, row.events, row.ended_at)


class PageCache:
    """At most ``size`` built pages, least recently viewed dropped first; one build per session at a time."""

    def __init__(self, size: int = PAGES_KEPT) -> None:
        self.size = size
        self._pages: OrderedDict[str, tuple[Key, BuiltPage]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, row: SessionRow, build: Callable[[], BuiltPage]) -> BuiltPage:
        """The page of ``row``, built by ``build`` unless kept for the session as it is now."""
        key = key_of(row)
        with self._lock:
            found = self._pages.get(row.id)
            if found is not None and found[0] == key:
                self._pages.move_to_end(row.id)
                return found[1]
            gate = self._building.setdefault(row.id, threading.Lock())
        with gate:  # two therapists opening one session build it once
            with self._lock:
                found = self._pages.get(row.id)
                if found is not None and found[0] == key:
                    return found[1]
            built = build()
            with self._lock:
                self._pages[row.id] = (key, built)
                self._pages.move_to_end(row.id)
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
                self._building.pop(row.id, None)
        return built

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._pages.pop(session_id, None)

    def keep_only(self, stored: Iterable[str]) -> None:
        """Forget every session not among ``stored`` (the database's sessions now)."""
        keep = set(stored)
        with self._lock:
            for sid in [s for s in self._pages if s not in keep]:
                del self._pages[sid]

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._pages
