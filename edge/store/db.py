"""The appliance's SQLite database (WAL, synchronous=FULL, one writer per connection).

Each thread that touches the database opens its own :class:`Store` on the same file. Its parts by
concern: the connection (:mod:`edge.store.core`), the outbox (:mod:`edge.store.outbox`), retention
and erasure (:mod:`edge.store.retention`); sessions and windows are here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from contract.classes import CLASSES
from edge.channels.registry import ChannelRegistry, default_registry
from edge.control.commands import Consent
from edge.errors import StoreError
from edge.results import DisparityEvent, Utterance, WindowResult
from edge.store.core import BUSY_TIMEOUT_MS, JOURNAL_LIMIT_BYTES, now_iso
from edge.store.migrations import add_channel_columns, migrate
from edge.store.outbox import OutboxRow
from edge.store.retention import Erased, RetentionStore, SessionRunningError, remove_reports

__all__ = ["Erased", "OutboxRow", "SessionRow", "SessionRunningError", "Store", "remove_reports"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRow:
    """One session as the review page and ``clinic-edge session list`` show it (no client identity)."""

    id: str
    started_at: str
    ended_at: str | None
    ended_by: str | None
    consent_method: str | None
    consent_recorded_by: str | None
    windows: int
    analysed: int  # windows with a result from at least one channel
    events: int  # disparity moments
    paused_s: float
    consent_reference: str | None = None  # the clinic's key to its own record (what the therapist typed)
    source_kind: str | None = None
    media_s: float | None = None  # where the last window ends: the recording's own time

    @property
    def duration_s(self) -> float | None:
        """How long the session lasted: a recording's own length for a file (analysed faster or
        slower than it plays), else the time from start to end without its pauses."""
        if self.ended_at is None:
            return None
        if self.source_kind == "file" and self.media_s is not None:
            return self.media_s
        start = datetime.fromisoformat(self.started_at)
        return max((datetime.fromisoformat(self.ended_at) - start).total_seconds() - self.paused_s, 0.0)

    @property
    def coverage(self) -> float | None:
        """Share of the session's windows that some channel could analyse."""
        return self.analysed / self.windows if self.windows else None


