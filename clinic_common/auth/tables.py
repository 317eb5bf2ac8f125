"""The tables staff accounts live in, added to a product's own metadata."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class AuthTables:
    users: sa.Table
    web_sessions: sa.Table
    audit_log: sa.Table
    login_failures: sa.Table

    def all(self) -> tuple[sa.Table, ...]:
        return (self.users, self.web_sessions, self.audit_log, self.login_failures)


def define_tables(metadata: sa.MetaData) -> AuthTables:
    users = sa.Table(
        "users",
        metadata,
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("last_login_at", sa.String(40)),
        sa.Column("disabled_at", sa.String(40)),
    )
    web_sessions = sa.Table(
        "web_sessions",
        metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the cookie; the cookie is not kept
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    audit_log = sa.Table(
        "audit_log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", sa.String(300), nullable=False, server_default=""),
    )
    login_failures = sa.Table(
        "login_failures",
        metadata,
        sa.Column("key", sa.String(100), primary_key=True),  # "user:<name>" or "addr:<address>"
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=False),
    )
    return AuthTables(users, web_sessions, audit_log, login_failures)
