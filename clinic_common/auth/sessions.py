"""Server-side log-in sessions. The browser holds a random token; the database holds its SHA-256,
the account and an expiry. Every request looks the session up and reads the account's current
role, so a log-out, a password reset, a role change, disabling or deleting the account ends its
sessions at once."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from clinic_common.auth.tables import AuthTables


@dataclass(frozen=True)
class WebSession:
    username: str
    role: str
    csrf: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class WebSessions:
    def __init__(self, engine: sa.Engine, tables: AuthTables, lifetime_s: float, idle_s: float) -> None:
        self.engine = engine
        self.tables = tables
        self.lifetime_s = lifetime_s
        self.idle_s = idle_s

    def start(self, username: str, now: float | None = None) -> str:
        """A new session for ``username``; returns the token for the cookie."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                self.tables.web_sessions.insert().values(
                    token_hash=_hash(token),
                    username=username,
                    csrf=secrets.token_urlsafe(24),
                    created_at=now,
                    seen_at=now,
                    expires_at=now + self.lifetime_s,
                )
            )
        return token

    def get(self, token: str | None, now: float | None = None) -> WebSession | None:
        """The live session of ``token`` with the account's current role, or None."""
        if not token or len(token) > 200:
            return None
        now = time.time() if now is None else now
        s, u = self.tables.web_sessions, self.tables.users
        key = _hash(token)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(s.c.username, s.c.csrf, s.c.seen_at, s.c.expires_at, u.c.role, u.c.disabled_at)
                .join(u, u.c.username == s.c.username)
                .where(s.c.token_hash == key)
            ).first()
            if row is None:
                return None
            if row.disabled_at is not None or now >= row.expires_at or now - row.seen_at > self.idle_s:
                conn.execute(s.delete().where(s.c.token_hash == key))
                return None
            if now - row.seen_at > 60:  # at most one write a minute per session
                conn.execute(s.update().where(s.c.token_hash == key).values(seen_at=now))
            return WebSession(row.username, row.role, row.csrf)

    def end(self, token: str | None) -> None:
        if token:
            with self.engine.begin() as conn:
                conn.execute(
                    self.tables.web_sessions.delete().where(self.tables.web_sessions.c.token_hash == _hash(token))
                )

    def end_all(self, username: str, conn: sa.Connection | None = None) -> int:
        query = self.tables.web_sessions.delete().where(self.tables.web_sessions.c.username == username)
        if conn is not None:
            return int(conn.execute(query).rowcount)
        with self.engine.begin() as own:
            return int(own.execute(query).rowcount)

    def purge(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        s = self.tables.web_sessions
        with self.engine.begin() as conn:
            return int(
                conn.execute(s.delete().where(sa.or_(s.c.expires_at <= now, s.c.seen_at < now - self.idle_s))).rowcount
            )
