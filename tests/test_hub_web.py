"""The dashboard's web hardening, against the real hub's web server: security headers on every
response, the log-in form's CSRF token, tokens of any characters refused rather than crashing,
and CSV cells a spreadsheet would run as formulas neutralised. Pages still render under the
content security policy in headless Chromium (tests/test_hub_dashboard.py)."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import free_port, start_broker
from hub_helpers import Browserless, NoRedirect, cookie_jar, hub_config, running_hub, summary

from clinic_common.auth.web import SECURITY_HEADERS
from hub.release import policy_for, release_due
from hub.users import add_user
from hub.web import neutralised

PASSWORD = "correct horse battery"
SITE = '=HYPERLINK("evil")'


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hubweb")
    broker = start_broker(tmp)
    try:
        with running_hub(hub_config(tmp, broker.port, web_port=free_port(), cookie_secure=False), web=True) as hub:
            add_user(hub.ingest.engine, "admin", PASSWORD, "admin")
            for seq in range(1, 13):  # a site whose name is a formula, with k + 1 sessions
                body = summary(SITE, "r1", "dev-formula", seq, str(uuid.uuid4()), "2026-11-16")
                outcome = hub.ingest.handle(f"clinic/v1/{SITE}/r1/summary", body.model_dump_json().encode())
                assert outcome.result == "stored"
            engine = hub.ingest.engine
            assert release_due(engine, policy_for(engine, "week", 2)), "the week of 16 November is released"
            yield hub.url
    finally:
        broker.stop()


@pytest.mark.unit
@pytest.mark.parametrize("path", ["/login", "/", "/healthz", "/static/app.js", "/no-such-page"])
def test_every_response_carries_the_security_headers(web: str, path: str) -> None:
    _, headers, _ = Browserless(web).get(path)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 403),  # the form's token left out
        ("forged", 403),
        ("jeton-déjà-vu-✓", 403),  # not ASCII: refused, never a server error
        ("the form's", 303),
    ],
)
def test_log_in_needs_the_form_s_token(web: str, token: str | None, status: int) -> None:
    client = Browserless(web)
    real = client.login_token()
    form = {"username": "admin", "password": PASSWORD, "next": "/"}
    if token is not None:
        form["csrf"] = real if token == "the form's" else token
    request = urllib.request.Request(web + "/login", data=urllib.parse.urlencode(form).encode(), method="POST")
    no_redirect = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookie_jar(client)), NoRedirect())
    try:
        with no_redirect.open(request, timeout=10) as response:
            got = response.status
    except urllib.error.HTTPError as exc:
        got = exc.code
    assert got == status


@pytest.mark.unit
def test_a_non_ascii_token_on_a_signed_in_form_is_refused_not_a_crash(web: str) -> None:
    client = Browserless(web)
    status, _, _ = client.post("/login", {"username": "admin", "password": PASSWORD, "csrf": client.login_token()})
    assert status == 200  # followed the redirect to the overview
    status, _, body = client.post("/logout", {"csrf": "ünïcödé"})
    assert status == 403 and "stale form" in body


@pytest.mark.unit
def test_csv_cells_that_look_like_formulas_are_neutralised(web: str) -> None:
    client = Browserless(web)
    client.post("/login", {"username": "admin", "password": PASSWORD, "csrf": client.login_token()})
    status, _, text = client.get("/export.csv?level=site&grain=week")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["site"] for r in rows] == ["'" + SITE]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("north", "north"),
        ("12.5", "12.5"),
        ("", ""),
    ],
)
def test_neutralised(cell: str, expected: str) -> None:
    assert neutralised(cell) == expected
