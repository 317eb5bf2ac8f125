"""Log-in throttling per account and per address, kept in the database (shared by every process of
a product) and answered at once: a locked key is refused with the time left, without hashing the
password and without sleeping in a worker thread."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import sqlalchemy as sa

from clinic_common.auth.tables import AuthTables


@dataclass(frozen=True)
class Limit:
    failures: int  # this many failures...
    window_s: float  # ...within this time...
    lock_s: float  # ...lock the key this long (doubling with each further failure while locked out)


class Throttle:
    def __init__(
        self,
        engine: sa.Engine,
        tables: AuthTables,
        per_account: Limit = Limit(5, 900.0, 900.0),
        per_address: Limit = Limit(20, 900.0, 900.0),
    ) -> None:
        self.engine = engine
        self.table = tables.login_failures
        self.limits = {"user": per_account, "addr": per_address}

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username[:64]}", f"addr:{address[:64]}"

    def retry_after(self, username: str, address: str, now: float | None = None) -> int:
        """Seconds until a log-in may be tried for this account from this address (0: now)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(self.table.c.locked_until).where(self.table.c.key.in_(self.keys(username, address)))
            ).scalars()
            return int(max([0, *(math.ceil(until - now) for until in rows)]))

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            for key in self.keys(username, address):
                limit = self.limits[key.split(":", 1)[0]]
                row = conn.execute(sa.select(self.table).where(self.table.c.key == key)).mappings().first()
                if row is None or (now - row["first_at"] > limit.window_s and row["locked_until"] <= now):
                    values = {"failures": 1, "first_at": now, "locked_until": 0.0}
                else:
                    failures = row["failures"] + 1
                    over = failures - limit.failures
                    lock = limit.lock_s * 2 ** min(over, 10) if over >= 0 else 0.0
                    values = {
                        "failures": failures,
                        "first_at": row["first_at"],
                        "locked_until": now + lock if lock else 0.0,
                    }
                if row is None:
                    conn.execute(self.table.insert().values(key=key, **values))
                else:
                    conn.execute(self.table.update().where(self.table.c.key == key).values(**values))

    def succeeded(self, username: str) -> None:
        """A right password clears the account's count (not the address's: one good account does
        not unlock guessing at the others)."""
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.key == self.keys(username, "")[0]))
