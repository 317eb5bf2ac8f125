"""The technician's setup page, in Chromium against the real service on a real clip: the picture
updates, the faces and the region are drawn, a region dragged on the picture changes the checks and
ends up in the written profile, a session that starts ends the preview at once, and a request without
a log-in gets no picture and no check."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.capture.claim import session_claim
from tests.conftest import headless_chromium, make_scene, serving, write_config

EDGE = [sys.executable, "-m", "edge"]
PASSWORD = "a long technician password"


@pytest.fixture(scope="module")
def sitting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ninety seconds of a client sitting in the chair (a real photograph), speaking a little."""
    scene = make_scene()
    out = tmp_path_factory.mktemp("clip") / "sitting.mkv"
    sentence = "Hello, I am sitting in the chair and talking about my week to the camera."
    said = [(1.0 + 5.0 * i, sentence) for i in range(17)]
    return scene.compose(out, [scene.Shot(0.0, "astronaut")], said, 90.0)  # type: ignore[no-any-return]


@pytest.fixture
def room(tmp_path: Path, default_pack: Path) -> Path:
    path = write_config(
        tmp_path / "room.toml",
        face_model=Path(),
        state_dir=tmp_path / "state",
        mqtt_port=None,
        pack=default_pack,
        extra="[setup]\nport = 0\n",
    )
    # The photograph's face is big enough at the room's default width (at the tests' 320 px it is not).
    path.write_text(path.read_text(encoding="utf-8").replace("width = 320", "width = 640"), encoding="utf-8")
    for name, role in (("tech-7", "technician"), ("ther-1", "therapist")):
        subprocess.run(
            [*EDGE, "review-account", name, "--config", str(path), "--role", role, "--password-stdin"],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
    return path


@contextlib.contextmanager
def setup_service(config: Path, source: Path) -> Iterator[str]:
    with serving(["setup", "--config", str(config), "--source", source.as_uri()], "setup page on ") as (base, _lines):
        yield base


def _wait(driver: Any, condition: Any, what: str, timeout: float = 90) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=what)


def _log_in(driver: Any, base: str, name: str) -> None:
    driver.get(base + "/login")
    driver.find_element("id", "username").send_keys(name)
    driver.find_element("id", "password").send_keys(PASSWORD)
    driver.find_element("id", "login-submit").click()


