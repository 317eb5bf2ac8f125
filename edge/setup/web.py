"""The technician's setup page (FastAPI; its own script and style only).

(No ``from __future__ import annotations``: FastAPI reads the routes' annotations at definition time.)
Log-ins are the appliance's staff accounts (role ``technician`` or ``admin``), with the review page's
hardening. The page shows ``doctor``'s findings, the live picture with the faces and the client
region drawn over it, the checks with their verdict, and writes the room profile when the verdict is
ready; every profile written is in the access log. A request without a live log-in gets no picture
and no check.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinic_common.auth import Accounts
from clinic_common.auth.pages import LoginRequiredError, SignIn, SignInDep, add_security_headers, address, to_login
from clinic_common.auth.pages import router as sign_in_router
from clinic_common.auth.sessions import WebSession
from clinic_common.auth.web import same_token
from edge.calibration.intrinsics import IntrinsicsError
from edge.calibration.report import write_report as write_calibration_report
from edge.config.models import AppConfig
from edge.config.profile import Intrinsics, Region, RoomProfile, profile_path, save_profile
from edge.doctor import Finding
from edge.review.staff import AccessLog
from edge.setup.preview import Preview, Snapshot

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "clinic_setup"
LOGIN_COOKIE = "clinic_setup_login"
PROFILE_WRITTEN = "room profile written"
VOICE_RECORDED = "staff voice recorded"
REPORT_WRITTEN = "calibration report"
MAX_WAV_BYTES = 20 << 20
REPORTS = "reports"
CALIBRATION_REPORT = re.compile(r"calibration-\d{8}T\d{6}Z\.html")
ALLOWED = ("technician", "admin")


@dataclass(frozen=True)
class Setup:
    config: AppConfig
    config_path: Path
    preview: Preview
    log: AccessLog
    templates: Jinja2Templates
    findings: list[Finding]


def setup_state(request: Request) -> Setup:
    state: Setup = request.app.state.setup
    return state


SetupDep = Annotated[Setup, Depends(setup_state)]


def technician(request: Request, s: SignInDep) -> WebSession:
    """The request's log-in, which must be a technician's or an administrator's."""
    session = s.session(request)
    if session.role not in ALLOWED:
        raise HTTPException(status_code=403, detail="the setup page is for technicians and administrators")
    return session


TechnicianDep = Annotated[WebSession, Depends(technician)]


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csrf: str = Field(max_length=200)
    x: float
    y: float
    w: float
    h: float


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csrf: str = Field(max_length=200)
    staff_id: str = Field(min_length=1, max_length=64)
    consent: str = Field(min_length=1, max_length=200)
    seconds: float = Field(default=15.0, ge=10.0, le=60.0)


class BoardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csrf: str = Field(max_length=200)
    cols: int = Field(ge=3, le=30)
    rows: int = Field(ge=3, le=30)
    square_mm: float = Field(gt=0.0, le=200.0)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csrf: str = Field(max_length=200)
    note: str = Field(default="", max_length=200)
    photo: bool = False  # the technician ticked "include a photo of the room"


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csrf: str = Field(max_length=200)
    note: str = Field(default="", max_length=200)


def _profile(
    s: Setup,
    snap: Snapshot,
    technician: str,
    note: str,
    when: datetime,
    *,
    photo: bool,
    lens: Intrinsics | None = None,
) -> RoomProfile:
    return RoomProfile(
        created_at=when.isoformat(timespec="seconds"),
        technician=technician,
        note=note,
        source=s.preview.spec.redacted,
        client_region=snap.region,
        analysis_fps=s.config.capture.analysis_fps,
        microphone_gain_db=snap.gain_db,
        checks=snap.checks,
        intrinsics=lens if lens is not None else s.config.profile.intrinsics if s.config.profile is not None else None,
        preview_saved=photo,
    )


def _fresh(token: str, session: WebSession) -> None:
    if not same_token(token, session.csrf):
        raise HTTPException(status_code=403, detail="stale page: reload it")


router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def page(request: Request, s: SetupDep, who: TechnicianDep) -> HTMLResponse:
    s.preview.touch()
    return s.templates.TemplateResponse(
        request,
        "setup.html",
        {"user": who, "room": s.config.room, "findings": s.findings, "fps": s.config.setup.preview_fps},
    )


@router.get("/preview.jpg", response_model=None)
def picture(s: SetupDep, _who: TechnicianDep) -> Response:
    s.preview.touch()
    jpeg = s.preview.jpeg()
    if jpeg is None:
        return JSONResponse({"reason": s.preview.reason}, status_code=409, headers={"Cache-Control": "no-store"})
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/state.json")
def state(s: SetupDep, _who: TechnicianDep) -> JSONResponse:
    s.preview.touch()
    return JSONResponse(s.preview.as_json(), headers={"Cache-Control": "no-store"})


@router.post("/region")
def region(body: RegionIn, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    _fresh(body.csrf, who)
    try:
        drawn = Region(x=body.x, y=body.y, w=body.w, h=body.h)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=f"region: {exc.errors()[0]['msg']}") from None
    s.preview.set_region(drawn)
    return JSONResponse(s.preview.as_json())


