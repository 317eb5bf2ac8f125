"""The dashboard in headless Chromium (Debian's chromium + chromium-driver through Selenium),
against the real hub, a real broker and simulated rooms: log in, change filters, read values,
export CSV, roles. Screenshots are kept in build/test-artifacts/hub/."""

from __future__ import annotations

import csv
import datetime as dt
import io
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, free_port, headless_chromium, start_broker
from hub_helpers import Room, hub_config, running_hub, status, summary, wait_for
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from hub.release import configured_policy, policy_for, release_due
from hub.users import add_user

ARTIFACTS = ROOT / "build" / "test-artifacts" / "hub"
ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer password 123"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hub")
    broker = start_broker(tmp)
    config = hub_config(tmp, broker.port, web_port=free_port(), finest_grain="day")
    rooms = {
        "north/r1": Room("127.0.0.1", broker.port, "north", "r1", "edge-n1"),
        "north/r2": Room("127.0.0.1", broker.port, "north", "r2", "edge-n2"),
        "south/r1": Room("127.0.0.1", broker.port, "south", "r1", "edge-s1"),
    }
    try:
        with running_hub(config, web=True) as running:
            add_user(running.ingest.engine, "admin", ADMIN_PASSWORD, "admin")
            add_user(running.ingest.engine, "viewer", VIEWER_PASSWORD, "viewer")
            rooms["north/r1"].publish(
                "status", status("edge-n1", calibrated_at="2026-11-01T08:00:00+00:00").model_dump_json(), retain=True
            )
            rooms["north/r2"].publish("status", status("edge-n2", outbox=7).model_dump_json(), retain=True)
            rooms["south/r1"].publish("status", status("edge-s1", state="offline").model_dump_json(), retain=True)
            for _ in range(12):
                rooms["north/r1"].session("2026-11-16", windows=2, label="happy")
            for _ in range(5):
                rooms["north/r2"].session("2026-11-16", windows=2, label="sad")
            for _ in range(14):
                rooms["south/r1"].session("2026-11-17", windows=2, label="calm")
            wait_for(lambda: running.ingest.metrics.summaries.labels("stored")._value.get() == 62, what="62 summaries")
            engine = running.ingest.engine
            released = release_due(engine, policy_for(engine, "day", config.privacy.release_delay_days))
            assert ("week", "2026-11-16") in {(r.grain, r.period) for r in released}
            yield running.url
    finally:
        for room in rooms.values():
            room.close()
        broker.stop()


