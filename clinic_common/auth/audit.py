"""Who did what, when: log-ins (accepted, refused, throttled), log-outs and every change to an
account. Shown to administrators; never holds a password or a session token."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa

from clinic_common.auth.tables import AuthTables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    at: str
    actor: str
    action: str
    target: str
    address: str
    detail: str


PER_PAGE = 100


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int  # entries that match
    page: int
    pages: int
    actions: list[str]  # every action recorded, for the filter


class AuditLog:
    def __init__(self, engine: sa.Engine, tables: AuthTables) -> None:
        self.engine = engine
        self.table = tables.audit_log

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        address: str = "",
        detail: str = "",
        conn: sa.Connection | None = None,
    ) -> None:
        values = {
            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "actor": actor[:64],
            "action": action[:32],
            "target": target[:200],
            "address": address[:64],
            "detail": detail[:300],
        }
        if conn is not None:
            conn.execute(self.table.insert().values(**values))
        else:
            with self.engine.begin() as own:
                own.execute(self.table.insert().values(**values))
        logger.info("audit: %s %s %s %s", actor[:64], action, target[:200], address)

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        t = self.table
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(t.c.at, t.c.actor, t.c.action, t.c.target, t.c.address, t.c.detail)
                .order_by(t.c.id.desc())
                .limit(limit)
            ).all()
        return [AuditEntry(*r) for r in rows]

    def search(
        self, *, who: str = "", action: str = "", actions: tuple[str, ...] | None = None, page: int = 1
    ) -> AuditPage:
        """Newest first, ``PER_PAGE`` to a page: entries whose actor contains ``who`` (any case), of
        ``action`` (or any of ``actions``)."""
        t = self.table
        where = []
        if who:
            where.append(sa.func.lower(t.c.actor).contains(who.lower(), autoescape=True))
        if action:
            where.append(t.c.action == action)
        elif actions is not None:
            where.append(t.c.action.in_(actions))
        with self.engine.begin() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar_one())
            pages = max(1, -(-total // PER_PAGE))
            page = min(max(page, 1), pages)
            rows = conn.execute(
                sa.select(t.c.at, t.c.actor, t.c.action, t.c.target, t.c.address, t.c.detail)
                .where(*where)
                .order_by(t.c.id.desc())
                .offset((page - 1) * PER_PAGE)
                .limit(PER_PAGE)
            ).all()
            known = sorted(a for (a,) in conn.execute(sa.select(t.c.action).distinct()))
        return AuditPage([AuditEntry(*r) for r in rows], total, page, pages, known)

    def about(self, target: str, actions: tuple[str, ...]) -> list[AuditEntry]:
        """The entries of ``actions`` about ``target``, oldest first."""
        t = self.table
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(t.c.at, t.c.actor, t.c.action, t.c.target, t.c.address, t.c.detail)
                .where(t.c.target == target, t.c.action.in_(actions))
                .order_by(t.c.id)
            ).all()
        return [AuditEntry(*r) for r in rows]

    def purge(self, older_than_days: int) -> int:
        cutoff = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=older_than_days)).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            return int(conn.execute(self.table.delete().where(self.table.c.at < cutoff)).rowcount)
