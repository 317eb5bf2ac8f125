"""The administrators' dashboard (FastAPI, Jinja2 templates, Chart.js served locally).

(No ``from __future__ import annotations`` here: FastAPI reads the routes' dependency annotations
at definition time.) The routes are module-level functions on three routers (sign-in, the pages
every account sees, the administrators' account page); what they share (config, database, metrics,
templates) is one :class:`Hub` on ``app.state``, reached through a dependency.

Every page reads the released cells (:mod:`hub.release`) or the appliances' health, through an
engine that on PostgreSQL takes the restricted dashboard role (:mod:`hub.grants`); no page can
reach a session. Sessions are signed cookies (itsdangerous via Starlette),
``SameSite=strict``; forms that change state carry a per-session token.
"""

import csv
import io
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from clinic_common.errors import ConfigError
from contract.classes import CLASSES
from hub.config import HubConfig
from hub.dashboard import CSV_HEADER, Filters, Published, chart_data, health, published, scopes, select
from hub.grants import as_dashboard
from hub.metrics import HubMetrics
from hub.periods import GRAINS
from hub.users import ROLES, add_user, authenticate, list_users

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
LEVELS = ("clinic", "site", "room")


def session_secret(path: Path) -> str:
    """The signing key for login sessions; created with mode 0600 when missing."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the session key {path}: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    logger.info("created the session key %s", path)
    return key


class _LoginRequiredError(Exception):
    pass


@dataclass(frozen=True)
class Hub:
    """What the routes share, kept on ``app.state.hub``."""

    config: HubConfig
    engine: sa.Engine
    metrics: HubMetrics
    templates: Jinja2Templates
    grains: tuple[str, ...]  # the time grains offered: the configured finest and coarser


def hub(request: Request) -> Hub:
    state: Hub = request.app.state.hub
    return state


HubDep = Annotated[Hub, Depends(hub)]


def user(request: Request) -> dict[str, str]:
    name, role = request.session.get("user"), request.session.get("role")
    if not name or role not in ROLES:
        raise _LoginRequiredError
    return {"name": name, "role": role, "csrf": request.session.setdefault("csrf", secrets.token_urlsafe(24))}


UserDep = Annotated[dict[str, str], Depends(user)]


def admin(u: UserDep) -> dict[str, str]:
    if u["role"] != "admin":
        raise HTTPException(status_code=403, detail="administrators only")
    return u


AdminDep = Annotated[dict[str, str], Depends(admin)]


def filters(
    h: HubDep, level: str = "clinic", grain: str = "", site: str = "", room: str = "", start: str = "", end: str = ""
) -> Filters:
    if level not in LEVELS:
        raise HTTPException(status_code=400, detail=f"level must be one of {LEVELS}")
    grain = grain or ("week" if "week" in h.grains else h.grains[0])
    if grain not in h.grains:
        raise HTTPException(status_code=400, detail=f"grain must be one of {h.grains}")
    return Filters(level, grain, site or None, room or None, start or None, end or None)


FiltersDep = Annotated[Filters, Depends(filters)]


def released(h: Hub) -> Published:
    with h.engine.connect() as conn:
        result = published(conn, h.grains)
    h.metrics.suppressed.set(result.hidden)
    return result


def page(request: Request, h: Hub, name: str, u: dict[str, str], **context: Any) -> HTMLResponse:
    return h.templates.TemplateResponse(request, name, {"user": u, "k": h.config.privacy.k, **context})


def _same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens of any characters (non-ASCII text included)."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _fresh(form_token: str, u: dict[str, str]) -> None:
    """Forms that change state carry the session's token."""
    if not _same_token(form_token, u["csrf"]):
        raise HTTPException(status_code=403, detail="stale form")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's advice: a leading apostrophe)."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