@router.post("/profile")
def write_profile(body: ProfileIn, request: Request, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    """The room profile, written only when the verdict is ready (the CLI's rule)."""
    _fresh(body.csrf, who)
    snap = s.preview.snapshot()
    if not snap.ready:
        return JSONResponse({"written": False, "verdict": snap.verdict}, status_code=409)
    try:
        lens = s.preview.lens()
    except IntrinsicsError as exc:
        return JSONResponse({"written": False, "verdict": f"the lens: {exc}"}, status_code=409)
    profile = _profile(s, snap, who.username, body.note, datetime.now(timezone.utc), photo=False, lens=lens)
    path = profile_path(s.config_path)
    save_profile(profile, path)
    r = snap.region
    s.log.record(who.username, PROFILE_WRITTEN, "", address(request), f"region {r.x:g},{r.y:g},{r.w:g},{r.h:g}")
    logger.info("room profile written by %s from the setup page: %s", who.username, path)
    return JSONResponse({"written": True, "path": str(path), "verdict": snap.verdict})


@router.post("/enrol")
def enrol(body: EnrolIn, request: Request, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    """Record a staff member reading aloud in the room, then store their voice's embedding only."""
    _fresh(body.csrf, who)
    if not s.preview.running:
        raise HTTPException(status_code=409, detail=f"the microphone is not open: {s.preview.reason}")
    s.preview.record_voice(body.staff_id, body.consent, body.seconds)
    s.log.record(who.username, VOICE_RECORDED, "", address(request), f"staff {body.staff_id}")
    return JSONResponse(s.preview.as_json())


@router.post("/checkerboard")
def checkerboard(body: BoardIn, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    """Collect views of a printed checkerboard; the profile written next holds the lens they give."""
    _fresh(body.csrf, who)
    s.preview.set_board(body.cols, body.rows, body.square_mm)
    return JSONResponse(s.preview.as_json())


@router.post("/report")
def report(body: ReportIn, request: Request, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    """The calibration report for the clinic's records (owner-only HTML in the state folder): a photo
    of the room only when ticked, else the picture blurred past recognition."""
    _fresh(body.csrf, who)
    snap = s.preview.snapshot()
    if not snap.checks:
        raise HTTPException(status_code=409, detail=f"nothing measured yet: {s.preview.reason}")
    stamp = datetime.now(timezone.utc)
    profile = _profile(s, snap, who.username, body.note, stamp, photo=body.photo)
    folder = s.config.storage.state_dir / REPORTS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"calibration-{stamp.strftime('%Y%m%dT%H%M%SZ')}.html"
    write_calibration_report(
        path, profile, s.preview.measurements(), s.config.setup.window_s, s.preview.photo(), preview_asked=body.photo
    )
    path.chmod(0o600)
    s.log.record(
        who.username, REPORT_WRITTEN, "", address(request), f"{path.name}; photo {'yes' if body.photo else 'no'}"
    )
    return JSONResponse({"written": True, "path": str(path), "name": path.name})


@router.get("/reports/{name}", response_model=None)
def report_file(name: str, s: SetupDep, _who: TechnicianDep) -> Response:
    if not CALIBRATION_REPORT.fullmatch(name):
        raise HTTPException(status_code=404, detail="no such report")
    path = s.config.storage.state_dir / REPORTS / name
    if not path.is_file():
        raise HTTPException(status_code=404, detail="no such report")
    return FileResponse(path, media_type="text/html", filename=name)


@router.post("/enrol-wav")
def enrol_wav(
    request: Request,
    s: SetupDep,
    who: TechnicianDep,
    csrf: Annotated[str, Form(max_length=200)],
    staff_id: Annotated[str, Form(min_length=1, max_length=64)],
    consent: Annotated[str, Form(min_length=1, max_length=200)],
    wav: Annotated[UploadFile, File()],
) -> JSONResponse:
    """A staff voice from a recording (a 16-bit WAV): its embedding is stored, the file never is."""
    _fresh(csrf, who)
    raw = wav.file.read(MAX_WAV_BYTES + 1)
    if len(raw) > MAX_WAV_BYTES:
        return JSONResponse({"status": "refused", "detail": "the recording is over 20 MB"}, status_code=413)
    status, detail = s.preview.enrol_recording(staff_id, consent, raw)
    s.log.record(who.username, VOICE_RECORDED, "", address(request), f"staff {staff_id} (from a file)")
    return JSONResponse({"status": status, "detail": detail}, status_code=200 if status == "stored" else 422)


@router.post("/stop")
def stop(body: ProfileIn, s: SetupDep, who: TechnicianDep) -> JSONResponse:
    """The page closes: the preview lets go of the camera and microphone now."""
    _fresh(body.csrf, who)
    s.preview.stop("stopped: the page was closed")
    return JSONResponse({"running": False})


def create_app(setup: Setup, accounts: Accounts, *, secure: bool) -> FastAPI:
    app = FastAPI(title="clinic-edge setup", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    add_security_headers(app, hsts=secure)

    app.state.setup = setup

    def login_page(request: Request, next_path: str, error: str | None, token: str, status: int) -> HTMLResponse:
        return setup.templates.TemplateResponse(
            request,
            "login.html",
            {"user": None, "room": setup.config.room, "next": next_path, "error": error, "login_csrf": token},
            status_code=status,
        )

    app.state.sign_in = SignIn(
        accounts,
        SESSION_COOKIE,
        LOGIN_COOKIE,
        secure,
        int(setup.config.review.session_hours * 3600),
        "appliance",
        login_page,
    )
    app.add_exception_handler(LoginRequiredError, to_login)
    for r in (sign_in_router, router):
        app.include_router(r)
    return app
