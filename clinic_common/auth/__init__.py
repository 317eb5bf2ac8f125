"""Staff accounts for the products' web pages (the hub's dashboard, the appliance's review page):
argon2id passwords, server-side log-in sessions that end at once when an account changes, log-in
throttling that never sleeps, and an audit log. Storage is a product's own database
(SQLAlchemy Core tables the product adds to its metadata with :func:`define_tables`)."""

from clinic_common.auth.accounts import Account, Accounts, LoginRefusedError
from clinic_common.auth.audit import AuditEntry, AuditLog
from clinic_common.auth.sessions import WebSession, WebSessions
from clinic_common.auth.tables import AuthTables, define_tables
from clinic_common.auth.throttle import Throttle

__all__ = [
    "Account",
    "Accounts",
    "AuditEntry",
    "AuditLog",
    "AuthTables",
    "LoginRefusedError",
    "Throttle",
    "WebSession",
    "WebSessions",
    "define_tables",
]
