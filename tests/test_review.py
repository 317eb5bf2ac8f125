"""The therapists' review page, end to end: a real session on the demo clip (every channel, every
window explained, transcripts kept), the real ``clinic-edge review`` service over TLS, and headless
Chromium: log in, the list, the session with its interactive timeline, the PDF, the FHIR bundle
(validated), another therapist's session refused, erasure with its confirmation, and the admin's
access log. The shell's side (``session list|export-fhir|erase``) runs the real CLI. Screenshots go
to build/test-artifacts/review/."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fhir.resources.R4B.bundle import Bundle
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from contract.classes import CLASSES
from edge.config import load_config
from edge.control.commands import Consent
from edge.review.fhir import HEART_RATE, LOINC, validated
from edge.runtime import Appliance
from edge.store import Store
from tests.conftest import (
    CONSENT,
    EVERYTHING_KEPT,
    ROOT,
    Pki,
    free_port,
    headless_chromium,
    make_pki,
    review_service,
    write_config,
)

ARTIFACTS = ROOT / "build" / "test-artifacts" / "review"
PASSWORD = "correct horse battery staple"
EDGE = (sys.executable, "-m", "edge")
ACCOUNTS = (
    ("staff-test", "therapist"),
    ("staff-other", "therapist"),
    ("clinic-admin", "admin"),
    ("tech-7", "technician"),
)


@dataclass(frozen=True)
class Room:
    config: Path
    db: Path
    session: str  # staff-test's, with windows, moments and transcripts
    other: str  # staff-other's
    spare: str  # staff-other's, erased from the shell
    pki: Pki
    port: int


def _ended_session(db: Path, recorded_by: str) -> str:
    store = Store(db, migrate_schema=False)
    try:
        sid = store.start_session(
            site="test-site",
            room="room-a",
            device_id="edge-test",
            source_kind="test",
            backend="onnxruntime",
            model_sha256="0" * 64,
            consent=Consent(method="verbal", recorded_by=recorded_by),
        )
        store.end_session(sid, frames=0, frames_dropped=0)
    finally:
        store.close()
    return sid


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory, default_pack: Path, demo_clip: Path) -> Room:
    folder = tmp_path_factory.mktemp("review")
    pki = make_pki(folder / "pki", [])  # its broker certificate names 127.0.0.1: the page's here
    port = free_port()
    config_path = write_config(
        folder / "room.toml",
        face_model=folder / "unused.onnx",
        state_dir=folder / "state",
        mqtt_port=None,
        pack=default_pack,
        extra=(
            EVERYTHING_KEPT + f'[review]\nport = {port}\n[review.tls]\ncert_file = "{pki.folder / "broker.crt"}"\n'
            f'key_file = "{pki.folder / "broker.key"}"\n'
        ),
    )
    config = load_config(config_path)
    report = Appliance(config, demo_clip.as_uri()).run(consent=CONSENT)
    db = config.storage.state_dir / config.storage.database
    other, spare = _ended_session(db, "staff-other"), _ended_session(db, "Staff-Other")
    for name, role in ACCOUNTS:
        subprocess.run(
            [*EDGE, "review-account", name, "--config", str(config_path), "--role", role, "--password-stdin"],
            input=PASSWORD + "\n",
            text=True,
            capture_output=True,
            check=True,
            timeout=60,
        )
    return Room(config_path, db, report.session_id, other, spare, pki, port)


@pytest.fixture(scope="module")
def page(room: Room) -> Iterator[str]:
    """``clinic-edge review`` running; its base URL once it says it listens."""
    with review_service(room.config):
        yield f"https://127.0.0.1:{room.port}"


def _wait_for_file(folder: Path, suffix: str, timeout: float = 60.0) -> Path:
    """The downloaded file, once Chromium finished writing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if not p.name.endswith(".crdownload")]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)
    pytest.fail(f"no {suffix} was downloaded into {folder}: {sorted(p.name for p in folder.iterdir())}")


