"""The dashboard's accounts (:mod:`clinic_common.auth`) with the hub's two roles.

``admin`` sees everything, manages accounts and reads the audit log; ``viewer`` sees the
dashboards and whether rooms are online. Neither can see anything but the released cells and the
appliances' health.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

from clinic_common.auth import Accounts, AuditLog, Throttle, WebSessions
from hub.config import WebConfig
from hub.store import auth

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")


def hub_accounts(engine: sa.Engine, web: WebConfig | None = None) -> Accounts:
    web = web or WebConfig()
    sessions = WebSessions(engine, auth, lifetime_s=web.session_hours * 3600, idle_s=web.idle_minutes * 60)
    return Accounts(engine, auth, ROLES, sessions, Throttle(engine, auth), AuditLog(engine, auth))


def add_user(engine: sa.Engine, username: str, password: str, role: str, actor: str = "command line") -> None:
    """Create or reset an account (its sessions end).

    Raises:
        ConfigError: a bad name, role or too short a password.
    """
    hub_accounts(engine).save(username, password, role, actor)
