"""Retention and erasure: old sessions purged, a session erased on request, and the report files
recorded with their session so that both delete them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge.errors import StoreError
from edge.store.core import now_iso
from edge.store.outbox import OutboxStore

logger = logging.getLogger(__name__)


class SessionRunningError(StoreError):
    """The session is still recording: it cannot be erased until it ends."""


@dataclass(frozen=True)
class Erased:
    """What an erasure deleted, by table (and report files)."""

    session_id: str
    counts: dict[str, int]
    checkpointed: bool


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


class RetentionStore(OutboxStore):
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
                [session_id, resolved, now_iso()],
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
        now = now_iso()
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