def _submit_and_wait_saved(browser: Any, button: Any) -> None:
    """Click a form's button and wait for the next page (the old one gone) to say it was saved."""
    button.click()
    WebDriverWait(browser, 30).until(staleness_of(button))
    WebDriverWait(browser, 30).until(lambda b: "your judgement is saved" in b.find_element(By.ID, "notice").text)


def _log_in(browser: Any, base: str, name: str) -> None:
    browser.get(base + "/")
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "login-form"))
    browser.find_element(By.ID, "username").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "who"))


def _check_bundle(data: dict[str, Any], session_id: str) -> None:
    """Valid by the FHIR models and by FHIR's fixed codes; what a record system needs is there."""
    Bundle.model_validate(data)
    validated(data)
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    assert data["type"] == "transaction" and all(e["request"]["method"] == "POST" for e in data["entry"])
    assert kinds.count("Device") == 1 and kinds.count("DocumentReference") == 1
    observations = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
    names = {o["identifier"][0]["value"].split("/", 1)[1] for o in observations}
    assert {"fused", "channel/face", "channel/voice", "channel/words", "channel/pulse"} <= names
    moments = [n for n in names if n.startswith("disparity/")]
    assert moments, "every disparity moment is an Observation"
    pulse = next(o for o in observations if o["identifier"][0]["value"].endswith("/channel/pulse"))
    assert pulse["code"]["coding"][0] == {"system": LOINC, "code": HEART_RATE[0], "display": HEART_RATE[1]}
    assert all(o["status"] == "final" and o["note"][0]["text"].startswith("Not a diagnosis") for o in observations)
    (document,) = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "DocumentReference"]
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["data"])[:5] == b"%PDF-"
    assert document["context"]["related"][0]["identifier"]["value"] == CONSENT.reference
    assert data["identifier"]["value"] == session_id
    assert "sister" not in json.dumps(data).lower(), "words never go into the record, even where kept"


def _run(room: Room, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args, "--config", str(room.config)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=180,
    )


