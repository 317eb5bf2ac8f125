"""Accounts that can be revoked, against the real hub's web server: server-side sessions that end at
log-out and at every account change, throttling that answers at once, the audit log."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import free_port, start_broker
from hub_helpers import Browserless, cookie_jar, hub_config, running_hub

from clinic_common.auth import Accounts

ADMIN = ("admin", "correct horse battery")


@dataclass
class Web:
    url: str
    accounts: Accounts


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    tmp = tmp_path_factory.mktemp("hubaccounts")
    broker = start_broker(tmp)
    try:
        config = hub_config(tmp, broker.port, web_port=free_port(), cookie_secure=False)
        with running_hub(config, web=True) as hub:
            assert hub.app is not None
            accounts: Accounts = hub.app.state.hub.accounts  # the dashboard's own
            accounts.save(*ADMIN, "admin", "test")
            yield Web(hub.url, accounts)
    finally:
        broker.stop()


@pytest.fixture(autouse=True)
def _no_earlier_failures(web: Web) -> None:
    """Each test starts with no failed log-ins counted for this machine's address."""
    with web.accounts.engine.begin() as conn:
        conn.execute(web.accounts.throttle.table.delete())


def _log_in(web: Web, user: str, password: str) -> tuple[Browserless, int, str]:
    client = Browserless(web.url)
    status, _, body = client.post("/login", {"username": user, "password": password, "csrf": client.login_token()})
    return client, status, body


def _session_cookie(client: Browserless) -> str:
    return next(c.value for c in cookie_jar(client) if c.name == "clinic_hub" and c.value)


def _replay(web: Web, path: str, cookie: str) -> int:
    """A request carrying only ``cookie``, as someone who copied it would send it (no redirects)."""
    request = urllib.request.Request(web.url + path, headers={"Cookie": f"clinic_hub={cookie}"})
    opener = urllib.request.build_opener(_Stop())
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class _Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


@pytest.mark.unit
def test_a_cookie_replayed_after_log_out_is_refused(web: Web) -> None:
    client, status, _ = _log_in(web, *ADMIN)
    assert status == 200
    cookie = _session_cookie(client)
    assert _replay(web, "/users", cookie) == 200
    _, _, page = client.get("/")
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post("/logout", {"csrf": csrf})
    assert _replay(web, "/users", cookie) == 303  # to the log-in page


@pytest.mark.parametrize(
    ("change", "then"),
    [
        ("role", "viewer"),  # the review's case: reset to viewer, the old admin cookie kept working
        ("password", "admin"),
        ("disable", None),
        ("delete", None),
    ],
)
def test_every_account_change_ends_its_sessions_at_once(web: Web, change: str, then: str | None) -> None:
    name = f"boss-{change}"
    web.accounts.save(name, "a long enough secret", "admin", "test")
    client, status, _ = _log_in(web, name, "a long enough secret")
    cookie = _session_cookie(client)
    assert status == 200 and _replay(web, "/users", cookie) == 200
    if change == "role":
        web.accounts.set_role(name, "viewer", "admin")
    elif change == "password":
        web.accounts.save(name, "another long secret", "admin", "admin")
    elif change == "disable":
        web.accounts.disable(name, "admin")
    else:
        web.accounts.delete(name, "admin")
    assert _replay(web, "/users", cookie) == 303
    if then is not None:  # a new log-in gets the account as it is now
        client, status, _ = _log_in(web, name, "a long enough secret" if change == "role" else "another long secret")
        assert status == 200 and _replay(web, "/users", _session_cookie(client)) == (200 if then == "admin" else 403)
    else:
        _, status, _ = _log_in(web, name, "a long enough secret")
        assert status == 401


@pytest.mark.unit
def test_admins_change_accounts_on_the_page_and_read_the_audit_log(web: Web) -> None:
    web.accounts.save("nurse", "a long enough secret", "viewer", "test")
    nurse, _, _ = _log_in(web, "nurse", "a long enough secret")
    nurse_cookie = _session_cookie(nurse)
    admin, _, page = _log_in(web, *ADMIN)
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    status, _, _ = admin.post("/users/nurse/disable", {"csrf": csrf})
    assert status == 200 and _replay(web, "/", nurse_cookie) == 303
    status, _, body = admin.post("/users/nurse/delete", {"csrf": csrf, "confirm": "nurs"})
    assert status == 400 and "type the account&#39;s name (nurse) to delete it" in body
    status, _, body = admin.post("/users/admin/disable", {"csrf": csrf})
    assert status == 400 and "another administrator changes, disables or deletes your own account" in body
    status, _, _ = admin.post("/users/nurse/delete", {"csrf": csrf, "confirm": "nurse"})
    assert status == 200 and "nurse" not in [a.username for a in web.accounts.list()]
    status, _, audit = admin.get("/audit")
    assert status == 200
    for action in ("account disabled", "account deleted", "log-in"):
        assert f'<td class="action">{action}</td>' in audit
    web.accounts.save("viewer1", "a long enough secret", "viewer", "test")
    viewer, _, _ = _log_in(web, "viewer1", "a long enough secret")
    assert viewer.get("/audit")[0] == 403


