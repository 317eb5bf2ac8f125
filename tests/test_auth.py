"""The shared staff accounts (clinic_common.auth) against real databases: log-in throttling that
escalates and holds under concurrent guesses, and administrators who cannot demote each other into
having none. Races are forced with barriers, never with sleeps; time is the throttle's own clock."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hub_helpers import postgres

import clinic_common.auth.accounts as accounts_module
from clinic_common.auth import Accounts, AuditLog, LoginRefusedError, Throttle, WebSessions
from clinic_common.errors import ConfigError
from hub.store import auth, metadata
from hub.users import ROLES

SECRET = "the right long secret"


def _accounts(engine: sa.Engine, parallel_hashes: int = 4) -> Accounts:
    metadata.create_all(engine)
    sessions = WebSessions(engine, auth, lifetime_s=3600, idle_s=600)
    return Accounts(
        engine, auth, ROLES, sessions, Throttle(engine, auth), AuditLog(engine, auth), parallel_hashes=parallel_hashes
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        from hub.store import make_engine

        e = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
        yield e
        e.dispose()
        return
    with postgres(tmp_path) as pg:
        from hub.store import make_engine

        e = make_engine(pg.url)
        yield e
        e.dispose()


def test_locks_escalate_and_guesses_per_day_stay_few(tmp_path: Path) -> None:
    """An attacker who guesses again the moment each lock ends: 5 guesses, then one per lock, each lock
    twice the last (15 min, 30 min, 1 h...), up to a day. Before: the locks alternated 15/30 min and
    let ~190 guesses a day through."""
    from hub.store import make_engine

    throttle = Throttle(make_engine(f"sqlite:///{tmp_path / 'auth.db'}"), auth)
    metadata.create_all(throttle.engine)
    now, checked, locks = 0.0, 0, []
    while now < 86400.0:
        wait = throttle.attempt("target", f"10.0.0.{checked % 200}", now=now)  # a new address each time
        if wait:
            locks.append(wait)
            now += wait
            continue
        checked += 1
    assert checked <= 12, checked
    assert locks[:4] == [900, 1800, 3600, 7200]
    # A day of quiet after the last lock and the count starts again.
    later = now + 86400.0 + max(locks)
    assert throttle.attempt("target", "10.0.1.1", now=later) == 0


def test_a_right_password_still_works_within_the_limit_and_clears_the_count(tmp_path: Path) -> None:
    from hub.store import make_engine

    accounts = _accounts(make_engine(f"sqlite:///{tmp_path / 'auth.db'}"))
    accounts.save("target", SECRET, "viewer", "test")
    for _ in range(4):
        with pytest.raises(LoginRefusedError, match="wrong"):
            accounts.log_in("target", "guess", "10.0.0.1")
    assert accounts.log_in("target", SECRET, "10.0.0.1")  # the fifth attempt, right
    for _ in range(4):  # counted from zero again
        with pytest.raises(LoginRefusedError, match="wrong"):
            accounts.log_in("target", "guess", "10.0.0.1")


def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve guesses released together by a barrier: exactly five passwords are checked (before: the
    check, the hash and the count's read-modify-write let 8-9 through)."""
    accounts = _accounts(engine, parallel_hashes=16)
    accounts.save("target", SECRET, "viewer", "test")
    checks: list[int] = []
    real = accounts_module._hasher

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, hashed: str, password: str) -> bool:
            checks.append(1)
            return real.verify(hashed, password)

    monkeypatch.setattr(accounts_module, "_hasher", Counting())
    start = threading.Barrier(12, timeout=60)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        start.wait()
        try:
            accounts.log_in("target", f"guess {i}", f"10.0.0.{i}")
        except LoginRefusedError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(checks) == 5
    assert sorted(outcomes) == ["throttled"] * 7 + ["wrong"] * 5


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each demotion checks that another admin remains, then writes. A barrier after the check holds
    the first until the second has checked too, if it can: before, both saw the other as admin and
    both demotions went through (write skew on SQLite and PostgreSQL READ COMMITTED). Now the second
    waits for the first's lock, then sees it and is refused."""
    accounts = _accounts(engine)
    accounts.save("ann", SECRET, "admin", "test")
    accounts.save("bob", SECRET, "admin", "test")
    checked = threading.Barrier(2)
    real = Accounts._keeps_an_admin

    def check_then_wait(self: Accounts, *args: Any) -> None:
        real(self, *args)
        with contextlib.suppress(threading.BrokenBarrierError):  # the second arrives only if nothing serialises
            checked.wait(timeout=5)

    monkeypatch.setattr(Accounts, "_keeps_an_admin", check_then_wait)
    refused: list[str] = []

    def demote(who: str, by: str) -> None:
        try:
            accounts.set_role(who, "viewer", by)
        except ConfigError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=demote, args=p) for p in (("ann", "bob"), ("bob", "ann"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    admins = [a.username for a in accounts.list() if a.role == "admin"]
    assert len(admins) == 1 and len(refused) == 1 and "last enabled admin" in refused[0]


def test_the_audit_log_is_searched_and_paged(tmp_path: Path) -> None:
    """Table-driven: who and what, newest first, a hundred to a page."""
    from clinic_common.auth.audit import PER_PAGE
    from clinic_common.auth.tables import define_tables

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    metadata = sa.MetaData()
    tables = define_tables(metadata)
    metadata.create_all(engine)
    log = AuditLog(engine, tables)
    for n in range(250):
        log.record(f"staff-{n % 5}", "log-in" if n % 2 else "log-in refused", f"t{n}")
    cases = [
        ({}, 250, 3, 100),
        ({"who": "STAFF-1"}, 50, 1, 50),
        ({"action": "log-in refused"}, 125, 2, 100),
        ({"who": "staff-2", "action": "log-in"}, 25, 1, 25),
        ({"page": 3}, 250, 3, 50),
        ({"page": 99}, 250, 3, 50),
        ({"who": "%"}, 0, 1, 0),  # a wildcard is a character, not a pattern
    ]
    for args, total, pages, shown in cases:
        found = log.search(**args)  # type: ignore[arg-type]
        assert (found.total, found.pages, len(found.entries)) == (total, pages, shown), args
    assert log.search().entries[0].target == "t249" and PER_PAGE == 100
    assert log.search().actions == ["log-in", "log-in refused"]