def test_the_page_speaks_tls_with_the_configured_certificate_and_its_headers(room: Room, page: str) -> None:
    context = ssl.create_default_context(cafile=str(room.pki.ca))  # verifies the chain and 127.0.0.1
    with urllib.request.urlopen(page + "/healthz", context=context, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    with urllib.request.urlopen(page + "/", context=context, timeout=30) as response:
        assert response.url.startswith(page + "/login")  # nothing without logging in
    try:  # plain HTTP gets nothing
        urllib.request.urlopen(page.replace("https", "http") + "/healthz", timeout=30)
        served = True
    except (OSError, http.client.HTTPException):
        served = False
    assert not served


def test_a_forged_forwarded_for_is_not_believed_on_loopback(room: Room, page: str) -> None:
    """The page runs on loopback with no proxy configured: a log-in that claims another address in
    X-Forwarded-For is logged, and throttled, as this machine's."""
    context = ssl.create_default_context(cafile=str(room.pki.ca))
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor()
    )
    with opener.open(page + "/login", timeout=30) as response:
        token = re.search(r'name="csrf" value="([^"]+)"', response.read().decode())
    assert token is not None
    form = urllib.parse.urlencode({"username": "nobody-forged", "password": "not it", "csrf": token[1]}).encode()
    request = urllib.request.Request(page + "/login", data=form, headers={"X-Forwarded-For": "203.0.113.9"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 401
    log = sqlite3.connect(room.db.with_name("review.db"))
    (address,) = log.execute("SELECT address FROM audit_log WHERE actor = 'nobody-forged'").fetchone()
    log.close()
    assert address == "127.0.0.1"


def test_the_shell_lists_exports_and_erases(room: Room, tmp_path: Path) -> None:
    listed = _run(room, "session", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {room.session, room.other, room.spare}
    mine = rows[room.session]
    assert mine["consent_method"] == "written" and mine["disparity_moments"] >= 1 and 0 < mine["coverage"] <= 1
    only = _run(room, "session", "list", "--json", "--recorded-by", "staff-other")
    assert {r["id"] for r in json.loads(only.stdout)} == {room.other, room.spare}  # case does not matter

    out = tmp_path / "bundle.json"
    exported = _run(room, "session", "export-fhir", room.session, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    _check_bundle(json.loads(out.read_text(encoding="utf-8")), room.session)
    no_target = _run(room, "session", "export-fhir", room.session)
    assert no_target.returncode == 2 and "--out FILE.json, --post" in no_target.stderr

    kept = _run(room, "session", "erase", room.spare, stdin="no\n")
    assert kept.returncode == 1 and "not erased" in kept.stdout
    erased = _run(room, "session", "erase", room.spare, stdin=room.spare[:8] + "\n")
    assert erased.returncode == 0, erased.stderr
    gone = _run(room, "session", "erase", room.spare, "--yes")
    assert gone.returncode == 3 and f"no session {room.spare}" in gone.stderr
    log = sqlite3.connect(room.db.with_name("review.db"))
    actions = [(a, t) for a, t in log.execute("SELECT action, target FROM audit_log WHERE actor LIKE 'shell (%'")]
    assert ("fhir exported", room.session) in actions and ("session erased", room.spare) in actions
    assert ("access refused", room.spare) in actions  # the second erase, of a session no longer there


class _RecordServer(http.server.BaseHTTPRequestHandler):
    """The clinic record's FHIR endpoint as far as filing needs one: it takes a transaction bundle
    with the right bearer token (201 and a Location) and refuses anything else (401)."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.headers.get("Authorization", ""), body))
        if self.headers.get("Authorization") != "Bearer clinic-token-0042":
            self.send_response(401)
            self.end_headers()
            return
        answer = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": []}).encode()
        self.send_response(201)
        self.send_header("Location", "Bundle/filed-1")
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: object) -> None:
        return


def test_filing_posts_the_bundle_to_the_clinic_record_with_its_credentials(room: Room, tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "fhir-token"
    try:
        for secret, expected_rc in (("wrong-token", 2), ("clinic-token-0042", 0)):  # 2: a person must act
            token.write_text(secret + "\n", encoding="utf-8")
            config = tmp_path / "room-fhir.toml"
            config.write_text(
                room.config.read_text(encoding="utf-8")
                + f'[review.fhir]\nurl = "http://127.0.0.1:{server.server_port}/fhir"\ntoken_file = "{token}"\n',
                encoding="utf-8",
            )
            filed = subprocess.run(
                [*EDGE, "session", "export-fhir", room.session, "--post", "--config", str(config)],
                text=True,
                capture_output=True,
                timeout=180,
            )
            assert filed.returncode == expected_rc, filed.stderr
        assert "HTTP 201 Bundle/filed-1" in filed.stdout
    finally:
        server.shutdown()
        server.server_close()
    (refused, accepted) = _RecordServer.received
    assert refused[0] == "Bearer wrong-token" and accepted[0] == "Bearer clinic-token-0042"
    _check_bundle(accepted[1], room.session)
    log = sqlite3.connect(room.db.with_name("review.db"))
    outcomes = [a for (a,) in log.execute("SELECT action FROM audit_log WHERE target = ?", [room.session])]
    assert "fhir filing failed" in outcomes and "fhir filed" in outcomes


def test_a_therapist_marks_what_the_room_got_wrong_and_evaluate_scores_it(
    room: Room, page: str, tmp_path: Path
) -> None:
    """On the session page: click a window, say the client seemed sad, rate the session; the judgement
    is stored beside the windows and logged, and ``evaluate --feedback`` scores the room against it.
    (The erasure test below then checks the judgement goes with its session.)"""
    with headless_chromium("1300,2000", trust_any_certificate=True) as browser:
        _log_in(browser, page, "staff-test")
        browser.get(f"{page}/sessions/{room.session}")
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window"))
        fused_row = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window[data-row='fused']")
        fused_row[-1].click()  # windows overlap (2.5 s every 1 s): the last one is on top
        form = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "judge-window"))
        form.find_element(By.CSS_SELECTOR, "select.judge-label").send_keys("sad")
        browser.save_screenshot(str(ARTIFACTS / "judge-window.png"))
        _submit_and_wait_saved(browser, form.find_element(By.CSS_SELECTOR, "button.judge-other"))
        moment = WebDriverWait(browser, 30).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.moment")
        )[0]
        ActionChains(browser).move_to_element(moment).click().perform()
        form = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "judge-moment"))
        _submit_and_wait_saved(browser, form.find_element(By.CSS_SELECTOR, "button.judge-none"))  # not a mismatch
        browser.find_element(By.ID, "rating").send_keys("4")
        _submit_and_wait_saved(browser, browser.find_element(By.ID, "rate"))
    db = sqlite3.connect(room.db)
    rows = db.execute(
        "SELECT kind, verdict, label, rating, judged_by FROM judgements WHERE session_id = ?", [room.session]
    )
    assert sorted(rows.fetchall(), key=str) == sorted(
        [
            ("window", "other", "sad", None, "staff-test"),
            ("moment", "disagree", None, None, "staff-test"),
            ("session", "rating", None, 4, "staff-test"),
        ],
        key=str,
    )
    db.close()
    log = sqlite3.connect(room.db.with_name("review.db"))
    judged = [d for (d,) in log.execute("SELECT detail FROM audit_log WHERE action = 'judgement given'")]
    assert judged == ["window other sad", "moment disagree", "session rating 4/5"]
    out = tmp_path / "feedback"
    scored = subprocess.run(
        [*EDGE, "evaluate", "--feedback", "--config", str(room.config), "--out", str(out)],
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert scored.returncode == 0, scored.stderr
    body = json.loads((out / "evaluation.json").read_text())
    # The window is scored as a class; the moment, judged no mismatch, as a congruent clip of the disparity rule.
    assert body["corpora"] == {"feedback": 2} and body["predictors"]["fused"]["n_clips"] == 1
    assert body["disparity"]["congruent_clips"] == 1 and body["disparity"]["congruent_clips_with_a_moment"] == 1
    sad = CLASSES.index("sad")
    assert sum(body["predictors"]["fused"]["confusion"][sad]) + body["predictors"]["fused"]["abstained"][sad] == 1


def test_a_therapist_reviews_files_and_erases_a_session_in_chromium(room: Room, page: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with headless_chromium("1300,2000", downloads=downloads, trust_any_certificate=True) as browser:
        _log_in(browser, page, "staff-test")
        rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
        assert [r.get_attribute("data-session") for r in rows] == [room.session], "only the sessions I recorded"
        cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
        assert cells[2].startswith("consent-0001"), "the clinic's own key to the session is listed"
        assert cells[4] == "written" and cells[5].endswith("%") and int(cells[6]) >= 1
        browser.save_screenshot(str(ARTIFACTS / "sessions.png"))

        rows[0].find_element(By.CLASS_NAME, "open").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-chart svg"))
        for section in ("not-a-diagnosis", "summary", "disparity", "limits"):
            assert browser.find_element(By.ID, section).is_displayed(), section
        assert not browser.find_element(By.ID, "contributions").is_displayed(), "model internals are folded away"
        browser.find_element(By.CSS_SELECTOR, "#technical summary").click()
        for section in ("contributions", "coverage"):
            assert browser.find_element(By.ID, section).is_displayed(), section
        windows = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.window")
        assert len(windows) >= 4 * 4  # every window in the fused row and each channel's
        ActionChains(browser).move_to_element(windows[len(windows) // 2]).perform()
        detail = browser.find_element(By.ID, "window-detail").text
        assert "face:" in detail and "voice:" in detail and "words:" in detail
        said = []
        for moment in browser.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.moment"):
            ActionChains(browser).move_to_element(moment).click().perform()
            said.append(browser.find_element(By.ID, "moment-said").text)
        assert len(said) >= 1 and all(said)
        assert any("sister" in s for s in said), "a disparity moment shows what was said (transcripts are kept)"
        browser.save_screenshot(str(ARTIFACTS / "session.png"))

        browser.find_element(By.ID, "download-pdf").click()
        pdf = _wait_for_file(downloads, ".pdf").read_bytes()
        assert pdf[:5] == b"%PDF-"
        box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
        assert box and abs(float(box[1]) - 595.3) < 1 and abs(float(box[2]) - 841.9) < 1, "A4 (review.paper)"
        browser.find_element(By.ID, "export-fhir").click()
        _check_bundle(json.loads(_wait_for_file(downloads, ".fhir.json").read_text(encoding="utf-8")), room.session)

        browser.get(f"{page}/sessions/{room.other}")  # another therapist's session
        assert "is not among those you may open" in browser.find_element(By.ID, "error-message").text
        browser.save_screenshot(str(ARTIFACTS / "another-therapists-session.png"))
        browser.get(f"{page}/access")
        assert browser.find_element(By.ID, "error-message").text == "Only administrators may open this page."

        browser.get(f"{page}/sessions/{room.session}")
        browser.find_element(By.ID, "erase").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "erase-form"))
        copies = browser.find_element(By.ID, "copies").text  # what left the appliance, from the access log
        assert "report downloaded by staff-test" in copies and "fhir exported by staff-test" in copies
        assert "not publish to a hub" in browser.find_element(By.ID, "hub-told").text  # this room has no MQTT
        browser.find_element(By.ID, "confirm").send_keys("whoops")
        browser.find_element(By.ID, "erase-confirm").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "erase-error"))
        browser.save_screenshot(str(ARTIFACTS / "erase-confirmation.png"))
        browser.find_element(By.ID, "confirm").send_keys(room.session[:8])
        browser.find_element(By.ID, "erase-confirm").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "notice"))
        assert "was erased" in browser.find_element(By.ID, "notice").text
        assert browser.find_elements(By.ID, "no-sessions")
        browser.save_screenshot(str(ARTIFACTS / "erased.png"))

    db = sqlite3.connect(room.db)
    for table in ("windows", "transcripts", "events", "reports", "judgements"):
        count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", [room.session]).fetchone()[0]
        assert count == 0, table
    assert db.execute("SELECT COUNT(*) FROM sessions WHERE id = ?", [room.session]).fetchone()[0] == 0
    db.close()
    reports = room.db.parent / "reports"
    assert not [p for p in reports.iterdir() if room.session in p.name], "its report files are deleted too"
    wal = room.db.with_name(room.db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "no copy of the erased pages stays in the journal"


def test_the_admin_sees_every_session_and_the_access_log(room: Room, page: str) -> None:
    with headless_chromium("1300,1200", trust_any_certificate=True) as browser:
        _log_in(browser, page, "clinic-admin")
        rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
        assert [r.get_attribute("data-session") for r in rows] == [room.other]  # the others were erased
        browser.find_element(By.ID, "nav-access").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "access-log"))
        entries = [
            [c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in browser.find_elements(By.CSS_SELECTOR, "#access-log tbody tr")
        ]
        seen = {(e[1], e[2], e[3]) for e in entries}
        for action in ("session viewed", "report downloaded", "fhir exported", "session erased"):
            assert ("staff-test", action, room.session) in seen, action
        assert ("staff-test", "access refused", room.other) in seen
        assert all(e[0][:4].isdigit() for e in entries), "when: every entry is dated"
        browser.save_screenshot(str(ARTIFACTS / "access-log.png"))
    assert room.db.with_name("review.db").stat().st_mode & 0o777 == 0o600


def test_a_technician_sees_no_session(room: Room, page: str) -> None:
    """Technicians set rooms up (the setup page); the review page shows them nothing."""
    with headless_chromium("1300,900", trust_any_certificate=True) as browser:
        browser.get(page + "/")
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "login-form"))
        browser.find_element(By.ID, "username").send_keys("tech-7")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()
        WebDriverWait(browser, 30).until(lambda b: "setup page" in b.page_source)
        assert not browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
        assert room.session not in browser.page_source
