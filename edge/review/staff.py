"""Staff accounts of the review page and its access log, in ``<state_dir>/review.db`` (the common
account code of :mod:`clinic_common.auth`: argon2id, server-side sessions, throttling, audit log).

Two roles: a ``therapist`` sees the sessions whose consent they recorded (their account name is the
staff identifier they record consent with); an ``admin`` sees every session, the access log and the
accounts. Every view, download, export and erasure is written to the access log: who, what, when.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from clinic_common.auth import Accounts, AuditEntry, AuditLog, Throttle, WebSessions, define_tables
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.store import SessionRow

logger = logging.getLogger(__name__)

Role = Literal["admin", "therapist"]
AccountRole = Literal["admin", "therapist", "technician"]  # technicians use the setup page only
ROLES: tuple[AccountRole, ...] = ("admin", "therapist", "technician")
metadata = sa.MetaData()
auth = define_tables(metadata)  # users, web_sessions, audit_log, login_failures

# What the access log calls each action on a session (at most 32 characters).
VIEWED = "session viewed"
DOWNLOADED = "report downloaded"
EXPORTED = "fhir exported"
FILED = "fhir filed"
FILING_FAILED = "fhir filing failed"
ERASED = "session erased"
COPIES = (DOWNLOADED, EXPORTED, FILED)
REFUSED = "access refused"
JUDGED = "judgement given"
SESSION_ACTIONS = (VIEWED, DOWNLOADED, EXPORTED, FILED, FILING_FAILED, ERASED, REFUSED, JUDGED)


def staff_database(config: AppConfig) -> Path:
    return config.storage.state_dir / config.review.database


def open_staff(config: AppConfig) -> sa.Engine:
    """The review database (created owner-only on first use), WAL and full sync like the room's.

    Raises:
        StoreError: it cannot be opened or created.
    """
    path = staff_database(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 10, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        metadata.create_all(engine)
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        raise StoreError(f"cannot open the review database {path}: {exc}") from None
    return engine


def staff_accounts(engine: sa.Engine, config: AppConfig) -> Accounts:
    review = config.review
    sessions = WebSessions(engine, auth, lifetime_s=review.session_hours * 3600, idle_s=review.idle_minutes * 60)
    return Accounts(engine, auth, ROLES, sessions, Throttle(engine, auth), AuditLog(engine, auth), parallel_hashes=2)


@dataclass(frozen=True)
class Staff:
    """Who is acting: an account of the page, or a person at the appliance's shell."""

    name: str
    role: Role

    def may_open(self, session: SessionRow) -> bool:
        """An admin opens every session; a therapist those whose consent they recorded."""
        if self.role == "admin":
            return True
        return (session.consent_recorded_by or "").lower() == self.name.lower()

    @property
    def recorded_by(self) -> str | None:
        """The filter of the sessions this person may list (None: all)."""
        return None if self.role == "admin" else self.name


class AccessLog:
    """The access log: the audit log's entries about sessions (and log-ins, account changes)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def record(self, who: str, action: str, session_id: str, address: str = "", detail: str = "") -> None:
        self.audit.record(who, action, session_id, address, detail)

    def recent(self, limit: int = 500) -> list[AuditEntry]:
        return self.audit.recent(limit)

    def copies(self, session_id: str) -> list[AuditEntry]:
        """What the log knows left the appliance of ``session_id``: PDFs downloaded, bundles exported
        or filed (copies an erasure here cannot reach)."""
        return self.audit.about(session_id, COPIES)

    def purge(self, keep_days: int) -> int:
        removed = self.audit.purge(keep_days)
        if removed:
            logger.info("access log: %d entries older than %d days deleted", removed, keep_days)
        return removed


def access_log(config: AppConfig, engine: sa.Engine | None = None) -> AccessLog:
    return AccessLog(AuditLog(engine if engine is not None else open_staff(config), auth))
