"""Clinicians' judgements of the room's results, kept beside the windows they judge (the review page
writes them; ``clinic-edge evaluate --feedback`` scores the room against them). Numbers, classes and
a staff id: no media, no words. Erased and purged with their session (:meth:`edge.store.Store.erase`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from contract.classes import CLASSES
from edge.errors import StoreError
from edge.store.db import Store

Kind = Literal["window", "moment", "session"]
Verdict = Literal["agree", "other", "rating", "disagree"]


@dataclass(frozen=True)
class Judgement:
    session_id: str
    kind: Kind
    verdict: Verdict  # agree: the room was right; other: the client seemed <label>; disagree: no moment here
    judged_by: str
    window_index: int | None = None  # kind window
    start_s: float | None = None  # kind moment: its span
    end_s: float | None = None
    label: str | None = None  # verdict other: the class the client seemed to show
    rating: int | None = None  # kind session: 1 (useless) to 5 (very useful)
    judged_at: str = ""

    def check(self) -> None:
        """Raises StoreError for a judgement that does not hold together (a form's fault)."""
        problems = []
        if self.verdict == "other" and self.label not in CLASSES:
            problems.append(f"the class {self.label!r} is not one of {', '.join(CLASSES)}")
        if self.kind == "window" and self.window_index is None:
            problems.append("a window's judgement names the window")
        if self.kind == "moment" and (self.start_s is None or self.end_s is None or self.end_s < self.start_s):
            problems.append("a moment's judgement names its span")
        if self.kind == "session" and (self.verdict != "rating" or self.rating is None or not 1 <= self.rating <= 5):
            problems.append("a session is rated 1 to 5")
        if self.verdict == "disagree" and self.kind != "moment":
            problems.append("only a moment is judged not to be one")
        if self.kind != "session" and self.verdict == "rating":
            problems.append("only a session is rated")
        if problems:
            raise StoreError("; ".join(problems))


def add_judgement(store: Store, j: Judgement) -> None:
    """Store a judgement of a finished session of this room.

    Raises:
        StoreError: it does not hold together, or the session is not (or no longer) there.
    """
    j.check()
    at = j.judged_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def body() -> None:
        conn = store.db.conn
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", [j.session_id]).fetchone() is None:
            raise StoreError(f"no session {j.session_id}")
        conn.execute(
            "INSERT INTO judgements (session_id, kind, window_index, start_s, end_s, verdict, label, rating, "
            "judged_by, judged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [j.session_id, j.kind, j.window_index, j.start_s, j.end_s, j.verdict, j.label, j.rating, j.judged_by, at],
        )

    store._write("a judgement", body)


def judgements(store: Store, session_id: str | None = None) -> list[Judgement]:
    """Every judgement (of one session), oldest first."""
    where, args = ("WHERE session_id = ?", [session_id]) if session_id else ("", [])
    rows = store.db.execute(
        "SELECT session_id, kind, verdict, judged_by, window_index, start_s, end_s, label, rating, judged_at "  # noqa: S608
        f"FROM judgements {where} ORDER BY id",
        args,
    ).fetchall()
    return [Judgement(*r) for r in rows]
