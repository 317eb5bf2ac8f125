"""The review page at real scale, in Chromium at a laptop's and a phone's width: a 50-minute session
(2,990 windows, 12 moments, every row one the room wrote) opens as minutes, is walked with the
keyboard through one focusable chart, and a minute opens its windows; a therapist with 120 sessions
finds one by its consent reference and a date range, page by page. The page is served by
``clinic-edge review`` over TLS, as in a clinic; screenshots are kept as test artefacts."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from edge.config import load_config
from edge.control.commands import Consent
from edge.review.cache import PageCache
from edge.review.listing import PER_PAGE, session_list
from edge.runtime import Appliance
from edge.store import Store
from tests.conftest import (
    CONSENT,
    EVERYTHING_KEPT,
    ROOT,
    free_port,
    headless_chromium,
    make_pki,
    review_service,
    write_config,
)
from tests.long_session import lengthen

ARTIFACTS = ROOT / "build" / "test-artifacts" / "review-scale"
PASSWORD = "correct horse battery staple"
EDGE = (sys.executable, "-m", "edge")
SHORT = 120  # other sessions of the same therapist, for the list
# A session every five hours over the thirty days of the default retention (the room purges older ones).
FIRST_DAY = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=29)).replace(
    hour=2, minute=0, second=0, microsecond=0
)


def _began(n: int) -> dt.datetime:
    return FIRST_DAY + dt.timedelta(hours=5 * n)


@dataclass(frozen=True)
class Room:
    config: Path
    db: Path
    long: str
    short: list[str]  # newest first


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory, default_pack: Path, demo_clip: Path) -> Room:
    folder = tmp_path_factory.mktemp("review-scale")
    pki = make_pki(folder / "pki", [])
    config_path = write_config(
        folder / "room.toml",
        face_model=folder / "unused.onnx",
        state_dir=folder / "state",
        mqtt_port=None,
        pack=default_pack,
        extra=(
            EVERYTHING_KEPT
            + f'[review]\nport = {free_port()}\n[review.tls]\ncert_file = "{pki.folder / "broker.crt"}"\n'
            f'key_file = "{pki.folder / "broker.key"}"\n'
        ),
    )
    config = load_config(config_path)
    db = config.storage.state_dir / config.storage.database
    store = Store(db)
    short = []
    try:
        for n in range(SHORT):
            sid = store.start_session(
                site="test-site",
                room="room-a",
                device_id="edge-test",
                source_kind="test",
                backend="onnxruntime",
                model_sha256="0" * 64,
                consent=Consent(method="written", recorded_by="staff-test", reference=f"appt-{n:04d}"),
            )
            store.end_session(sid, frames=0, frames_dropped=0)
            short.append(sid)
    finally:
        store.close()
    # Each 50 minutes, the oldest first.
    with sqlite3.connect(db) as conn:
        for n, sid in enumerate(short):
            began = _began(n)
            conn.execute(
                "UPDATE sessions SET started_at = ?, ended_at = ? WHERE id = ?",
                [began.isoformat(), (began + dt.timedelta(minutes=50)).isoformat(), sid],
            )
    conn.close()
    report = Appliance(config, demo_clip.as_uri()).run(consent=CONSENT)
    long = lengthen(db, report.session_id)
    subprocess.run(
        [
            *EDGE,
            "review-account",
            "staff-test",
            "--config",
            str(config_path),
            "--role",
            "therapist",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return Room(config_path, db, long, list(reversed(short)))


@pytest.fixture(scope="module")
def page(room: Room) -> Iterator[str]:
    with review_service(room.config) as (base, _):
        yield base


def _phone(browser: object) -> None:
    """A phone's viewport (Chromium's window has a minimum width; the emulation has none)."""
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    )


def _log_in(browser: object, base: str) -> None:
    browser.get(base + "/")  # type: ignore[attr-defined]
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "login-form"))
    browser.find_element(By.ID, "username").send_keys("staff-test")  # type: ignore[attr-defined]
    browser.find_element(By.ID, "password").send_keys(PASSWORD)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "login-submit").click()  # type: ignore[attr-defined]
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "who"))


@pytest.mark.parametrize(("width", "window"), [("laptop", "1366,768"), ("phone", "390,844")])
def test_a_fifty_minute_session_opens_as_minutes_and_is_walked_by_keyboard(
    room: Room, page: str, width: str, window: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium(window, trust_any_certificate=True) as browser:
        if width == "phone":
            _phone(browser)
        _log_in(browser, page)
        browser.get(f"{page}/sessions/{room.long}")
        chart = WebDriverWait(browser, 120).until(lambda b: b.find_element(By.CSS_SELECTOR, "#timeline-chart svg"))
        minutes = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.minute[data-row='fused']")
        assert len(minutes) == 50, "a 50-minute session is drawn per minute, not per window"
        assert not browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window")
        stops = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart [tabindex]")
        assert len(stops) <= 1 + 12, "one tab stop for the chart (and one per moment), not one per window"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.moment")) == 12
        legend = browser.find_elements(By.CSS_SELECTOR, "#timeline-legend li")
        assert len(legend) == 9  # eight classes, no result
        sad = next(li for li in legend if li.text.strip() == "sad").find_element(By.CLASS_NAME, "swatch")
        assert sad.value_of_css_property("background-color") == "rgba(51, 34, 136, 1)", "the product's colour key"
        browser.save_screenshot(str(ARTIFACTS / f"long-session-{width}.png"))
        chart.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        detail = browser.find_element(By.ID, "window-detail").text
        assert detail.startswith("03:00\u201304:00"), detail
        chart.send_keys(Keys.ENTER)
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window"))
        windows = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window[data-row='fused']")
        starts = [float(w.get_attribute("data-start")) for w in windows]
        assert 55 <= len(windows) <= 65 and all(177.5 <= s < 240 for s in starts), (len(windows), starts[:3])
        assert "03:00\u201304:00" in browser.find_element(By.ID, "timeline-where").text
        chart = browser.find_element(By.CSS_SELECTOR, "#timeline-chart svg")
        chart.send_keys(Keys.ARROW_RIGHT)
        assert browser.find_elements(By.ID, "judge-window"), "a window chosen by keyboard can be judged"
        browser.save_screenshot(str(ARTIFACTS / f"long-session-minute-{width}.png"))
        chart.send_keys(Keys.ESCAPE)
        WebDriverWait(browser, 30).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.minute[data-row='fused']")) == 50
        )
        if width == "phone":
            scroll, inner = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert inner == 390
            wide = browser.execute_script(
                "return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > "
                "document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + "
                "e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
            )
            assert scroll <= 390 + 1, f"the page fits a phone's width ({scroll} px; wider: {wide})"


def _next_page(browser: WebDriver, action: Callable[[], object]) -> None:
    """Do what loads another page (a link, a form) and wait until the old page is gone, so that
    what is read next is the new page's, never a node of the page being torn down."""
    old = browser.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(browser, 30).until(staleness_of(old))


