"""The hub's time grains, nested so that every finer period lies wholly inside one coarser period.

* ``day``: a UTC calendar day (``YYYY-MM-DD``), the day a session started.
* ``week``: an ISO week, named by its Monday (``YYYY-MM-DD``).
* ``month``: the ISO weeks whose Thursday falls in a calendar month (four or five whole weeks,
  named ``YYYY-MM``), the rule ISO 8601 uses to give a week to a year. 30 March 2026 (a Monday)
  belongs to the April month because its week's Thursday is 2 April.

Because days make whole weeks and weeks make whole months, a month's number minus its weeks'
numbers is nothing (no partial week is left over to be revealed by subtraction), and a period's
release can be checked together with everything released inside the same month, its *scope*.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")


def week_of(day: str) -> str:
    """The Monday of ``day``'s ISO week."""
    d = dt.date.fromisoformat(day)
    return (d - dt.timedelta(days=d.weekday())).isoformat()


def month_of(day: str) -> str:
    """The month (``YYYY-MM``) that ``day``'s ISO week belongs to: the month of its Thursday."""
    monday = dt.date.fromisoformat(week_of(day))
    return (monday + dt.timedelta(days=3)).isoformat()[:7]


def period_of(day: str, grain: Grain) -> str:
    if grain == "day":
        return day
    if grain == "week":
        return week_of(day)
    return month_of(day)


def coarser(period: str, grain: Grain, to: Grain) -> str:
    """The ``to`` period holding ``period`` (a finer or equal grain's period)."""
    first = period if grain != "month" else first_day(period)
    return period_of(first, to)


def first_day(month: str) -> str:
    """The Monday that starts ``month`` (its first week whose Thursday lies in it)."""
    first = dt.date.fromisoformat(f"{month}-01")
    thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return (thursday - dt.timedelta(days=3)).isoformat()


def end_of(period: str, grain: Grain) -> dt.date:
    """The first day after ``period`` (its end, exclusive)."""
    if grain == "day":
        return dt.date.fromisoformat(period) + dt.timedelta(days=1)
    if grain == "week":
        return dt.date.fromisoformat(period) + dt.timedelta(days=7)
    start = dt.date.fromisoformat(first_day(period))
    day = start
    while month_of(day.isoformat()) == period:
        day += dt.timedelta(days=7)
    return day


def closed(period: str, grain: Grain, today: dt.date, delay_days: int) -> bool:
    """Whether ``period`` ended at least ``delay_days`` before ``today`` (and may be released)."""
    return end_of(period, grain) + dt.timedelta(days=delay_days) <= today