SECURITY_HEADERS = {
    # Everything the pages use is served by the hub itself; nothing inline runs, nothing frames them.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


signin = APIRouter()


@signin.get("/login", response_class=HTMLResponse)
def login_form(request: Request, h: HubDep, next: str = "/") -> HTMLResponse:
    token = request.session.setdefault("login_csrf", secrets.token_urlsafe(24))
    return h.templates.TemplateResponse(
        request, "login.html", {"next": next, "error": None, "user": None, "login_csrf": token}
    )


@signin.post("/login", response_model=None)
def login(
    request: Request,
    h: HubDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.session.get("login_csrf")
    if not expected or not _same_token(csrf, expected):
        raise HTTPException(status_code=403, detail="stale log-in form: reload the page")
    role = authenticate(h.engine, username, password)
    if role is None:
        h.metrics.logins.labels("refused").inc()
        time.sleep(0.5)
        context = {"next": next, "error": "Wrong user name or password.", "user": None, "login_csrf": expected}
        return h.templates.TemplateResponse(request, "login.html", context, status_code=401)
    h.metrics.logins.labels("accepted").inc()
    request.session.clear()
    request.session.update({"user": username, "role": role, "csrf": secrets.token_urlsafe(24)})
    return RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", status_code=303)


@signin.post("/logout")
def logout(request: Request, u: UserDep, csrf: Annotated[str, Form()]) -> Response:
    _fresh(csrf, u)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@signin.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


pages = APIRouter()


@pages.get("/", response_class=HTMLResponse)
def overview(request: Request, h: HubDep, u: UserDep, f: FiltersDep) -> HTMLResponse:
    lat = released(h)
    rows = select(lat, Filters("clinic", f.grain, None, None, f.start, f.end))
    devices = health(h.engine)
    online = sum(1 for d in devices if d.state == "online")
    return page(
        request,
        h,
        "overview.html",
        u,
        rows=rows,
        chart=json.dumps(chart_data(rows)),
        classes=CLASSES,
        f=f,
        grains=h.grains,
        devices=len(devices),
        online=online,
        hidden=lat.hidden,
    )


@pages.get("/rooms", response_class=HTMLResponse)
def rooms(request: Request, h: HubDep, u: UserDep, site: str = "") -> HTMLResponse:
    sites, _ = scopes(h.engine)
    return page(request, h, "rooms.html", u, devices=health(h.engine, site or None), sites=sites, site=site)


@pages.get("/trends", response_class=HTMLResponse)
def trends(request: Request, h: HubDep, u: UserDep, f: FiltersDep) -> HTMLResponse:
    rows = select(released(h), f)
    sites, rooms_by_site = scopes(h.engine)
    return page(
        request,
        h,
        "trends.html",
        u,
        rows=rows,
        chart=json.dumps(chart_data(rows)),
        classes=CLASSES,
        f=f,
        grains=h.grains,
        levels=LEVELS,
        sites=sites,
        rooms=rooms_by_site,
        query=request.url.query,
    )


@pages.get("/export.csv")
def export(h: HubDep, _u: UserDep, f: FiltersDep) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in select(released(h), f):
        writer.writerow([neutralised(cell) for cell in row.csv()])
    name = f"clinic-{f.level}-{f.grain}.csv"
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


accounts = APIRouter()


@accounts.get("/users", response_class=HTMLResponse)
def users_page(request: Request, h: HubDep, u: AdminDep) -> HTMLResponse:
    return page(request, h, "users.html", u, accounts=list_users(h.engine), roles=ROLES, error=None)


@accounts.post("/users", response_model=None)
def users_add(
    request: Request,
    h: HubDep,
    u: AdminDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
) -> Response:
    _fresh(csrf, u)
    try:
        add_user(h.engine, username, password, role)
    except ConfigError as exc:
        return page(request, h, "users.html", u, accounts=list_users(h.engine), roles=ROLES, error=str(exc))
    return RedirectResponse("/users", status_code=303)


async def _to_login(request: Request, _exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def create_app(config: HubConfig, engine: sa.Engine, metrics: HubMetrics) -> FastAPI:
    """The dashboard: signed sessions, static files, the three routers and what they share."""
    app = FastAPI(title="clinic hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(config.web.secret_file),
        session_cookie="clinic_hub",
        max_age=int(config.web.session_hours * 3600),
        same_site="strict",
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    grains = tuple(GRAINS[GRAINS.index(config.privacy.finest_grain) :])
    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.hub = Hub(config, as_dashboard(engine), metrics, templates, grains)
    app.add_exception_handler(_LoginRequiredError, _to_login)
    for router in (signin, pages, accounts):
        app.include_router(router)
    return app
