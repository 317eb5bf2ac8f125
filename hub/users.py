"""Dashboard accounts: argon2id password hashes (argon2-cffi) and two roles.

``admin`` sees everything and manages accounts; ``viewer`` sees the dashboards. Neither can see
anything but the aggregate views and the appliances' health.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clinic_common.errors import ConfigError
from hub.store import users

logger = logging.getLogger(__name__)

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()
# Spent on unknown user names too, so a failed login takes as long whether or not the name exists.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


def add_user(engine: sa.Engine, username: str, password: str, role: str) -> None:
    """Create or replace an account.

    Raises:
        ConfigError: a bad name, role or too short a password.
    """
    if not _NAME.match(username):
        raise ConfigError("user name: 2-64 characters of lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"password must have at least {MIN_PASSWORD} characters")
    values = {
        "password_hash": _hasher.hash(password),
        "role": role,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first() is None:
            conn.execute(users.insert().values(username=username, **values))
        else:
            conn.execute(users.update().where(users.c.username == username).values(**values))
    logger.info("account %s (%s) saved", username, role)


def authenticate(engine: sa.Engine, username: str, password: str) -> Role | None:
    """The account's role when the password is right, else None (same cost either way)."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        try:
            _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        values: dict[str, str] = {"last_login_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if _hasher.check_needs_rehash(row["password_hash"]):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(users.update().where(users.c.username == username).values(**values))
        role: Role = row["role"]
        return role


def list_users(engine: sa.Engine) -> list[dict[str, str | None]]:
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(users.c.username, users.c.role, users.c.created_at, users.c.last_login_at)
        ).mappings()
        return [dict(r) for r in rows]
