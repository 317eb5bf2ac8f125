"""The review page (FastAPI, Jinja2; no script but the page's own, no style but its own).

(No ``from __future__ import annotations``: FastAPI reads the routes' dependency annotations at
definition time.) A therapist lists and opens the sessions whose consent they recorded; an admin
every session, and the access log. Opening a session shows its report with an interactive timeline;
from there the report's PDF, the FHIR bundle, filing it to the clinic's record and erasure (with a
confirmation). Every view, download, export, filing and erasure is written to the access log.

Log-ins are the common staff accounts (:mod:`clinic_common.auth`) with the hub's hardening
(:mod:`clinic_common.auth.web`): server-side sessions, a ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` over TLS), the session's token on every form that changes state, the log-in form's
double-submit token, throttling, and headers that allow only the page's own files.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from clinic_common.auth import Accounts
from clinic_common.auth.pages import LoginRequiredError, SignIn, SignInDep, add_security_headers, address, to_login
from clinic_common.auth.pages import router as sign_in_router
from clinic_common.auth.web import same_token
from clinic_common.error_pages import install_error_pages
from clinic_common.html import script_json
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.errors import EdgeError, StoreError
from edge.report.data import ReportError, load_session
from edge.report.files import write_report
from edge.report.render import REPORT_CSS, report_body
from edge.review.cache import BuiltPage, PageCache
from edge.review.erasure import erase_session
from edge.review.fhir import FhirError, session_bundle
from edge.review.fhir_client import post_bundle
from edge.review.listing import local_time, session_list
from edge.review.staff import (
    DOWNLOADED,
    EXPORTED,
    FILED,
    FILING_FAILED,
    JUDGED,
    REFUSED,
    SESSION_ACTIONS,
    VIEWED,
    AccessLog,
    Staff,
)
from edge.review.timeline import timeline_data
from edge.store import SessionRow, Store
from edge.store.judgements import Judgement, add_judgement

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "clinic_review"
LOGIN_COOKIE = "clinic_review_login"


@dataclass(frozen=True)
class Review:
    """What the routes share, on ``app.state.review``."""

    config: AppConfig
    accounts: Accounts
    log: AccessLog
    templates: Jinja2Templates
    registry: ChannelRegistry
    secure: bool  # served over TLS
    pages: PageCache = field(default_factory=PageCache)

    @property
    def database(self) -> Path:
        return self.config.storage.state_dir / self.config.storage.database

    def rows(self, staff: Staff, session_id: str | None = None) -> list[SessionRow]:
        if not self.database.is_file():
            return []
        store = Store(self.database, migrate_schema=False)
        try:
            return store.sessions(staff.recorded_by, session_id)
        finally:
            store.close()

    def built(self, row: SessionRow) -> BuiltPage:
        """The session page's report and timeline, built once per session as it stands."""

        def build() -> BuiltPage:
            try:
                data = load_session(self.database, row.id, self.registry)
            except ReportError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None
            timeline = timeline_data(data, self.registry, transcripts_kept=self.config.channels.words.store_transcript)
            report = report_body(data, self.config, self.registry, technical_open=False)
            return BuiltPage(report, script_json(timeline))

        return self.pages.get(row, build)

    def warm(self, newest: int = 3) -> None:
        """Build the newest sessions' pages ahead of the first view (the review service at start)."""
        for row in self.rows(Staff("warm", "admin"))[:newest]:
            if row.ended_at is not None:
                self.built(row)


def review(request: Request) -> Review:
    state: Review = request.app.state.review
    return state


ReviewDep = Annotated[Review, Depends(review)]


@dataclass(frozen=True)
class User:
    staff: Staff
    csrf: str

    @property
    def name(self) -> str:
        return self.staff.name

    @property
    def role(self) -> str:
        return self.staff.role


def user(request: Request, s: SignInDep) -> User:
    session = s.session(request)
    if session.role == "technician":
        raise HTTPException(
            status_code=403, detail="technicians set rooms up on the setup page; sessions are for therapists"
        )
    return User(Staff(session.username, "admin" if session.role == "admin" else "therapist"), session.csrf)


UserDep = Annotated[User, Depends(user)]


def admin(u: UserDep) -> User:
    if u.role != "admin":
        raise HTTPException(status_code=403, detail="administrators only")
    return u


AdminDep = Annotated[User, Depends(admin)]


def _fresh(form_token: str, u: User) -> None:
    if not same_token(form_token, u.csrf):
        raise HTTPException(status_code=403, detail="stale form: reload the page")


def page(request: Request, r: Review, name: str, u: User | None, status: int = 200, **context: Any) -> HTMLResponse:
    return r.templates.TemplateResponse(
        request, name, {"user": u, "room": r.config.room, **context}, status_code=status
    )


def opened(request: Request, r: Review, u: User, session_id: str, action: str) -> SessionRow:
    """The session if this person may open it (logged as ``action`` by the caller); 404 otherwise
    (a session of someone else's is not told apart from none), and the refusal logged."""
    rows = r.rows(Staff(u.name, "admin"), session_id) if len(session_id) <= 64 else []
    if not rows or not u.staff.may_open(rows[0]):
        r.log.record(u.name, REFUSED, session_id[:64], address(request), action)
        raise HTTPException(status_code=404, detail="no such session among those you may open")
    return rows[0]


