"""A real-scale session for the pages: a session the room analysed (the demo clip, every channel,
explanations and transcripts kept) tiled to 50 minutes in the room's own database. Every row is one
the room wrote (its windows with their channels and explanations, its moments, its words), repeated
with shifted times, so the pages read what they will read in a clinic: about 2,990 windows and a
dozen moments (a moment every four minutes or so)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

MINUTES = 50.0


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]


def lengthen(db: Path, session_id: str, minutes: float = MINUTES, moments: int = 12) -> str:
    """A new session (its id returned) of ``minutes`` made of ``session_id``'s stored rows.

    Windows repeat back to back; ``moments`` of the source's moments (with the words said in them)
    are spread over the session; the consent and room are the source's."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            source = conn.execute("SELECT * FROM sessions WHERE id = ?", [session_id]).fetchone()
            names = [d[0] for d in conn.execute("SELECT * FROM sessions LIMIT 0").description]
            row = dict(zip(names, source, strict=True))
            rows = conn.execute(
                "SELECT MIN(start_s), MAX(end_s), MAX(idx) + 1 FROM windows WHERE session_id = ?", [session_id]
            ).fetchone()
            first, last, count = rows
            span = max(1.0, float(last) - float(first) - 1.5)  # the windows' stride continues across tiles
            tiles = int(minutes * 60 / span)
            new = f"{session_id[:24]}-long{tiles:04d}"
            started = datetime.fromisoformat(row["started_at"]) + timedelta(seconds=1)  # listed above its source
            row.update(
                id=new,
                started_at=started.isoformat(timespec="seconds"),
                ended_at=(started + timedelta(minutes=minutes)).isoformat(timespec="seconds"),
                windows=int(count) * tiles,
            )
            conn.execute(
                f"INSERT INTO sessions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            cols = _columns(conn, "windows")
            shifted = {
                "session_id": "?",
                "idx": "idx + ?",
                "start_s": "start_s + ?",
                "end_s": "end_s + ?",
            }
            select = ", ".join(shifted.get(c, c) for c in cols)
            for k in range(tiles):
                conn.execute(
                    f"INSERT INTO windows ({', '.join(cols)}) SELECT {select} FROM windows WHERE session_id = ?",
                    [new, k * int(count), k * span, k * span, session_id],
                )
            for table in ("events", "transcripts"):
                cols = _columns(conn, table)
                select = ", ".join(
                    {"session_id": "?", "start_s": "start_s + ?", "end_s": "end_s + ?"}.get(c, c) for c in cols
                )
                every = max(1, tiles // moments) if table == "events" else 1
                for k in range(0, tiles, every):
                    if table == "events" and k // every >= moments:
                        break
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} "
                        "WHERE session_id = ? ORDER BY start_s LIMIT ?",
                        [new, k * span, k * span, session_id, 1 if table == "events" else -1],
                    )
    finally:
        conn.close()
    return new
