"""Accounts: create, reset, change role, disable, enable, delete; log in. Every change ends the
account's sessions and is written to the audit log in the same transaction."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clinic_common.auth.audit import AuditLog
from clinic_common.auth.sessions import WebSessions
from clinic_common.auth.tables import AuthTables
from clinic_common.auth.throttle import Throttle
from clinic_common.errors import ClinicError, ConfigError

logger = logging.getLogger(__name__)

MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()  # argon2id, 64 MiB, 3 passes
# Spent on unknown and disabled accounts too, so a refusal takes as long whatever the reason.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


class LoginRefusedError(ClinicError):
    """A log-in that did not happen: wrong name or password, throttled, or too many at once."""

    exit_code = 2

    def __init__(self, reason: Literal["wrong", "throttled", "busy"], retry_after: int = 0) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    created_at: str
    last_login_at: str | None
    disabled_at: str | None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Accounts:
    def __init__(
        self,
        engine: sa.Engine,
        tables: AuthTables,
        roles: tuple[str, ...],
        sessions: WebSessions,
        throttle: Throttle,
        audit: AuditLog,
        admin_role: str = "admin",
        parallel_hashes: int = 4,
    ) -> None:
        self.engine = engine
        self.users = tables.users
        self.roles = roles
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        self.admin_role = admin_role
        # argon2 takes 64 MiB and ~50 ms per hash: bound how many run at once.
        self._hashing = threading.BoundedSemaphore(parallel_hashes)

    # ---- changes -------------------------------------------------------------------------

    def save(
        self,
        username: str,
        password: str,
        role: str,
        actor: str,
        address: str = "",
        mode: Literal["create or reset", "create", "reset"] = "create or reset",
    ) -> None:
        """Create an account, or reset its password and role (its sessions end). ``mode`` limits it to
        one of the two (the web pages: creating never resets an existing account).

        Raises:
            ConfigError: a bad name, role or too short a password; the last administrator demoted; an
                account that exists (``create``) or does not (``reset``).
        """
        if not _NAME.match(username):
            raise ConfigError("user name: 2-64 characters of lower-case letters, digits, '.', '_' or '-'")
        self._role_ok(role)
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"password must have at least {MIN_PASSWORD} characters")
        hashed = _hasher.hash(password)
        with self.engine.begin() as conn:
            self._lock_admins(conn)
            row = conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()
            if row is not None and mode == "create":
                raise ConfigError(f"an account {username!r} exists already: reset its password with its Reset action")
            if row is None and mode == "reset":
                raise ConfigError(f"no account {username!r}")
            if row is None:
                conn.execute(
                    self.users.insert().values(username=username, password_hash=hashed, role=role, created_at=_now())
                )
                self.audit.record(actor, "account created", username, address, f"role {role}", conn=conn)
            else:
                self._keeps_an_admin(conn, username, role, row["disabled_at"] is not None)
                conn.execute(
                    self.users.update().where(self.users.c.username == username).values(password_hash=hashed, role=role)
                )
                ended = self.sessions.end_all(username, conn)
                self.throttle.clear(username, conn)
                self.audit.record(
                    actor, "password reset", username, address, f"role {role}; {ended} sessions ended", conn
                )

    def set_role(self, username: str, role: str, actor: str, address: str = "") -> None:
        self._role_ok(role)
        with self.engine.begin() as conn:
            self._lock_admins(conn)
            row = self._existing(conn, username)
            self._keeps_an_admin(conn, username, role, row["disabled_at"] is not None)
            conn.execute(self.users.update().where(self.users.c.username == username).values(role=role))
            ended = self.sessions.end_all(username, conn)
            self.audit.record(actor, "role changed", username, address, f"{row['role']} -> {role}; {ended} ended", conn)

    def disable(self, username: str, actor: str, address: str = "") -> None:
        with self.engine.begin() as conn:
            self._lock_admins(conn)
            row = self._existing(conn, username)
            self._keeps_an_admin(conn, username, row["role"], disabled=True)
            conn.execute(self.users.update().where(self.users.c.username == username).values(disabled_at=_now()))
            ended = self.sessions.end_all(username, conn)
            self.audit.record(actor, "account disabled", username, address, f"{ended} sessions ended", conn)

    def enable(self, username: str, actor: str, address: str = "") -> None:
        with self.engine.begin() as conn:
            self._existing(conn, username)
            conn.execute(self.users.update().where(self.users.c.username == username).values(disabled_at=None))
            self.throttle.clear(username, conn)
            self.audit.record(actor, "account enabled", username, address, conn=conn)

    def delete(self, username: str, actor: str, address: str = "") -> None:
        with self.engine.begin() as conn:
            self._lock_admins(conn)
            row = self._existing(conn, username)
            self._keeps_an_admin(conn, username, "", disabled=True)
            ended = self.sessions.end_all(username, conn)
            conn.execute(self.users.delete().where(self.users.c.username == username))
            self.audit.record(actor, "account deleted", username, address, f"was {row['role']}; {ended} ended", conn)

    def list(self) -> list[Account]:
        u = self.users
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(u.c.username, u.c.role, u.c.created_at, u.c.last_login_at, u.c.disabled_at).order_by(
                    u.c.username
                )
            ).all()
        return [Account(*r) for r in rows]

    # ---- log-in --------------------------------------------------------------------------

    def log_in(self, username: str, password: str, address: str) -> str:
        """A session token for the account, or :class:`LoginRefusedError` (never sleeps)."""
        if not self._hashing.acquire(blocking=False):
            raise LoginRefusedError("busy", 1)
        try:
            wait = self.throttle.attempt(username, address)  # counted before the password is checked
            if wait:
                self.audit.record(username, "log-in throttled", "", address, f"retry in {wait} s")
                raise LoginRefusedError("throttled", wait)
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()
            usable = row is not None and row["disabled_at"] is None
            try:
                _hasher.verify(row["password_hash"] if usable and row else _DUMMY_HASH, password)
                right = usable
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                right = False
            rehash = (
                _hasher.hash(password) if right and row and _hasher.check_needs_rehash(row["password_hash"]) else None
            )
        finally:
            self._hashing.release()
        if not right:
            self.audit.record(username, "log-in refused", "", address)
            raise LoginRefusedError("wrong")
        self.throttle.succeeded(username, address)
        values = {"last_login_at": _now(), **({"password_hash": rehash} if rehash else {})}
        with self.engine.begin() as conn:
            conn.execute(self.users.update().where(self.users.c.username == username).values(**values))
        self.audit.record(username, "log-in", "", address)
        return self.sessions.start(username)

    def log_out(self, token: str, username: str, address: str) -> None:
        self.sessions.end(token)
        self.audit.record(username, "log-out", "", address)

    # ---- checks --------------------------------------------------------------------------

    def _role_ok(self, role: str) -> None:
        if role not in self.roles:
            raise ConfigError(f"role must be one of {', '.join(self.roles)}, not {role!r}")

    def _existing(self, conn: sa.Connection, username: str) -> sa.RowMapping:
        row = conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()
        if row is None:
            raise ConfigError(f"no account {username!r}")
        return row

    def _lock_admins(self, conn: sa.Connection) -> None:
        """Before a change reads anything: hold every enabled administrator's row (PostgreSQL) or the
        database (SQLite), so that two administrators demoting each other at once take turns and the
        second sees the first's change (no write skew that leaves no administrator)."""
        conn.execute(
            self.users.update()
            .where(self.users.c.role == self.admin_role, self.users.c.disabled_at.is_(None))
            .values(role=self.users.c.role)
        )

    def _keeps_an_admin(self, conn: sa.Connection, username: str, role: str, disabled: bool) -> None:
        """Refuse a change that would leave no enabled administrator."""
        if role == self.admin_role and not disabled:
            return
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(self.users)
            .where(
                self.users.c.role == self.admin_role,
                self.users.c.disabled_at.is_(None),
                self.users.c.username != username,
            )
        ).scalar_one()
        was_admin = conn.execute(
            sa.select(self.users.c.role).where(self.users.c.username == username, self.users.c.disabled_at.is_(None))
        ).scalar()
        if was_admin == self.admin_role and others == 0:
            raise ConfigError(f"{username} is the last enabled {self.admin_role}: add another one first")