def _drag(driver: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    """Drag on the picture from (x0, y0) to (x1, y1), in fractions of it."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "overlay")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    w, h = canvas.size["width"], canvas.size["height"]
    start = (round((x0 - 0.5) * w), round((y0 - 0.5) * h))
    ActionChains(driver).move_to_element_with_offset(canvas, *start).click_and_hold().move_by_offset(
        round((x1 - x0) * w), round((y1 - y0) * h)
    ).release().perform()


def _region(driver: Any) -> list[float]:
    """The client region the page shows (x, y, width, height)."""
    text = driver.find_element("id", "region-text").get_attribute("data-region") or "0,0,1,1"
    return [float(v) for v in text.split(",")]


def _status(driver: Any, check: str) -> str | None:
    """A check's state as the page shows it (read in one step: the rows are redrawn every picture)."""
    script = (
        "const r = document.querySelector(`#checks tr[data-check='${arguments[0]}']`); return r && r.dataset.status;"
    )
    status: str | None = driver.execute_script(script, check)
    return status


def test_the_technician_sets_the_room_up_on_the_page(room: Path, sitting: Path) -> None:
    state_dir = room.parent / "state"
    with setup_service(room, sitting) as base:
        # Nothing without a log-in: no picture, no check.
        for path in ("/preview.jpg", "/state.json"):
            request = urllib.request.Request(base + path)
            opener = urllib.request.build_opener(NoRedirect())
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open(request, timeout=10)
            assert refused.value.code == 303 and refused.value.headers["Location"].startswith("/login")
            assert not refused.value.read().startswith(b"\xff\xd8"), "no JPEG"

        with headless_chromium() as driver:
            _log_in(driver, base, "tech-7")
            _wait(driver, lambda d: d.find_elements("css selector", "#doctor .finding"), "doctor's findings")
            # The picture updates.
            _wait(
                driver, lambda d: int(d.find_element("id", "status").get_attribute("data-frames") or 0) >= 3, "frames"
            )
            first = int(driver.find_element("id", "status").get_attribute("data-frames"))
            _wait(
                driver,
                lambda d: int(d.find_element("id", "status").get_attribute("data-frames")) > first + 2,
                "the picture updates",
            )
            assert driver.execute_script("return document.getElementById('picture').naturalWidth") == 480
            _wait(driver, lambda d: _status(d, "face_found") == "pass", "the face found in the whole frame")
            faces = driver.execute_script("return fetch('/state.json').then(r => r.json()).then(s => s.faces)")
            analysed = [f for f in faces if f["analysed"]]
            assert len(analysed) == 1 and len(analysed[0]["mesh"]) == 156, "the analysed face with its mesh"
            # A region drawn away from the face: the face is no longer found in it.
            _drag(driver, 0.75, 0.05, 0.98, 0.95)
            _wait(driver, lambda d: abs(_region(d)[0] - 0.75) < 0.02, "the drawn region")
            _wait(driver, lambda d: _status(d, "face_found") == "fail", "no face in the drawn region")
            assert "Fix these first" in driver.find_element("id", "verdict").text
            assert not driver.find_element("id", "write").is_enabled()
            # The region drawn around the chair: ready, and written.
            _drag(driver, 0.05, 0.02, 0.8, 0.98)
            _wait(driver, lambda d: _status(d, "face_found") == "pass", "the face in the drawn region")
            _wait(driver, lambda d: d.find_element("id", "write").is_enabled(), "ready to write")
            assert driver.find_element("id", "verdict").text.startswith("Ready")
            driver.execute_script("document.getElementById('live').scrollIntoView()")
            driver.save_screenshot(str(_artifacts() / "setup-live.png"))
            driver.find_element("id", "note").send_keys("camera above the door")
            driver.find_element("id", "write").click()
            _wait(driver, lambda d: d.find_element("id", "written").text.startswith("Written"), "written")
            profile = json.loads((room.parent / "room-profile.json").read_text(encoding="utf-8"))
            assert profile["technician"] == "tech-7" and profile["note"] == "camera above the door"
            region = profile["client_region"]
            assert region["x"] == pytest.approx(0.05, abs=0.03) and region["w"] == pytest.approx(0.75, abs=0.03)
            assert profile["preview_saved"] is False
            # The calibration report: the picture blurred unless a photo is ticked.
            driver.find_element("id", "report").click()
            _wait(driver, lambda d: d.find_element("id", "report-link").is_displayed(), "the report")
            written = next((state_dir / "reports").glob("calibration-*.html"))
            assert written.stat().st_mode & 0o777 == 0o600
            assert "blurred</b> past recognition" in written.read_text(encoding="utf-8")
            # A staff voice enrolled from the page: only its embedding is stored.
            driver.find_element("id", "staff-id").send_keys("staff-9")
            driver.find_element("id", "staff-consent").send_keys("c-9")
            driver.find_element("id", "record").click()
            _wait(
                driver,
                lambda d: d.find_element("id", "enrolment").get_attribute("data-status") in ("stored", "refused"),
                "the enrolment",
            )
            assert driver.find_element("id", "enrolment").get_attribute("data-status") == "stored", driver.find_element(
                "id", "enrolment"
            ).text
            stored = list((state_dir / "staff-voices").iterdir())
            assert [p.name for p in stored] == ["staff-9.json"]
            voice = json.loads(stored[0].read_text(encoding="utf-8"))
            assert voice["consent"] == "c-9" and len(voice["embedding"]) == 256 and voice["speech_s"] >= 10
            # Or from a recording (a WAV file): its embedding only, the file never kept.
            twice = room.parent / "jfk-twice.wav"
            _twice(twice)
            driver.find_element("id", "upload-staff-id").send_keys("staff-10")
            driver.find_element("id", "upload-consent").send_keys("c-10")
            driver.find_element("id", "upload-wav").send_keys(str(twice))
            driver.find_element("id", "upload").click()
            _wait(
                driver,
                lambda d: (
                    "staff-10" in d.find_element("id", "enrolment").text
                    or d.find_element("id", "enrolment").get_attribute("data-status") == "refused"
                ),
                "the upload",
            )
            assert driver.find_element("id", "enrolment").get_attribute("data-status") == "stored", driver.find_element(
                "id", "enrolment"
            ).text
            assert sorted(p.name for p in (state_dir / "staff-voices").iterdir()) == ["staff-10.json", "staff-9.json"]
            # A session starts: the preview ends at once, and the page says why.
            with session_claim(state_dir):
                _wait(
                    driver,
                    lambda d: "a session started" in d.find_element("id", "status").text,
                    "the preview ended for the session",
                )
                assert driver.execute_script("return fetch('/preview.jpg').then(r => r.status)") == 409
            driver.save_screenshot(str(_artifacts() / "setup-page.png"))
        # A therapist may not use the page.
        with headless_chromium() as driver:
            _log_in(driver, base, "ther-1")
            assert "technicians and administrators" in driver.page_source
    assert not list(state_dir.rglob("*.jpg")) and not list(state_dir.rglob("*.png")), "no picture was written"
    assert not list(state_dir.rglob("*.wav")), "no recording was written"


def _twice(out: Path) -> None:
    """jfk.wav twice over (22 s, enough speech to enrol)."""
    import wave

    with wave.open(str(Path(__file__).parent / "data" / "jfk.wav"), "rb") as f:
        params, frames = f.getparams(), f.readframes(f.getnframes())
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(frames + frames)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _artifacts() -> Path:
    folder = Path(__file__).resolve().parents[1] / "build" / "test-artifacts" / "setup"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
