"""The appliance's SQLite database (WAL, synchronous=FULL, one writer per connection).

Each thread that touches the database opens its own :class:`Store` on the same file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from contract.classes import CLASSES
from edge.channels.registry import ChannelRegistry, default_registry
from edge.control.commands import Consent
from edge.errors import StoreError
from edge.results import DisparityEvent, Utterance, WindowResult
from edge.store.migrations import add_channel_columns, migrate

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
JOURNAL_LIMIT_BYTES = 4 * 1024 * 1024
CHECKPOINT_TRIES = 5


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


class SessionRunningError(StoreError):
    """The session is still recording: it cannot be erased until it ends."""


@dataclass(frozen=True)
class Erased:
    """What an erasure deleted, by table (and report files)."""

    session_id: str
    counts: dict[str, int]
    checkpointed: bool


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    message_id: str
    topic: str
    payload: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def remove_reports(paths: Sequence[Path]) -> int:
    """Delete report files (a purged session's); returns how many were there to delete."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.error("cannot delete the report %s of a purged session: %s", path, exc)
    return removed


class Store:
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

    def close(self) -> None:
        self.db.conn.close()

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        # Plain SQL: sqlite-utils' insert helpers commit on their own, which would split the
        # window and its outbox row into two transactions.
        columns = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        self.db.conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(row.values()))  # noqa: S608

    def _write(self, what: str, body: Callable[[], Any]) -> Any:
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = body()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot store {what} in {self.path}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

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
            "started_at": _now(),
            "consent_method": consent.method,
            "consent_recorded_by": consent.recorded_by,
            "consent_reference": consent.reference,
            "consent_recorded_at": (
                consent.recorded_at.isoformat(timespec="seconds") if consent.recorded_at else _now()
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
                [_now(), count, frames, frames_dropped, session_id],
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
            "created_at": _now(),
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
                "created_at": _now(),
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
                    "created_at": _now(),
                },
            )

    def add_summary(self, summary: Callable[[int, str], tuple[str, str]]) -> int:
        """Put one summary (e.g. an interval's) in the outbox; returns its seq."""
        seq: int = self._write("a summary", lambda: self._enqueue(summary))
        return seq

    def _enqueue(self, summary: Callable[[int, str], tuple[str, str]]) -> int:
        # The device's sequence lives in its own row: purging sent outbox rows never sets it back.
        self.db.conn.execute("UPDATE device_seq SET last_seq = last_seq + 1 WHERE id = 1")
        seq = int(self.db.execute("SELECT last_seq FROM device_seq WHERE id = 1").fetchone()[0])
        message_id = str(uuid.uuid4())
        topic, payload = summary(seq, message_id)
        self._insert(
            "outbox",
            {"seq": seq, "message_id": message_id, "topic": topic, "payload": payload, "created_at": _now()},
        )
        return seq

    def purge(self, older_than: datetime, keep: str | None = None) -> dict[str, int]:
        """Delete sessions (with their windows, transcripts and events) that ended before
        ``older_than`` (or, never ended, started before it; never ``keep``, the session running),
        and published summaries created before it. Unpublished summaries are kept until they are
        sent. Then the WAL is checkpointed and truncated, so that no copy of a deleted page stays in
        it (``secure_delete`` zeroes the pages of the database itself)."""
        cutoff = older_than.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        expired = "COALESCE(ended_at, started_at) < ? AND id IS NOT ?"
        report_files: list[Path] = []

        def body() -> dict[str, int]:
            conn = self.db.conn
            old = f"SELECT id FROM sessions WHERE {expired}"  # noqa: S608 - fixed text
            args = [cutoff, keep]
            windows = conn.execute(f"DELETE FROM windows WHERE session_id IN ({old})", args).rowcount  # noqa: S608
            transcripts = conn.execute(
                f"DELETE FROM transcripts WHERE session_id IN ({old})",  # noqa: S608
                args,
            ).rowcount
            events = conn.execute(f"DELETE FROM events WHERE session_id IN ({old})", args).rowcount  # noqa: S608
            conn.execute(f"DELETE FROM judgements WHERE session_id IN ({old})", args)  # noqa: S608
            files = [
                Path(r[0])
                for r in conn.execute(f"SELECT path FROM reports WHERE session_id IN ({old})", args)  # noqa: S608
            ]
            self._to_remove(files)
            conn.execute(f"DELETE FROM reports WHERE session_id IN ({old})", args)  # noqa: S608
            report_files.extend(files)
            sessions = conn.execute(
                f"DELETE FROM sessions WHERE {expired} "  # noqa: S608 - fixed text
                "AND id NOT IN (SELECT session_id FROM windows) AND id NOT IN (SELECT session_id FROM transcripts) "
                "AND id NOT IN (SELECT session_id FROM events)",
                args,
            ).rowcount
            outbox = conn.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND created_at < ?", [cutoff]).rowcount
            return {
                "sessions": sessions,
                "windows": windows,
                "transcripts": transcripts,
                "events": events,
                "outbox": outbox,
            }

        self.finish_removals()
        counts: dict[str, int] = self._write("the retention purge", body)
        counts["reports"] = self._remove(report_files)
        if any(counts.values()):
            self.checkpoint()
        return counts

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

    def erase(self, session_id: str, retract: Callable[[int, str], tuple[str, str]] | None = None) -> Erased:
        """Delete one session on request (consent withdrawn): its windows, transcripts, events, report
        files and every outbox row that carries it (sent or not), then the session itself; with
        ``retract``, a retraction is put in the outbox in the same transaction, to be published in
        sequence after everything of the session that was sent. The WAL is checkpointed and
        truncated afterwards (``secure_delete`` overwrites the pages themselves).

        Raises:
            StoreError: no such session; :class:`SessionRunningError` while it is recording.
        """
        report_files: list[Path] = []

        def body() -> dict[str, int]:
            conn = self.db.conn
            row = conn.execute("SELECT ended_at FROM sessions WHERE id = ?", [session_id]).fetchone()
            if row is None:
                raise StoreError(f"no session {session_id} in {self.path}")
            if row[0] is None:
                raise SessionRunningError(
                    f"session {session_id} is still recording: stop it first (a session the appliance left "
                    "open when it stopped is closed when it starts again)"
                )
            counts = {
                table: conn.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id]).rowcount  # noqa: S608
                for table in ("windows", "transcripts", "events", "judgements")
            }
            report_files.extend(
                Path(r[0]) for r in conn.execute("SELECT path FROM reports WHERE session_id = ?", [session_id])
            )
            self._to_remove(report_files)
            conn.execute("DELETE FROM reports WHERE session_id = ?", [session_id])
            counts["outbox"] = conn.execute(
                "DELETE FROM outbox WHERE json_valid(payload) AND json_extract(payload, '$.session_id') = ?",
                [session_id],
            ).rowcount
            counts["sessions"] = conn.execute("DELETE FROM sessions WHERE id = ?", [session_id]).rowcount
            if retract is not None:
                self._enqueue(retract)
            return counts

        self.finish_removals()
        counts: dict[str, int] = self._write(f"the erasure of session {session_id}", body)
        counts["reports"] = self._remove(report_files)
        return Erased(session_id, counts, self.checkpoint())

    # -- reports -----------------------------------------------------------------------------------
    def add_report(self, session_id: str, path: Path) -> None:
        """Record a report file of ``session_id`` *before* it is written, so that an erasure or purge
        that comes while it is being written (or after a failed print left it half-written) knows it
        and deletes it with the session. The writer checks :meth:`has_report` after writing.

        Raises:
            StoreError: the session is not (or no longer) there: nothing may be written for it.
        """
        resolved = str(path.resolve())

        def body() -> None:
            conn = self.db.conn
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is None:
                raise StoreError(f"no session {session_id} in {self.path} (erased?): no report is written for it")
            conn.execute("DELETE FROM removals WHERE path = ?", [resolved])
            conn.execute(
                "INSERT OR REPLACE INTO reports (session_id, path, created_at) VALUES (?, ?, ?)",
                [session_id, resolved, _now()],
            )

        self._write("a report's path", body)

    def has_report(self, path: Path) -> bool:
        """Whether ``path`` is still on record (False: its session was erased or purged meanwhile)."""
        row = self.db.execute("SELECT 1 FROM reports WHERE path = ?", [str(path.resolve())]).fetchone()
        return row is not None

    def drop_report(self, path: Path) -> None:
        """Forget a report file that was not written after all (its printer failed) and delete it."""
        self._write(
            "a report's path",
            lambda: self.db.conn.execute("DELETE FROM reports WHERE path = ?", [str(path.resolve())]),
        )
        remove_reports([path])

    def _to_remove(self, paths: Sequence[Path]) -> None:
        """Inside an erasure's or purge's transaction: these files are to be deleted once it commits."""
        now = _now()
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO removals (path, since) VALUES (?, ?)", [(str(p), now) for p in paths]
        )

    def _remove(self, paths: Sequence[Path]) -> int:
        removed = remove_reports(paths)
        if paths:
            self._write(
                "the removed reports",
                lambda: self.db.conn.executemany("DELETE FROM removals WHERE path = ?", [(str(p),) for p in paths]),
            )
        return removed

    def finish_removals(self) -> int:
        """Delete report files an erasure or purge committed but did not get to delete (the process
        died in between); returns how many were still there."""
        left = [Path(r[0]) for r in self.db.execute("SELECT path FROM removals").fetchall()]
        if left:
            logger.warning(
                "deleting %d report files of erased or purged sessions left by an interrupted run", len(left)
            )
        return self._remove(left) if left else 0

    def reports(self) -> list[tuple[str, str, str]]:
        """(session id, path, written at) of every report file on record, newest first."""
        rows = self.db.execute("SELECT session_id, path, created_at FROM reports ORDER BY created_at DESC").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to nothing; True when it went through
        (a reader in the middle of a read can hold it back: tried a few times)."""
        for _ in range(CHECKPOINT_TRIES):
            try:
                busy, _, _ = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                logger.warning("WAL checkpoint failed: %s", exc)
                return False
            if not busy:
                return True
        logger.warning("WAL checkpoint held back by a reader; deleted pages stay in the WAL until the next one")
        return False

    def pending(self, limit: int) -> list[OutboxRow]:
        rows = self.db.execute(
            "SELECT seq, message_id, topic, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            [limit],
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def pending_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def mark_sent(self, seq: int) -> None:
        self._write(
            "a publish acknowledgement",
            lambda: self.db.execute(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE seq = ?", [_now(), seq]
            ),
        )

    def mark_attempt(self, seq: int) -> None:
        self._write(
            "a publish attempt",
            lambda: self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [seq]),
        )