class Store(RetentionStore):
    def __init__(self, path: Path, *, migrate_schema: bool = True, registry: ChannelRegistry | None = None) -> None:
        """Open (and with ``migrate_schema`` migrate) the database; each channel of ``registry``
        (the product's by default) is stored in its own JSON column of ``windows``."""
        self.registry = registry if registry is not None else default_registry()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self.path = path
        self.db = sqlite_utils.Database(conn)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not just unlinked
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT_BYTES}")  # the WAL shrinks back after use
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if migrate_schema:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(f"database {path} failed its integrity check: {check}")
                migrate(self.db)
                add_channel_columns(self.db, self.registry.names)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"database {path} is unusable: {exc}") from exc
        if migrate_schema:
            self.finish_removals()  # an erasure interrupted after its commit is completed here

    # -- sessions --------------------------------------------------------------------------------
    def start_session(
        self,
        *,
        site: str,
        room: str,
        device_id: str,
        source_kind: str,
        backend: str,
        model_sha256: str,
        consent: Consent,
    ) -> str:
        session_id = str(uuid.uuid4())
        row = {
            "id": session_id,
            "site": site,
            "room": room,
            "device_id": device_id,
            "source_kind": source_kind,
            "backend": backend,
            "face_model_sha256": model_sha256,
            "started_at": now_iso(),
            "consent_method": consent.method,
            "consent_recorded_by": consent.recorded_by,
            "consent_reference": consent.reference,
            "consent_recorded_at": (
                consent.recorded_at.isoformat(timespec="seconds") if consent.recorded_at else now_iso()
            ),
            "pauses": 0,
            "paused_s": 0.0,
        }
        self._write("the session", lambda: self._insert("sessions", row))
        return session_id

    def record_pause(self, session_id: str, paused_s: float) -> None:
        self._write(
            "a pause",
            lambda: self.db.conn.execute(
                "UPDATE sessions SET pauses = pauses + 1, paused_s = paused_s + ? WHERE id = ?", [paused_s, session_id]
            ),
        )

    def end_session(self, session_id: str, *, frames: int, frames_dropped: int) -> None:
        def body() -> None:
            count = self.db.execute("SELECT COUNT(*) FROM windows WHERE session_id = ?", [session_id]).fetchone()[0]
            self.db.conn.execute(
                "UPDATE sessions SET ended_at = ?, ended_by = 'stop', windows = ?, frames = ?, frames_dropped = ? "
                "WHERE id = ?",
                [now_iso(), count, frames, frames_dropped, session_id],
            )

        self._write("the session end", body)

    def close_abandoned(self) -> list[str]:
        """Close every session left open by a crash or a kill: ended at its last window (or its
        start, with none), marked ``ended_by = 'crash'``. Run at start, before any session."""

        def body() -> list[str]:
            conn = self.db.conn
            ids = [r[0] for r in conn.execute("SELECT id FROM sessions WHERE ended_at IS NULL")]
            conn.execute(
                "UPDATE sessions SET ended_by = 'crash', "
                "ended_at = COALESCE("
                "(SELECT MAX(created_at) FROM windows WHERE session_id = sessions.id), started_at), "
                "windows = (SELECT COUNT(*) FROM windows WHERE session_id = sessions.id) "
                "WHERE ended_at IS NULL"
            )
            return ids

        closed: list[str] = self._write("the close of abandoned sessions", body)
        if closed:
            logger.warning("closed %d session(s) left open by a crash: %s", len(closed), ", ".join(closed))
        return closed

    # -- windows and outbox ------------------------------------------------------------------------
    def add_window(
        self,
        result: WindowResult,
        summary: Callable[[int, str], tuple[str, str]] | None = None,
        *,
        store_transcript: bool = False,
        events: Sequence[Callable[[int, str], tuple[str, str]]] | None = None,
    ) -> int | None:
        """Store a window and, in the same transaction, its summary in the outbox.

        ``summary(seq, message_id)`` returns ``(topic, payload)``. Returns the outbox seq, if any.
        The utterances transcribed with the window are stored only with ``store_transcript``; the
        disparity events that ended with it are stored, and published with ``events`` (one payload
        function per event).
        """
        row = {
            "session_id": result.session_id,
            "idx": result.index,
            "start_s": result.start_s,
            "end_s": result.end_s,
            "started_at": result.started_at,
            "label": result.label,
            "confidence": result.confidence,
            "probs": json.dumps(dict(zip(CLASSES, result.probs, strict=True))) if result.probs else None,
            **{
                c.name: json.dumps(c.stored(result.channels[c.name])) if c.name in result.channels else None
                for c in self.registry
            },
            "flags": json.dumps(list(result.flags)),
            "timing": json.dumps(result.timing_ms),
            "fused": json.dumps(list(result.fused)),
            "state": result.state,
            "second": result.second,
            "fusion_method": result.fusion_method,
            "contributions": json.dumps(result.contributions),
            "disparity": json.dumps(asdict(result.disparity)) if result.disparity else None,
            "explanation": json.dumps(asdict(result.explanation)) if result.explanation else None,
            "valence": result.valence,
            "arousal": result.arousal,
            "created_at": now_iso(),
        }

        def body() -> int | None:
            self._insert("windows", row)
            if store_transcript:
                self._insert_transcripts(result.session_id, result.transcript)
            for i, event in enumerate(result.events):
                self._insert_event(result.session_id, event)
                if events is not None:
                    self._enqueue(events[i])
            return self._enqueue(summary) if summary else None

        seq: int | None = self._write(f"window {result.index}", body)
        return seq

    def add_events(
        self,
        session_id: str,
        events: Sequence[DisparityEvent],
        publish: Sequence[Callable[[int, str], tuple[str, str]]] | None = None,
    ) -> None:
        """Store events that belong to no window (a disparity still running when a session ended)."""

        def body() -> None:
            for i, event in enumerate(events):
                self._insert_event(session_id, event)
                if publish is not None:
                    self._enqueue(publish[i])

        if events:
            self._write("a disparity event", body)

    def _insert_event(self, session_id: str, event: DisparityEvent) -> None:
        self._insert(
            "events",
            {
                "session_id": session_id,
                "kind": "disparity",
                "start_s": event.start_s,
                "end_s": event.end_s,
                "peak": event.peak,
                "mean": event.mean,
                "windows": event.windows,
                "channels": json.dumps(list(event.pair)),
                "created_at": now_iso(),
            },
        )

    def add_transcripts(self, session_id: str, utterances: Sequence[Utterance]) -> None:
        """Store utterances that belong to no window (speech still going on when a session ended)."""
        if utterances:
            self._write("a transcript", lambda: self._insert_transcripts(session_id, utterances))

    def _insert_transcripts(self, session_id: str, utterances: Sequence[Utterance]) -> None:
        for u in utterances:
            self._insert(
                "transcripts",
                {
                    "session_id": session_id,
                    "start_s": u.start_s,
                    "end_s": u.end_s,
                    "text": u.text,
                    "label": u.label,
                    "confidence": u.confidence,
                    "probs": json.dumps(dict(zip(CLASSES, u.probs, strict=True))),
                    "importance": json.dumps([list(w) for w in u.importance]),
                    "created_at": now_iso(),
                },
            )

    # -- review and erasure ------------------------------------------------------------------------
    def sessions(self, recorded_by: str | None = None, session_id: str | None = None) -> list[SessionRow]:
        """Sessions newest first; with ``recorded_by`` only those whose consent that staff member
        recorded (compared without case: accounts are lower-case); with ``session_id`` that one."""
        where, args = [], []
        if recorded_by is not None:
            where.append("lower(s.consent_recorded_by) = lower(?)")
            args.append(recorded_by)
        if session_id is not None:
            where.append("s.id = ?")
            args.append(session_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.execute(
            "SELECT s.id, s.started_at, s.ended_at, s.ended_by, s.consent_method, s.consent_recorded_by, "  # noqa: S608
            "(SELECT COUNT(*) FROM windows w WHERE w.session_id = s.id), "
            "(SELECT COUNT(*) FROM windows w WHERE w.session_id = s.id AND w.fused IS NOT NULL "
            "AND w.fused != '[]'), "
            "(SELECT COUNT(*) FROM events e WHERE e.session_id = s.id), COALESCE(s.paused_s, 0), "
            "s.consent_reference, s.source_kind, (SELECT MAX(w.end_s) FROM windows w WHERE w.session_id = s.id) "
            f"FROM sessions s {clause} ORDER BY s.started_at DESC",
            args,
        ).fetchall()
        return [SessionRow(*r) for r in rows]

    def consent_reference(self, session_id: str) -> str | None:
        """The pointer into the clinic's consent records given at the session's start, if any."""
        row = self.db.execute("SELECT consent_reference FROM sessions WHERE id = ?", [session_id]).fetchone()
        return None if row is None else row[0]
