"""The sessions list as a therapist finds a session in it: the consent reference they typed (the
clinic's key to its own record), local date and time, a search, a date range, and pages of
``PER_PAGE``. Dates are the appliance's local dates (its time zone is the clinic's)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from edge.store import SessionRow

PER_PAGE = 50


def local_time(iso: str) -> dt.datetime:
    """A stored UTC time on the appliance's clock (its system time zone)."""
    when = dt.datetime.fromisoformat(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone()


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Listing:
    rows: list[SessionRow]  # this page's
    total: int  # every session that matches
    page: int
    pages: int
    q: str
    start: str
    end: str
    problem: str | None  # a filter that cannot be used, in plain words
    zone: str  # the time zone the times are shown in

    def link(self, page: int) -> str:
        from urllib.parse import urlencode  # noqa: PLC0415

        query = {k: v for k, v in (("q", self.q), ("from", self.start), ("to", self.end)) if v}
        return "/?" + urlencode({**query, "page": page})


def session_list(rows: Sequence[SessionRow], *, q: str = "", start: str = "", end: str = "", page: int = 1) -> Listing:
    """The page of ``rows`` (newest first) that match: ``q`` in the consent reference or the id's
    start (any case), started on or after ``start`` and on or before ``end`` (local dates)."""
    problem = None
    first, last = _date(start), _date(end)
    if (start and first is None) or (end and last is None):
        problem = "Dates are written as year-month-day, for example 2026-11-30."
        first = last = None
    elif first and last and first > last:
        problem = f"“From” ({first}) is after “to” ({last}): no session can match. Swap them or clear one."
    needle = q.strip().lower()
    matching = [
        row
        for row in rows
        if (not needle or needle in (row.consent_reference or "").lower() or row.id.lower().startswith(needle))
        and (first is None or local_time(row.started_at).date() >= first)
        and (last is None or local_time(row.started_at).date() <= last)
    ]
    if problem and first and last:
        matching = []
    pages = max(1, -(-len(matching) // PER_PAGE))
    page = min(max(page, 1), pages)
    zone = dt.datetime.now().astimezone().tzname() or "local"
    return Listing(
        matching[(page - 1) * PER_PAGE : page * PER_PAGE], len(matching), page, pages, q, start, end, problem, zone
    )
