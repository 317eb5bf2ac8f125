"""The administrators' trends at real scale, in Chromium at a laptop's and a phone's width: eleven weeks
from five rooms on two sites, published over MQTT by simulated appliances, ingested and released by
the hub's real parts. One room has too few sessions in some weeks: its cells are held back, marked
in place, and leave a gap in its own line instead of moving a pooled bar; every site and room is
its own series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from conftest import ROOT, free_port, headless_chromium, start_broker
from hub_helpers import Room, hub_config, running_hub, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from hub.release import policy_for, release_due
from hub.users import add_user

ARTIFACTS = ROOT / "build" / "test-artifacts" / "hub-scale"
PASSWORD = "correct horse battery"
FIRST_MONDAY = dt.date(2026, 9, 7)
WEEKS = 11
PLACES = ("north/r1", "north/r2", "north/r3", "south/r1", "south/r2")
LABELS = {"north/r1": "happy", "north/r2": "sad", "north/r3": "calm", "south/r1": "calm", "south/r2": "neutral"}


def _sessions(place: str, week: int) -> int:
    """Sessions a room holds in a week: north/r2 falls below k=11 every third week."""
    if place == "north/r2" and week % 3 == 1:
        return 4
    return 11 + (week + len(place)) % 4


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hub-scale")
    broker = start_broker(tmp)
    config = hub_config(tmp, broker.port, web_port=free_port(), finest_grain="week")
    rooms = {p: Room("127.0.0.1", broker.port, *p.split("/"), f"edge-{p.replace('/', '-')}") for p in PLACES}
    try:
        with running_hub(config, web=True) as running:
            add_user(running.ingest.engine, "admin", PASSWORD, "admin")
            total = 0
            for week in range(WEEKS):
                day = (FIRST_MONDAY + dt.timedelta(weeks=week, days=1)).isoformat()
                for place, room in rooms.items():
                    for _ in range(_sessions(place, week)):
                        room.session(day, windows=1, label=LABELS[place])
                        total += 1
            wait_for(
                lambda: running.ingest.metrics.summaries.labels("stored")._value.get() == total,
                what=f"{total} summaries",
                timeout=300,
            )
            engine = running.ingest.engine
            release_due(engine, policy_for(engine, "week", config.privacy.release_delay_days))
            yield running.url
    finally:
        for room in rooms.values():
            room.close()
        broker.stop()


def _log_in(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    driver.find_element(By.ID, "username").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "kpi-online"), what="the overview")


def _chart(driver: WebDriver) -> tuple[str, list[str], list[list[float | None]]]:
    ready = "return document.getElementById('chart').dataset.ready"
    wait_for(lambda: driver.execute_script(ready) == "1", what="the chart")
    kind, names, values = driver.execute_script(
        "const c = window.clinicChart; return [c.config.type, c.data.datasets.map((d) => d.label), "
        "c.data.datasets.map((d) => d.data)];"
    )
    return kind, names, values


@pytest.mark.parametrize("width", ["laptop", "phone"])
def test_eleven_weeks_of_five_rooms_one_series_each_with_held_cells_marked(hub: str, width: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium("1366,768") as driver:
        if width == "phone":
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
            )
        _log_in(driver, hub)
        assert "held back for privacy" in driver.find_element(By.ID, "held-back").text  # the overview counts them
        driver.get(hub + "/trends?level=room&grain=week")
        kind, names, values = _chart(driver)
        assert kind == "line" and names == sorted(p.replace("/", " / ") for p in PLACES), "one series per room"
        assert all(len(v) == WEEKS for v in values)
        gaps = [w for w, v in enumerate(values[names.index("north / r2")]) if v is None]
        assert gaps == [w for w in range(WEEKS) if w % 3 == 1], "a held-back week is a gap in its own line"
        held = {
            (r.get_attribute("data-period"), r.get_attribute("data-room"))
            for r in driver.find_elements(By.CSS_SELECTOR, "#cells tbody tr.held")
            if r.get_attribute("data-site") == "north"
        }
        for w in range(WEEKS):
            if w % 3 == 1:
                assert ((FIRST_MONDAY + dt.timedelta(weeks=w)).isoformat(), "r2") in held
        assert "w/c 07 Sep 2026" in driver.find_element(By.ID, "cells").text
        driver.save_screenshot(str(ARTIFACTS / f"trends-rooms-{width}.png"))
        Select(driver.find_element(By.ID, "chart-class")).select_by_value("sad")
        title = driver.execute_script("return window.clinicChart.options.scales.y.title.text")
        assert title.endswith("sad")
        canvas = driver.find_element(By.ID, "chart")
        assert canvas.size["height"] > 150 and canvas.size["width"] > 300, "the plot keeps its area"
        if width == "phone":
            scroll, inner = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert inner == 390 and scroll <= inner, f"the page fits a phone ({scroll} px)"
        driver.get(hub + "/trends?level=site&grain=week")
        kind, names, _ = _chart(driver)
        assert (kind, names) == ("line", ["north", "south"])


def test_hub_errors_are_pages_with_a_way_back(hub: str) -> None:
    with headless_chromium("1366,768") as driver:
        _log_in(driver, hub)
        driver.get(hub + "/trends?level=galaxy")
        assert driver.find_element(By.ID, "error-title").text == "That request could not be used"
        assert driver.find_element(By.ID, "error-message").text == "Level must be one of clinic, site, room."
        assert driver.find_element(By.ID, "error-back").get_attribute("href") == hub + "/"
