"""The hub's database (SQLAlchemy Core: one schema for SQLite and PostgreSQL).

What is kept, and nothing more:

* ``sessions``: one row per session, attributed to the site, room and day it started, holding sums
  over its windows (counts, seconds, face coverage, voiced share, summed class probabilities,
  quality flags). No window, no timestamp finer than the day, no frame, no word, no person. A
  release seals the rows of its period; summaries of a session arriving after that go into a
  further part (row) of the session, which a later release seals.
* ``releases`` and ``released_cells``: what the dashboard shows, frozen when released
  (:mod:`hub.release`); a released cell is never changed, a revision adds a new release.
  ``shown_cells`` holds the newest version of each, kept by the releases: the dashboard's rollup.
* ``rolled_up``: months whose session rows were deleted after ``privacy.session_rows_days``; only
  their released cells remain, and summaries that still arrive for them are refused.
* ``devices``: each appliance's health from its retained status and its summaries' sequence.
* ``gaps``: sequence ranges that never arrived (kept ``dedup_days``, at most ``GAPS_PER_DEVICE`` a device).
* ``retracted`` and ``retractions``: sessions a room erased on request (a hash of the id, to refuse
  what of it is still on its way) and what each retraction changed (counts and months, no session).
* ``messages``: message ids already ingested (de-duplication), dropped after ``dedup_days``.
* ``dead_letters``: messages refused (malformed, out of bounds, not the publishing room's): when,
  the topic, why, the size and a hash; never the payload; kept ``dead_letter_days``.
* ``users``, ``web_sessions``, ``audit_log``, ``login_failures``: dashboard accounts
  (:mod:`clinic_common.auth`: argon2id hashes, roles, server-side sessions, the audit log).
* ``hub_settings``: the k and dominance limit releases enforce, the schema version.

The dashboard never reads ``sessions``: it reads the newest released cells (``shown_cells``). On
PostgreSQL it connects as a role granted only those and the appliances' health (:mod:`hub.grants`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa

from clinic_common.auth import define_tables
from contract.classes import CLASSES
from contract.payload import Flag
from hub.measures import SHARES

logger = logging.getLogger(__name__)

FLAGS: tuple[str, ...] = Flag.__args__  # type: ignore[attr-defined]
metadata = sa.MetaData()

hub_settings = sa.Table(
    "hub_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("dominance", sa.Float, nullable=False, server_default="0.3"),  # only tightens (hub.privacy)
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True, default=0),  # summaries after a release go to a new part
    sa.Column("sealed_in", sa.Integer, index=True),  # the release that sealed this part; NULL while open
    sa.Column("site", sa.String(63), nullable=False),
    sa.Column("room", sa.String(63), nullable=False),
    sa.Column("device_id", sa.String(200)),  # the publishing device's key (site/room/id); NULL before v6
    sa.Column("day", sa.String(10), nullable=False),  # YYYY-MM-DD, UTC
    sa.Column("week", sa.String(10), nullable=False),  # Monday of the ISO week
    sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM of the week's Thursday (hub.periods)
    sa.Column("windows", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    *(sa.Column(m.column, sa.Float, nullable=False) for m in SHARES),
    sa.Column("prob_windows", sa.Integer, nullable=False),
    *(sa.Column(f"p_{c}", sa.Float, nullable=False) for c in CLASSES),
    *(sa.Column(f"flag_{f}", sa.Integer, nullable=False) for f in FLAGS),
    sa.Index("ix_sessions_scope", "site", "room", "day"),
    sa.Index("ix_sessions_month", "month"),
)

SUMS: tuple[str, ...] = (
    "windows",
    "seconds",
    *(m.column for m in SHARES),
    "prob_windows",
    *(f"p_{c}" for c in CLASSES),
    *(f"flag_{f}" for f in FLAGS),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("grain", sa.String(5), nullable=False),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("scope", sa.String(7), nullable=False, index=True),  # the month (hub.periods) it was checked with
    sa.Column("version", sa.Integer, nullable=False),  # 1, then 2... for revisions with late data
    sa.Column("released_on", sa.String(10), nullable=False),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(2), nullable=False, server_default="k"),  # k | dp (hub.dp)
    sa.Column("epsilon", sa.Float),  # dp mode: the release's privacy budget
    sa.Column("finest", sa.String(5)),  # the finest grain configured when it was made
    sa.Column("dominance", sa.Float),  # k mode: the dominance limit it was checked with
    sa.Column("shown", sa.Integer, nullable=False),
    sa.Column("hidden", sa.Integer, nullable=False),
    # One release per version of a period: two runs that raced would make one fail, not two releases.
    sa.Index("ux_releases_version", "grain", "period", "version", unique=True),
)

rolled_up = sa.Table(
    "rolled_up",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),  # its session rows were deleted; its releases stay
    sa.Column("rolled_up_on", sa.String(10), nullable=False),
)

released_cells = sa.Table(
    "released_cells",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True),
    sa.Column("level", sa.String(6), nullable=False),
    sa.Column("grain", sa.String(5), nullable=False),
    sa.Column("site", sa.String(63), nullable=False),  # "" at the clinic level
    sa.Column("room", sa.String(63), nullable=False),  # "" at the clinic and site levels
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("sessions", sa.Integer, nullable=False),
    *(sa.Column(s, sa.Float, nullable=False) for s in SUMS),
    sa.Index("ix_released_cells_view", "level", "grain", "period"),
)

# The dashboard's rollup: the newest released version of every cell, kept by each release (a revision
# replaces the cells it changed), so a page reads only the rows it shows, however many sessions.
shown_cells = sa.Table(
    "shown_cells",
    metadata,
    sa.Column("level", sa.String(6), primary_key=True),
    sa.Column("grain", sa.String(5), primary_key=True),
    sa.Column("site", sa.String(63), primary_key=True),
    sa.Column("room", sa.String(63), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("sessions", sa.Integer, nullable=False),
    *(sa.Column(s, sa.Float, nullable=False) for s in SUMS),
)

devices = sa.Table(
    "devices",
    metadata,
    # <site>/<room>/<the appliance's device id>: the room is the topic's, which the broker's ACL ties to
    # the room's appliance (hub.bulk.Message.device_id).
    sa.Column("device_id", sa.String(200), primary_key=True),
    sa.Column("site", sa.String(63), nullable=False),
    sa.Column("room", sa.String(63), nullable=False),
    sa.Column("state", sa.String(16)),  # online | offline | stopped (retained status)
    sa.Column("session_state", sa.String(16)),
    sa.Column("degraded", sa.String(64)),
    sa.Column("outbox", sa.Integer),
    sa.Column("calibrated_at", sa.String(40)),
    sa.Column("last_status_at", sa.String(40)),
    sa.Column("last_summary_at", sa.String(40)),
    sa.Column("last_seq", sa.BigInteger),
    sa.Column("summaries", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("missing", sa.BigInteger, nullable=False, server_default="0"),
)

gaps = sa.Table(
    "gaps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(200), nullable=False),
    sa.Column("from_seq", sa.BigInteger, nullable=False),
    sa.Column("to_seq", sa.BigInteger, nullable=False),
    sa.Column("noticed_at", sa.String(40), nullable=False, index=True),
    sa.Index("ix_gaps_device_from", "device_id", "from_seq"),  # the gap holding a late seq, without a scan
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(36), primary_key=True),
    sa.Column("received_day", sa.String(10), nullable=False, index=True),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # the payload itself is not kept
    sa.Index("ix_dead_letters_received", "received_at"),
)

# Sessions a room erased on request (retract messages): a hash of the id, so that a summary of it
# still on its way is refused, kept ``dedup_days``; and what each retraction changed, without the session.
retracted = sa.Table(
    "retracted",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),  # SHA-256 of the session id
    sa.Column("received_day", sa.String(10), nullable=False, index=True),
)
retractions = sa.Table(
    "retractions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_day", sa.String(10), nullable=False),
    sa.Column("site", sa.String(63), nullable=False),
    sa.Column("room", sa.String(63), nullable=False),
    sa.Column("dropped_parts", sa.Integer, nullable=False),  # not yet released: deleted
    sa.Column("released_parts", sa.Integer, nullable=False),  # in released cells: unlinked, cells unchanged
    sa.Column("released_months", sa.String(200), nullable=False, server_default=""),  # of those cells
)

auth = define_tables(metadata)  # users, web_sessions, audit_log, login_failures
users = auth.users

SCHEMA_VERSION = 6  # 2: session parts, nested months, releases; 3: shown_cells; 4: retractions;
# 5: releases record their settings, one release per version, the dominance rule; 6: devices known by room


def device_key(site: str, room: str, device_id: str) -> str:
    """The hub's key of a device: its room (the topic's, which the broker's ACL ties to the appliance)
    and the appliance's own id."""
    return f"{site}/{room}/{device_id}"


def device_name(key: str) -> str:
    """The appliance's own device id, from the hub's key."""
    return key.rsplit("/", 1)[-1]


def make_engine(url: str, password: str | None = None) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, full sync (a message is acknowledged after its commit,
    which must survive a power cut) and a busy timeout (ingest and dashboard share it)."""
    parsed = sa.make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a message is acknowledged once committed: durably
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)
