"""Log-in throttling per account and per address, kept in the database (shared by every process of
a product) and answered at once: a locked key is refused with the time left, without hashing the
password and without sleeping in a worker thread.

Every attempt is counted *before* its password is checked, in one transaction that holds the key's
row (:meth:`Throttle.attempt`): however many guesses arrive at once, at most ``failures`` of them are
checked before the key locks. A right password takes its attempt back (:meth:`Throttle.succeeded`).

Locks escalate: the first lock lasts ``lock_s``, and every attempt allowed after a lock ends (one
guess) locks the key again for twice as long as before, up to ``max_lock_s``. The count starts again
only after ``quiet_s`` without a failure since the last lock ended (or, for a key never locked, after
``window_s``). Five guesses, then one after 15 min, 30 min, 1 h, ...: about a dozen a day per account
instead of hundreds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from clinic_common.auth.tables import AuthTables


@dataclass(frozen=True)
class Limit:
    failures: int  # this many failures...
    window_s: float  # ...within this time...
    lock_s: float  # ...lock the key this long, doubling with each further attempt after a lock
    max_lock_s: float = 86400.0  # the longest lock
    quiet_s: float = 86400.0  # a locked key's count starts again after this long without failures


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

    def attempt(self, username: str, address: str, now: float | None = None) -> int:
        """Count an attempt before its password is checked: 0 when it may be checked, else the seconds
        until one may (and nothing is counted)."""
        now = time.time() if now is None else now
        keys = self.keys(username, address)
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(self.table)
        with self.engine.begin() as conn:
            # Writing first takes the rows' lock (SQLite: the database's) before anything is read.
            conn.execute(
                insert.values(
                    [{"key": k, "failures": 0, "first_at": now, "locked_until": 0.0} for k in keys]
                ).on_conflict_do_nothing(index_elements=["key"])
            )
            rows = {
                r["key"]: r
                for r in conn.execute(
                    sa.select(self.table).where(self.table.c.key.in_(keys)).with_for_update()
                ).mappings()
            }
            wait = max(math.ceil(rows[k]["locked_until"] - now) for k in keys)
            if wait > 0:
                return int(wait)
            for key in keys:
                conn.execute(
                    self.table.update().where(self.table.c.key == key).values(**self._after(rows[key], key, now))
                )
        return 0

    def _after(self, row: sa.RowMapping, key: str, now: float) -> dict[str, float]:
        limit = self.limits[key.split(":", 1)[0]]
        locked_before = row["locked_until"] > 0
        fresh = (
            (now - row["locked_until"] > limit.quiet_s) if locked_before else (now - row["first_at"] > limit.window_s)
        )
        if fresh or row["failures"] == 0:
            return {"failures": 1, "first_at": now, "locked_until": 0.0 if limit.failures > 1 else now + limit.lock_s}
        failures = row["failures"] + 1
        over = failures - limit.failures
        if over < 0:
            return {"failures": failures, "first_at": row["first_at"], "locked_until": row["locked_until"]}
        lock = min(limit.lock_s * 2 ** min(over, 30), limit.max_lock_s)
        return {"failures": failures, "first_at": row["first_at"], "locked_until": now + lock}

    def succeeded(self, username: str, address: str = "") -> None:
        """A right password clears the account's count (not the address's: one good account does not
        unlock guessing at the others), and takes back the address's count of this attempt."""
        user_key, addr_key = self.keys(username, address)
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.key == user_key))
            if address:
                conn.execute(
                    self.table.update()
                    .where(self.table.c.key == addr_key, self.table.c.failures > 0)
                    .values(failures=self.table.c.failures - 1)
                )

    def clear(self, username: str, conn: sa.Connection) -> None:
        """An administrator's reset or re-enable lifts the account's lock (in the change's transaction)."""
        conn.execute(self.table.delete().where(self.table.c.key == self.keys(username, "")[0]))