def test_a_therapist_finds_a_session_by_its_consent_reference_and_dates(room: Room, page: str) -> None:
    with headless_chromium("390,844", trust_any_certificate=True) as browser:
        _phone(browser)
        _log_in(browser, page)
        # The 120 short sessions, the demo clip's session and the 50-minute one made from it.
        assert "122 sessions, page 1 of 3" in browser.find_element(By.ID, "count").text
        first = [r.get_attribute("data-session") for r in browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")]
        assert first[0] == room.long and first[2:] == room.short[: PER_PAGE - 2], "newest first, fifty to a page"
        # A file's session lasts as long as its recording (not the time the room took to analyse it).
        long_row = browser.find_element(By.CSS_SELECTOR, f"#sessions tr[data-session='{room.long}']").text
        assert "49 min 51 s" in long_row, long_row
        _next_page(browser, lambda: browser.find_element(By.ID, "older").click())
        second = [r.get_attribute("data-session") for r in browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")]
        assert second == room.short[PER_PAGE - 2 : 2 * PER_PAGE - 2]
        open_button = browser.find_element(By.CSS_SELECTOR, "#sessions a.open")
        assert open_button.size["height"] >= 44, "a touch target"
        assert open_button.location["x"] + open_button.size["width"] <= 390, "within a phone's width"
        _next_page(browser, lambda: browser.find_element(By.ID, "q").send_keys("APPT-0007", Keys.ENTER))
        wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda b: "1 session" in b.find_element(By.ID, "count").text)
        row = browser.find_element(By.CSS_SELECTOR, "#sessions tbody tr")
        assert row.get_attribute("data-session") == room.short[SHORT - 1 - 7]
        assert "appt-0007" in row.text
        browser.save_screenshot(str(ARTIFACTS / "find-by-reference-phone.png"))
        d = 10
        start, end = (FIRST_DAY + dt.timedelta(days=d)).date(), (FIRST_DAY + dt.timedelta(days=d + 2)).date()
        browser.get(f"{page}/?from={start}&to={end}")
        days = [r.get_attribute("data-session") for r in browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")]
        expected = [sid for n, sid in enumerate(room.short[::-1]) if start <= _began(n).date() <= end][::-1]
        assert days == expected and len(days) >= 14, "three days' sessions, newest first"
        browser.get(f"{page}/?from=2026-12-31&to=2026-01-01")
        assert "is after" in browser.find_element(By.ID, "filter-problem").text
        assert browser.find_elements(By.ID, "no-sessions")


@pytest.mark.unit
def test_the_list_filters_and_pages_by_the_appliances_dates() -> None:
    """Table-driven: the same rows through the list's search, range and pages."""
    from edge.store import SessionRow

    rows = [
        SessionRow(
            f"id-{n:03d}",
            f"2026-11-{1 + n % 28:02d}T10:00:00+00:00",
            None,
            None,
            "written",
            "a",
            1,
            1,
            0,
            0.0,
            f"ref-{n:03d}",
        )
        for n in range(130)
    ]
    cases = [
        ({}, 130, 3),
        ({"q": "REF-01"}, 10, 1),
        ({"q": "id-12"}, 10, 1),
        ({"start": "2026-11-05", "end": "2026-11-05"}, 5, 1),
        ({"start": "2026-11-06", "end": "2026-11-05"}, 0, 1),
        ({"start": "11/05/2026"}, 130, 3),  # refused (said so), not applied
    ]
    for filters, total, pages in cases:
        listing = session_list(rows, **filters)
        assert (listing.total, listing.pages) == (total, pages), filters
    assert session_list(rows, start="11/05/2026").problem is not None
    assert session_list(rows, page=99).page == 3


@pytest.mark.unit
def test_a_built_page_is_kept_until_its_session_changes_or_goes() -> None:
    from edge.review.cache import BuiltPage
    from edge.store import SessionRow

    cache = PageCache(size=2)
    built: list[str] = []

    def build(name: str) -> BuiltPage:
        built.append(name)
        return BuiltPage(name, "{}")

    row = SessionRow("a", "2026-11-01T10:00:00+00:00", None, None, "written", "x", 10, 10, 0, 0.0)
    cache.get(row, lambda: build("a1"))
    cache.get(row, lambda: build("a2"))
    assert built == ["a1"], "built once"
    grown = SessionRow("a", "2026-11-01T10:00:00+00:00", None, None, "written", "x", 11, 11, 0, 0.0)
    assert cache.get(grown, lambda: build("a3")).report == "a3", "a session that grew is built again"
    cache.keep_only(["b"])
    assert "a" not in cache, "a session no longer stored is forgotten"
    cache.get(row, lambda: build("a4"))
    cache.drop("a")
    assert "a" not in cache


def test_errors_are_pages_in_plain_words_with_a_way_back(room: Room, page: str) -> None:
    with headless_chromium("1366,768", trust_any_certificate=True) as browser:
        _log_in(browser, page)
        for path, title in (
            ("/sessions/not-a-session", "Not found"),
            ("/access", "Not allowed"),  # a therapist: administrators only
            ("/no-such-page", "Not found"),
            ("/?page=0", "Something in the address or form was not understood"),
        ):
            browser.get(page + path)
            assert browser.find_element(By.ID, "error-title").text == title, path
            message = browser.find_element(By.ID, "error-message").text
            assert "{" not in message and "detail" not in message, message
            assert browser.find_element(By.ID, "error-back").get_attribute("href") == page + "/"
        browser.get(page + "/sessions/not-a-session")
        assert "erased or passed its retention period" in browser.find_element(By.ID, "error-message").text


def test_the_erase_page_says_when_the_hub_will_hear_of_it(tmp_path: Path, default_pack: Path) -> None:
    """A room whose broker is away holds its messages: the erase page says the hub learns of the
    erasure after those waiting (counted from the room's own outbox), not at once."""
    from edge.channels.registry import default_registry
    from edge.review.web import Review, _erasure_facts

    config = load_config(
        write_config(
            tmp_path / "room.toml", face_model=tmp_path / "x.onnx", state_dir=tmp_path / "s", mqtt_port=free_port()
        )
    )
    assert config.mqtt.enabled
    store = Store(config.storage.state_dir / config.storage.database)
    try:
        for n in range(3):
            store.add_summary(lambda seq, mid, n=n: ("clinic/v1/s/r/summary", f'{{"n": {n}, "seq": {seq}}}'))
    finally:
        store.close()
    review = Review(config, None, None, None, default_registry(), False)  # type: ignore[arg-type]
    review_log = type("Log", (), {"copies": lambda self, sid: []})()
    object.__setattr__(review, "log", review_log)
    facts = _erasure_facts(review, "any")
    assert facts["mqtt"] and facts["waiting"] == 3