def _replaced(element: WebElement) -> Callable[[WebDriver], bool]:
    """True once ``element``'s page is gone. Chromium reports a node of a page being torn down either
    as stale or as not belonging to the document; both mean the navigation happened."""

    def check(_driver: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return check


def _click(driver: WebDriver, element_id: str) -> None:
    """Click a link or submit button and wait until the next page has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, 20).until(_replaced(old))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _login(driver: WebDriver, url: str, user: str, password: str) -> None:
    driver.get(url + "/")
    assert "/login" in driver.current_url  # not logged in: sent to the login page
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    _click(driver, "login-submit")


def _held(driver: WebDriver) -> list[tuple[str, str, str]]:
    """The cells marked in place as not shown (held back, or no session: the page cannot tell)."""
    return [
        (r.get_attribute("data-period") or "", r.get_attribute("data-site") or "", r.get_attribute("data-room") or "")
        for r in driver.find_elements(By.CSS_SELECTOR, "#cells tbody tr.held")
    ]


def _series(driver: WebDriver) -> tuple[str, list[str]]:
    """The chart's type and its series' names."""
    ready = "return document.getElementById('chart').dataset.ready"
    wait_for(lambda: driver.execute_script(ready) == "1", what="the chart")
    kind, names = driver.execute_script(
        "const c = window.clinicChart; return [c.config.type, c.data.datasets.map((d) => d.label)];"
    )
    return kind, names


def entries_of(driver: WebDriver) -> list[str]:
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")]


def _rows(driver: WebDriver) -> list[tuple[str, str, str, int]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#cells tbody tr:not(.held)")
    return [
        (
            r.get_attribute("data-period") or "",
            r.get_attribute("data-site") or "",
            r.get_attribute("data-room") or "",
            int(r.find_element(By.CSS_SELECTOR, "td.sessions").text),
        )
        for r in rows
    ]


def _cookie_get(driver: WebDriver, url: str) -> str:
    cookie = driver.get_cookie("clinic_hub")
    assert cookie is not None
    request = urllib.request.Request(url, headers={"Cookie": f"clinic_hub={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_admin_logs_in_reads_the_overview_and_filters_trends(browser: WebDriver, hub: str) -> None:
    _login(browser, hub, "admin", "wrong password")
    assert browser.find_element(By.ID, "login-error").text == "Wrong user name or password."
    browser.find_element(By.ID, "username").clear()
    _login(browser, hub, "admin", ADMIN_PASSWORD)
    wait_for(lambda: browser.find_elements(By.ID, "kpi-online"), what="the overview")
    cookie = browser.get_cookie("clinic_hub")
    assert cookie is not None and cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert (
        browser.find_element(By.ID, "kpi-online").text == "2" and browser.find_element(By.ID, "kpi-devices").text == "3"
    )
    assert _rows(browser) == [("2026-11-16", "all sites", "all rooms", 31)]  # one ISO week, 31 sessions
    wait_for(
        lambda: browser.execute_script("return document.getElementById('chart').dataset.ready") == "1", what="the chart"
    )
    sources = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script") if s.get_attribute("src")]
    assert sources and all(src.startswith(hub + "/static/") for src in sources)  # nothing from a CDN
    browser.save_screenshot(str(ARTIFACTS / "overview.png"))

    _click(browser, "nav-trends")
    Select(browser.find_element(By.ID, "f-level")).select_by_value("site")
    Select(browser.find_element(By.ID, "f-grain")).select_by_value("day")
    _click(browser, "f-apply")
    assert _rows(browser) == [("2026-11-16", "north", "all rooms", 17), ("2026-11-17", "south", "all rooms", 14)]
    # One line per site; the day a site had nothing shown is marked in place, not left out.
    assert _series(browser) == ("line", ["north", "south"])
    assert _held(browser) == [("2026-11-16", "south", "all rooms"), ("2026-11-17", "north", "all rooms")]
    assert "Mon 16 Nov 2026" in browser.find_element(By.CSS_SELECTOR, "#cells tbody tr").text
    happy = browser.find_element(By.CSS_SELECTOR, "#cells tbody tr[data-site='north'] td.emo-happy").text
    # 12 happy-leaning sessions (happy 0.72) and 5 sad-leaning ones (happy 0.04), two windows each.
    assert happy == f"{100 * (12 * 0.72 + 5 * 0.04) / 17:.1f} %"
    browser.save_screenshot(str(ARTIFACTS / "trends-site-day.png"))

    Select(browser.find_element(By.ID, "f-level")).select_by_value("room")
    _click(browser, "f-apply")
    # north/r2 has 5 sessions (< k); north/r1 (12) is hidden as well, or north minus r1 would reveal r2.
    assert _rows(browser) == [("2026-11-17", "south", "r1", 14)]
    assert ("2026-11-16", "north", "r2") in _held(browser) and ("2026-11-16", "north", "r1") in _held(browser)
    assert "held back for privacy" in browser.find_element(By.CSS_SELECTOR, "#cells tbody tr.held").text
    assert _series(browser) == ("line", ["north / r1", "north / r2", "south / r1"]), "never pooled"
    browser.save_screenshot(str(ARTIFACTS / "trends-room-day.png"))

    export = browser.find_element(By.ID, "export").get_attribute("href")
    assert export is not None
    rows = list(csv.DictReader(io.StringIO(_cookie_get(browser, export))))
    assert [(r["period"], r["site"], r["room"], r["sessions"]) for r in rows] == [("2026-11-17", "south", "r1", "14")]
    assert float(rows[0]["calm_pct"]) > 60

    Select(browser.find_element(By.ID, "f-level")).select_by_value("site")
    Select(browser.find_element(By.ID, "f-site")).select_by_value("south")
    _click(browser, "f-apply")
    assert _rows(browser) == [("2026-11-17", "south", "all rooms", 14)]

    # A site with the clinic level narrows the level to the site; a range that ends first says so.
    browser.get(hub + "/trends?level=clinic&site=north&grain=day")
    assert _rows(browser) == [("2026-11-16", "north", "all rooms", 17)]
    browser.get(hub + "/trends?level=room&site=south&room=r2&grain=day")
    assert "is not in site south" in browser.find_element(By.ID, "filter-problem").text
    browser.get(hub + "/trends?grain=day&start=2026-11-20&end=2026-11-01")
    assert "is after" in browser.find_element(By.ID, "filter-problem").text
    assert "Newest released day: Tue 17 Nov 2026" in browser.find_element(By.ID, "freshness").text


@pytest.mark.unit
def test_room_health_shows_status_backlog_and_calibration(browser: WebDriver, hub: str) -> None:
    browser.get(hub + "/rooms")
    if "/login" in browser.current_url:
        _login(browser, hub, "admin", ADMIN_PASSWORD)
        browser.get(hub + "/rooms")
    cells = {
        r.get_attribute("data-device"): {
            c: r.find_element(By.CSS_SELECTOR, f"td.{c}").text for c in ("state", "outbox", "calibrated", "summaries")
        }
        for r in browser.find_elements(By.CSS_SELECTOR, "#rooms tbody tr")
    }
    assert cells["edge-s1"]["state"] == "offline" and cells["edge-n1"]["state"] == "online"
    assert cells["edge-n2"]["outbox"] == "7" and cells["edge-n2"]["calibrated"] == "never"
    assert cells["edge-n1"]["calibrated"].endswith("days ago")
    assert cells["edge-n1"]["summaries"] == "24"
    # Triage: problems first, each reason said in words beside its level, a link to the room's trends.
    levels = [
        (r.get_attribute("data-device"), r.get_attribute("data-level"))
        for r in browser.find_elements(By.CSS_SELECTOR, "#rooms tbody tr")
    ]
    assert [lvl for _, lvl in levels] == sorted((lvl for _, lvl in levels), key=["problem", "check", "ok"].index)
    assert dict(levels)["edge-s1"] == "problem" and dict(levels)["edge-n2"] == "problem"
    attention = browser.find_element(By.CSS_SELECTOR, "#rooms tr[data-device='edge-s1'] td.attention").text
    assert "problem: offline since" in attention
    assert "never calibrated" in browser.find_element(By.CSS_SELECTOR, "#rooms tr[data-device='edge-n2']").text
    link = browser.find_element(By.CSS_SELECTOR, "#rooms tr[data-device='edge-n1'] a.room-trends")
    assert link.get_attribute("href").endswith("/trends?level=room&site=north&room=r1")
    browser.save_screenshot(str(ARTIFACTS / "rooms.png"))
    browser.get(hub + "/rooms?sort=outbox")
    assert browser.find_element(By.CSS_SELECTOR, "#rooms tbody tr").get_attribute("data-device") == "edge-n2"
    Select(browser.find_element(By.ID, "r-site")).select_by_value("south")
    _click(browser, "r-apply")
    assert [r.get_attribute("data-device") for r in browser.find_elements(By.CSS_SELECTOR, "#rooms tbody tr")] == [
        "edge-s1"
    ]


def test_viewer_cannot_manage_accounts(browser: WebDriver, hub: str) -> None:
    browser.delete_all_cookies()
    _login(browser, hub, "viewer", VIEWER_PASSWORD)
    wait_for(lambda: browser.find_elements(By.ID, "kpi-online"), what="the overview")
    assert not browser.find_elements(By.ID, "nav-users")
    # Viewers see whether rooms are online, nothing that ties a change to an appointment.
    browser.get(hub + "/rooms")
    table = browser.find_element(By.ID, "rooms")
    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    states = [
        (r.find_elements(By.TAG_NAME, "td")[1].text, r.find_element(By.CSS_SELECTOR, "td.state").text)
        for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert heads == ["Site", "Room", "Status"]
    assert sorted(states) == [("r1", "offline"), ("r1", "online"), ("r2", "online")]
    page = browser.page_source
    assert "edge-n1" not in page and ">recording<" not in page and "Last summary" not in page
    browser.save_screenshot(str(ARTIFACTS / "rooms-viewer.png"))
    browser.get(hub + "/users")
    assert browser.find_element(By.ID, "error-message").text == "Only administrators may open this page."
    browser.get(hub + "/")
    _click(browser, "logout")
    assert "/login" in browser.current_url
    browser.get(hub + "/trends")
    assert "/login" in browser.current_url  # the session is gone


def test_admin_adds_an_account_and_weak_passwords_are_refused(browser: WebDriver, hub: str) -> None:
    browser.delete_all_cookies()
    _login(browser, hub, "admin", ADMIN_PASSWORD)
    browser.get(hub + "/users")
    browser.find_element(By.ID, "new-username").send_keys("nurse.lead")
    browser.find_element(By.ID, "new-password").send_keys("short-but-12")
    _click(browser, "account-save")
    names = [
        r.find_elements(By.TAG_NAME, "td")[0].text for r in browser.find_elements(By.CSS_SELECTOR, "#accounts tbody tr")
    ]
    assert "nurse.lead" in names
    # Disable it on the page: its row says so, and the audit log records who did it.
    row = browser.find_element(By.CSS_SELECTOR, "#accounts tr[data-user='nurse.lead']")
    old = browser.find_element(By.ID, "accounts")
    row.find_element(By.CSS_SELECTOR, "button.disable").click()
    WebDriverWait(browser, 20).until(_replaced(old))
    state = browser.find_element(By.CSS_SELECTOR, "#accounts tr[data-user='nurse.lead'] td.state").text
    assert state.startswith("disabled")
    browser.save_screenshot(str(ARTIFACTS / "accounts.png"))
    _click(browser, "nav-audit")
    entries = [
        (r.find_element(By.CSS_SELECTOR, "td.actor").text, r.find_element(By.CSS_SELECTOR, "td.action").text)
        for r in browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    ]
    assert entries[0] == ("admin", "account disabled") and ("admin", "account created") in entries
    assert ("admin", "log-in refused") in entries  # the wrong password of the first test
    browser.save_screenshot(str(ARTIFACTS / "audit.png"))
    # Filtered by what: only the refused log-ins, counted.
    Select(browser.find_element(By.ID, "a-action")).select_by_value("log-in refused")
    _click(browser, "a-apply")
    actions = {r.text for r in browser.find_elements(By.CSS_SELECTOR, "#audit tbody td.action")}
    assert actions == {"log-in refused"}
    shown = len(entries_of(browser))
    assert browser.find_element(By.ID, "audit-count").text.endswith(f"{shown} entr{'y' if shown == 1 else 'ies'}.")


def test_a_dp_hub_explains_its_noise_on_the_page(browser: WebDriver, tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    config = hub_config(tmp_path, broker.port, web_port=free_port(), mode="dp", epsilon=1.0)
    try:
        with running_hub(config, web=True) as running:
            engine = running.ingest.engine
            add_user(engine, "admin", ADMIN_PASSWORD, "admin")
            for seq in range(1, 201):
                body = summary("north", "r1", "edge-n1", seq, str(uuid.uuid4()), "2026-10-06", windows=2)
                assert running.ingest.handle("clinic/v1/north/r1/summary", body.model_dump_json().encode()).result == (
                    "stored"
                )
            assert release_due(engine, configured_policy(engine, config.privacy), dt.date(2026, 11, 5))
            browser.delete_all_cookies()
            _login(browser, running.url, "admin", ADMIN_PASSWORD)
            wait_for(lambda: browser.find_elements(By.ID, "kpi-online"), what="the overview")
            note = browser.find_element(By.ID, "dp-note").text
            assert "ε = 1.0 per released period" in note and "2.0 in all" in note  # week and month
            assert "within ±18 sessions" in note and "within ±18 points" in note
            sessions = _rows(browser)[0][3]
            assert abs(sessions - 200) < 60  # noisy, near the truth
            assert "differentially private" in browser.find_element(By.TAG_NAME, "footer").text
            browser.save_screenshot(str(ARTIFACTS / "overview-dp.png"))
    finally:
        broker.stop()