@pytest.mark.unit
def test_failed_log_ins_are_throttled_per_account_without_waiting(web: Web) -> None:
    web.accounts.save("target", "the right long secret", "viewer", "test")
    for _ in range(5):
        assert _log_in(web, "target", "guess")[1] == 401
    client = Browserless(web.url)
    status, headers, body = client.post(
        "/login", {"username": "target", "password": "the right long secret", "csrf": client.login_token()}
    )
    assert status == 429 and int(headers["retry-after"]) > 800 and "Too many failed log-ins" in body
    assert [e.action for e in web.accounts.audit.recent(1)] == ["log-in throttled"]
    # Other accounts from other places are not locked out by it.
    assert _log_in(web, *ADMIN)[1] == 200


def test_failed_log_ins_are_throttled_per_address(web: Web) -> None:
    for i in range(20):  # twenty names, one address: someone trying accounts
        assert _log_in(web, f"nobody{i}", "guess")[1] == 401
    status = _log_in(web, "admin", "correct horse battery")[1]
    assert status == 429  # even the right password, from this address, for now


@pytest.mark.unit
def test_too_many_password_checks_at_once_are_refused_not_queued(web: Web) -> None:
    hashing = web.accounts._hashing  # the bound on argon2 in flight (64 MiB each)
    held = 0
    while hashing.acquire(blocking=False):
        held += 1
    try:
        _, status, body = _log_in(web, *ADMIN)
        assert status == 503 and "busy" in body
    finally:
        for _ in range(held):
            hashing.release()
    assert _log_in(web, *ADMIN)[1] == 200


def test_a_forged_forwarded_for_is_not_believed(web: Web) -> None:
    """Without a configured proxy the dashboard believes no X-Forwarded-For: twenty guesses at twenty
    names, each claiming another address, lock this machine's address, and the audit log records it,
    not the forged ones."""
    for i in range(20):
        client = Browserless(web.url)
        form = {"username": f"nobody{i}", "password": "guess", "csrf": client.login_token()}
        assert client.post("/login", form, headers={"X-Forwarded-For": f"203.0.113.{i}"})[0] == 401
    client = Browserless(web.url)
    form = {"username": ADMIN[0], "password": ADMIN[1], "csrf": client.login_token()}
    assert client.post("/login", form, headers={"X-Forwarded-For": "198.51.100.7"})[0] == 429
    addresses = {e.address for e in web.accounts.audit.recent(30) if e.action.startswith("log-in")}
    assert addresses == {"127.0.0.1"}


def test_the_create_form_never_resets_an_account_and_reset_is_its_own_action(web: Web) -> None:
    admin, status, _ = _log_in(web, *ADMIN)
    assert status == 200
    token = admin.get("/users")[2].split('name="csrf" value="', 1)[1].split('"', 1)[0]
    # The create form, aimed at the admin's own account (or any existing one), changes nothing.
    for name in (ADMIN[0], "target2"):
        web.accounts.save("target2", "the right long secret", "viewer", "test")
        status, _, body = admin.post(
            "/users", {"username": name, "password": "an attacker's choice", "role": "admin", "csrf": token}
        )
        assert status == 400 and "exists already" in body
    assert _log_in(web, *ADMIN)[1] == 200
    assert {a.username: a.role for a in web.accounts.list()}["target2"] == "viewer"
    # Reset is an action on another account; one's own is refused.
    status, _, body = admin.post("/users/target2/reset", {"password": "a new long secret", "csrf": token})
    assert status == 200 and 'id="account-error"' not in body  # back on the accounts page
    assert _log_in(web, "target2", "a new long secret")[1] == 200
    status, _, body = admin.post(f"/users/{ADMIN[0]}/reset", {"password": "a new long secret", "csrf": token})
    assert status == 400 and "your own account" in body
    assert _log_in(web, *ADMIN)[1] == 200