public = APIRouter()


@public.get("/report.css")
def report_css() -> Response:
    # The report's look, kept to the report's part of the page.
    return Response(REPORT_CSS.replace("body {", "#report {", 1), media_type="text/css")


pages = APIRouter()


@pages.get("/", response_class=HTMLResponse)
def sessions_page(
    request: Request,
    r: ReviewDep,
    u: UserDep,
    notice: str = "",
    q: Annotated[str, Query(max_length=100)] = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    r.pages.keep_only(row.id for row in r.rows(Staff(u.name, "admin")))
    listing = session_list(r.rows(u.staff), q=q, start=start, end=end, page=number)
    return page(request, r, "sessions.html", u, listing=listing, notice=notice[:200])


@pages.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_page(request: Request, r: ReviewDep, u: UserDep, session_id: str, notice: str = "") -> HTMLResponse:
    row = opened(request, r, u, session_id, "view")
    built = r.built(row)
    r.log.record(u.name, VIEWED, session_id, address(request))
    return page(
        request,
        r,
        "session.html",
        u,
        row=row,
        report=built.report,
        timeline=built.timeline,
        filing=r.config.review.fhir is not None,
        notice=notice[:300],
    )


def _printed(r: Review, session_id: str) -> tuple[Path, Path | None]:
    try:
        written = write_report(r.config, session_id, registry=r.registry)
    except ReportError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    pdf = next((p for p in written if p.suffix == ".pdf"), None)
    return written[0], pdf


@pages.get("/sessions/{session_id}/report.pdf")
def report_pdf(request: Request, r: ReviewDep, u: UserDep, session_id: str) -> Response:
    row = opened(request, r, u, session_id, "download")
    _, pdf = _printed(r, session_id)
    if pdf is None:
        raise HTTPException(status_code=503, detail="no PDF printer on this appliance: install chromium")
    r.log.record(u.name, DOWNLOADED, session_id, address(request), "pdf")
    name = f"session-report-{row.started_at[:10]}-{session_id[:8]}.pdf"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(pdf.read_bytes(), media_type="application/pdf", headers=disposition)


def _bundle(r: Review, session_id: str) -> dict[str, Any]:
    try:
        return session_bundle(r.config, session_id, r.registry)
    except ReportError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except FhirError as exc:
        raise HTTPException(status_code=500, detail=str(exc)) from None


@pages.get("/sessions/{session_id}/fhir.json")
def fhir_export(request: Request, r: ReviewDep, u: UserDep, session_id: str) -> Response:
    row = opened(request, r, u, session_id, "fhir export")
    bundle = _bundle(r, session_id)
    r.log.record(u.name, EXPORTED, session_id, address(request), f"{len(bundle['entry'])} resources")
    name = f"session-{row.started_at[:10]}-{session_id[:8]}.fhir.json"
    return JSONResponse(
        bundle, media_type="application/fhir+json", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@pages.post("/sessions/{session_id}/file", response_model=None)
def fhir_file(request: Request, r: ReviewDep, u: UserDep, session_id: str, csrf: Annotated[str, Form()]) -> Response:
    _fresh(csrf, u)
    opened(request, r, u, session_id, "fhir filing")
    endpoint = r.config.review.fhir
    if endpoint is None:
        raise HTTPException(status_code=404, detail="no FHIR endpoint is configured ([review.fhir])")
    bundle = _bundle(r, session_id)
    try:
        filed = post_bundle(bundle, endpoint)
    except FhirError as exc:
        r.log.record(u.name, FILING_FAILED, session_id, address(request), str(exc))
        return RedirectResponse(f"/sessions/{session_id}?notice=Not filed: {exc}", status_code=303)
    r.log.record(u.name, FILED, session_id, address(request), f"HTTP {filed.status} {filed.location}")
    return RedirectResponse(f"/sessions/{session_id}?notice=Filed to the clinic record (HTTP {filed.status})", 303)


@pages.post("/sessions/{session_id}/feedback", response_model=None)
def feedback(
    request: Request,
    r: ReviewDep,
    u: UserDep,
    session_id: str,
    csrf: Annotated[str, Form()],
    kind: Annotated[str, Form(max_length=10)],
    verdict: Annotated[str, Form(max_length=10)],
    window: Annotated[int | None, Form()] = None,
    start: Annotated[float | None, Form()] = None,
    end: Annotated[float | None, Form()] = None,
    label: Annotated[str, Form(max_length=20)] = "",
    rating: Annotated[int | None, Form()] = None,
) -> Response:
    """A clinician's judgement of a window, a disparity moment or the session (stored beside the
    windows, erased with them; the access log says who judged what, not the judgement's words)."""
    _fresh(csrf, u)
    opened(request, r, u, session_id, "feedback")
    if kind not in ("window", "moment", "session") or verdict not in ("agree", "other", "rating", "disagree"):
        raise HTTPException(status_code=400, detail="a judgement is of a window, a moment or the session")
    judgement = Judgement(
        session_id=session_id,
        kind=kind,  # type: ignore[arg-type]
        verdict=verdict,  # type: ignore[arg-type]
        judged_by=u.name,
        window_index=window,
        start_s=start,
        end_s=end,
        label=label or None,
        rating=rating,
    )
    store = Store(r.config.storage.state_dir / r.config.storage.database, migrate_schema=False)
    try:
        add_judgement(store, judgement)
    except StoreError as exc:
        return RedirectResponse(f"/sessions/{session_id}?notice=Not saved: {exc}", status_code=303)
    finally:
        store.close()
    detail = f"{kind} {verdict}" + (f" {label}" if label else "") + (f" {rating}/5" if rating else "")
    r.log.record(u.name, JUDGED, session_id, address(request), detail)
    return RedirectResponse(f"/sessions/{session_id}?notice=Thank you: your judgement is saved", status_code=303)


@pages.get("/sessions/{session_id}/erase", response_class=HTMLResponse)
def erase_form(request: Request, r: ReviewDep, u: UserDep, session_id: str, error: str = "") -> HTMLResponse:
    row = opened(request, r, u, session_id, "erase form")
    return page(request, r, "erase.html", u, row=row, error=error[:300], **_erasure_facts(r, session_id))


def _erasure_facts(r: Review, session_id: str) -> dict[str, Any]:
    """What the erase page tells truthfully: copies that left (from the access log), and whether the
    hub will hear of the erasure now or when the room's waiting messages are sent."""
    waiting = 0
    if r.config.mqtt.enabled and r.database.is_file():
        store = Store(r.database, migrate_schema=False)
        try:
            waiting = store.pending_count()
        finally:
            store.close()
    return {"mqtt": r.config.mqtt.enabled, "copies": r.log.copies(session_id), "waiting": waiting}


@pages.post("/sessions/{session_id}/erase", response_model=None)
def erase(
    request: Request,
    r: ReviewDep,
    u: UserDep,
    session_id: str,
    csrf: Annotated[str, Form()],
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _fresh(csrf, u)
    row = opened(request, r, u, session_id, "erase")
    if confirm.strip().lower() != session_id[:8]:
        return page(
            request,
            r,
            "erase.html",
            u,
            400,
            row=row,
            error=f"Type {session_id[:8]} (the start of the session's id) to erase it.",
            **_erasure_facts(r, session_id),
        )
    r.pages.drop(session_id)
    try:
        erase_session(r.config, session_id, u.name, address(request), r.log)
    except StoreError as exc:
        return page(request, r, "erase.html", u, 409, row=row, error=str(exc), **_erasure_facts(r, session_id))
    when = local_time(row.started_at).strftime("%d %b %Y %H:%M")
    told = ""
    if r.config.mqtt.enabled:
        waiting = _erasure_facts(r, session_id)["waiting"]
        told = " The hub is told with the room's next message" + (
            f" ({waiting} are waiting to be sent: the hub learns of it when the room reaches it)."
            if waiting > 1
            else "."
        )
    return RedirectResponse(f"/?notice=The session of {when} was erased.{told}", status_code=303)


@pages.get("/access", response_class=HTMLResponse)
def access_page(request: Request, r: ReviewDep, u: AdminDep, everything: int = 0) -> HTMLResponse:
    entries = r.log.recent(1000)
    if not everything:
        entries = [e for e in entries if e.action in SESSION_ACTIONS]
    zone = dt.datetime.now().astimezone().tzname() or "local"
    return page(request, r, "access.html", u, entries=entries, everything=bool(everything), zone=zone)


async def _edge_error(_request: Request, exc: Exception) -> Response:
    logger.error("review page: %s", exc)
    return Response(str(exc), status_code=500, media_type="text/plain")


def create_app(config: AppConfig, accounts: Accounts, log: AccessLog, *, secure: bool) -> FastAPI:
    """The review page: its static files, the routers and what they share."""
    app = FastAPI(title="clinic-edge review", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    add_security_headers(app, hsts=secure)

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["local"] = local_time
    review = Review(config, accounts, log, templates, default_registry(), secure)
    app.state.review = review

    def login_page(request: Request, next_path: str, error: str | None, token: str, status: int) -> HTMLResponse:
        return page(request, review, "login.html", None, status, next=next_path, error=error, login_csrf=token)

    app.state.sign_in = SignIn(
        accounts,
        SESSION_COOKIE,
        LOGIN_COOKIE,
        secure,
        int(config.review.session_hours * 3600),
        "appliance",
        login_page,
    )
    app.add_exception_handler(LoginRequiredError, to_login)
    app.add_exception_handler(EdgeError, _edge_error)

    def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return page(request, review, "error.html", None, status, title=title, message=message)

    install_error_pages(app, error_page)
    for router in (sign_in_router, public, pages):
        app.include_router(router)
    return app
