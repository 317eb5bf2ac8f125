"""The administrators' dashboard (FastAPI, Jinja2 templates, Chart.js served locally).

(No ``from __future__ import annotations`` here: FastAPI reads the routes' dependency annotations
at definition time.) The routes are module-level functions on three routers (the sign-in pages every
product shares, :mod:`clinic_common.auth.pages`; the pages every account sees; the administrators'
accounts and audit pages); what they share (config, database, metrics, templates) is one
:class:`Hub` on ``app.state``, reached through a dependency.

Every page reads the released cells (:mod:`hub.release`) or the appliances' health, through an
engine that on PostgreSQL takes the restricted dashboard role (:mod:`hub.grants`); no page can
reach a session. Log-ins are server-side sessions (:mod:`clinic_common.auth`): the cookie holds a
random token (``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless configured off), and ending an
account's sessions takes effect on its next request. Forms that change state carry the session's
token, the log-in form a double-submit token.
"""

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from clinic_common.auth import Accounts
from clinic_common.auth.pages import LoginRequiredError, SignIn, SignInDep, add_security_headers, address, to_login
from clinic_common.auth.pages import router as sign_in_router
from clinic_common.auth.web import same_token
from clinic_common.error_pages import install_error_pages
from clinic_common.errors import ConfigError
from clinic_common.html import script_json
from clinic_common.mqtt import read_password
from contract.classes import CLASSES
from hub.config import HubConfig
from hub.dashboard import (
    CSV_HEADER,
    SORTS,
    Filters,
    Published,
    ago,
    health,
    published,
    scopes,
    select,
    withdrawn_after_release,
)
from hub.dp import Noise
from hub.grants import as_dashboard
from hub.measures import SHARES
from hub.metrics import HubMetrics
from hub.periods import GRAINS
from hub.trends import period_label, trends
from hub.users import ROLES, hub_accounts

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
LEVELS = ("clinic", "site", "room")


@dataclass(frozen=True)
class Hub:
    """What the routes share, kept on ``app.state.hub``."""

    config: HubConfig
    engine: sa.Engine
    metrics: HubMetrics
    templates: Jinja2Templates
    grains: tuple[str, ...]  # the time grains offered: the configured finest and coarser
    accounts: Accounts


def hub(request: Request) -> Hub:
    state: Hub = request.app.state.hub
    return state


HubDep = Annotated[Hub, Depends(hub)]


SESSION_COOKIE = "clinic_hub"
LOGIN_COOKIE = "clinic_hub_login"  # the log-in form's token (double submit), before any session exists


def user(request: Request, s: SignInDep) -> dict[str, str]:
    session = s.session(request)
    return {"name": session.username, "role": session.role, "csrf": session.csrf}


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
        raise HTTPException(status_code=400, detail=f"level must be one of {', '.join(LEVELS)}")
    grain = grain or ("week" if "week" in h.grains else h.grains[0])
    if grain not in h.grains:
        raise HTTPException(status_code=400, detail=f"period must be one of {', '.join(h.grains)}")
    return cascade(h, Filters(level, grain, site or None, room or None, start or None, end or None))


def cascade(h: Hub, f: Filters) -> Filters:
    """Filters made consistent: a chosen site or room sets the level to it at least (a site with the
    clinic level would select nothing), a room names its site; what cannot match says why."""
    level = f.level
    if f.room and level != "room":
        level = "room"
    elif f.site and level == "clinic":
        level = "site"
    site, problem = f.site, None
    _, rooms = scopes(h.engine)
    if f.room:
        holding = [s for s, rs in rooms.items() if f.room in rs]
        if site and site not in holding:
            problem = f"Room {f.room} is not in site {site}: choose the room again, or all rooms."
        elif not site and len(holding) == 1:
            site = holding[0]
    if f.start and f.end and f.start > f.end:
        problem = f"“From” ({f.start}) is after “to” ({f.end}): no period can match. Swap them or clear one."
    return Filters(level, f.grain, site, f.room, f.start, f.end, problem)


FiltersDep = Annotated[Filters, Depends(filters)]


def released(h: Hub, f: Filters) -> Published:
    with h.engine.connect() as conn:
        result = published(conn, (f.grain,), f)
    h.metrics.suppressed.set(result.hidden)
    return result


@dataclass(frozen=True)
class PrivacyNote:
    """What the pages say about how the numbers are protected."""

    mode: str
    k: int
    epsilon: float
    per_session: float  # a session's total epsilon: one release per grain
    count_error: float
    share_error_100: float  # a class share's error (95 %) for a cell of 100 sessions, in points


def privacy_note(h: Hub) -> PrivacyNote:
    p = h.config.privacy
    noise = Noise(p.epsilon)
    return PrivacyNote(
        p.mode,
        p.k,
        p.epsilon,
        p.epsilon * len(h.grains),
        noise.count_error(),
        100 * noise.share_error(100),
    )


def page(request: Request, h: Hub, name: str, u: dict[str, str], **context: Any) -> HTMLResponse:
    note = privacy_note(h)
    return h.templates.TemplateResponse(request, name, {"user": u, "k": note.k, "privacy": note, **context})


def _fresh(form_token: str, u: dict[str, str]) -> None:
    """Forms that change state carry the session's token."""
    if not same_token(form_token, u["csrf"]):
        raise HTTPException(status_code=403, detail="stale form")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's advice: a leading apostrophe)."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


pages = APIRouter()


@pages.get("/", response_class=HTMLResponse)
def overview(request: Request, h: HubDep, u: UserDep, f: FiltersDep) -> HTMLResponse:
    clinic = Filters("clinic", f.grain, None, None, f.start, f.end, f.problem)
    lat = released(h, clinic)
    rows = select(lat, clinic)
    devices = health(h.engine)
    online = sum(1 for d in devices if d.state == "online")
    with h.engine.connect() as conn:
        t = trends(conn, clinic, rows)
    return page(
        request,
        h,
        "overview.html",
        u,
        rows=rows,
        lines=t.table(),
        trend=t,
        label=period_label,
        upcoming=t.next_release(dt.datetime.now(dt.timezone.utc).date(), h.config.privacy.release_delay_days),
        chart=script_json(t.chart()),
        quick=quick_ranges(),
        filters_problem=f.problem,
        classes=CLASSES,
        shares=SHARES,
        f=f,
        grains=h.grains,
        devices=len(devices),
        online=online,
        hidden=lat.hidden,
        withdrawn=withdrawn_after_release(h.engine),
    )


@pages.get("/rooms", response_class=HTMLResponse)
def rooms(request: Request, h: HubDep, u: UserDep, site: str = "", sort: str = "attention") -> HTMLResponse:
    sites, _ = scopes(h.engine)
    if sort not in SORTS:
        raise HTTPException(status_code=400, detail=f"sort by one of {', '.join(SORTS)}")
    devices = sorted(health(h.engine, site or None), key=SORTS[sort])
    return page(request, h, "rooms.html", u, devices=devices, sites=sites, site=site, sort=sort, ago=ago)


def quick_ranges() -> dict[str, str]:
    """Start dates of the filters' quick ranges, from today."""
    today = dt.datetime.now(dt.timezone.utc).date()
    return {
        "weeks12": (today - dt.timedelta(weeks=12)).isoformat(),
        "months6": (today - dt.timedelta(days=183)).isoformat(),
        "year": (today - dt.timedelta(days=365)).isoformat(),
    }


TABLE_ROWS = 400  # rows a trends table shows (a year of weeks for every room is thousands)


@pages.get("/trends", response_class=HTMLResponse)
def trends_page(request: Request, h: HubDep, u: UserDep, f: FiltersDep) -> HTMLResponse:
    rows = select(released(h, f), f)
    sites, rooms_by_site = scopes(h.engine)
    with h.engine.connect() as conn:
        t = trends(conn, f, rows)
    lines = t.table()
    return page(
        request,
        h,
        "trends.html",
        u,
        lines=lines[-TABLE_ROWS:],  # the newest; the chart and the CSV export have them all
        total=len(lines),
        trend=t,
        label=period_label,
        upcoming=t.next_release(dt.datetime.now(dt.timezone.utc).date(), h.config.privacy.release_delay_days),
        chart=script_json(t.chart()),
        quick=quick_ranges(),
        filters_problem=f.problem,
        classes=CLASSES,
        shares=SHARES,
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
    for row in select(released(h, f), f):
        writer.writerow([neutralised(cell) for cell in row.csv()])
    name = f"clinic-{f.level}-{f.grain}.csv"
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


accounts = APIRouter()


def _users_page(request: Request, h: Hub, u: dict[str, str], error: str | None = None) -> HTMLResponse:
    response = page(request, h, "users.html", u, accounts=h.accounts.list(), roles=ROLES, error=error)
    if error:
        response.status_code = 400
    return response


@accounts.get("/users", response_class=HTMLResponse)
def users_page(request: Request, h: HubDep, u: AdminDep) -> HTMLResponse:
    return _users_page(request, h, u)


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
        h.accounts.save(username, password, role, u["name"], address(request), mode="create")
    except ConfigError as exc:
        return _users_page(request, h, u, str(exc))
    return RedirectResponse("/users", status_code=303)


ACTIONS = ("role", "reset", "disable", "enable", "delete")


@accounts.post("/users/{username}/{action}", response_model=None)
def users_change(
    request: Request,
    h: HubDep,
    u: AdminDep,
    username: str,
    action: str,
    csrf: Annotated[str, Form()],
    role: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    _fresh(csrf, u)
    if action not in ACTIONS:
        raise HTTPException(status_code=404, detail=f"no action {action!r}")
    who = (u["name"], address(request))
    try:
        if username == u["name"] and action != "enable":
            raise ConfigError("another administrator changes, disables or deletes your own account")
        if action == "role":
            h.accounts.set_role(username, role, *who)
        elif action == "reset":
            current = next((a.role for a in h.accounts.list() if a.username == username), "")
            h.accounts.save(username, password, current, *who, mode="reset")
        elif action == "disable":
            h.accounts.disable(username, *who)
        elif action == "enable":
            h.accounts.enable(username, *who)
        elif confirm != username:
            raise ConfigError(f"type the account's name ({username}) to delete it")
        else:
            h.accounts.delete(username, *who)
    except ConfigError as exc:
        return _users_page(request, h, u, str(exc))
    return RedirectResponse("/users", status_code=303)


@accounts.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    h: HubDep,
    u: AdminDep,
    who: Annotated[str, Query(max_length=100)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    found = h.accounts.audit.search(who=who, action=action, page=number)
    return page(request, h, "audit.html", u, found=found, who=who, action=action, ago=ago)


def create_app(config: HubConfig, engine: sa.Engine, metrics: HubMetrics) -> FastAPI:
    """The dashboard: static files, the three routers and what they share."""
    app = FastAPI(title="clinic hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    add_security_headers(app, hsts=False)

    grains = tuple(GRAINS[GRAINS.index(config.privacy.finest_grain) :])
    templates = Jinja2Templates(directory=HERE / "templates")
    password = config.database.dashboard_password_file
    dashboard = as_dashboard(engine, read_password(password) if password is not None else None)
    hub = Hub(config, dashboard, metrics, templates, grains, hub_accounts(dashboard, config.web))
    app.state.hub = hub

    def login_page(request: Request, next_path: str, error: str | None, token: str, status: int) -> HTMLResponse:
        context = {"next": next_path, "error": error, "user": None, "login_csrf": token}
        return templates.TemplateResponse(request, "login.html", context, status_code=status)

    app.state.sign_in = SignIn(
        hub.accounts,
        SESSION_COOKIE,
        LOGIN_COOKIE,
        config.web.cookie_secure,
        int(config.web.session_hours * 3600),
        "hub",
        login_page,
        lambda result: metrics.logins.labels(result).inc(),
    )
    app.add_exception_handler(LoginRequiredError, to_login)

    def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return hub.templates.TemplateResponse(
            request, "error.html", {"user": None, "title": title, "message": message}, status_code=status
        )

    install_error_pages(app, error_page)
    for router in (sign_in_router, pages, accounts):
        app.include_router(router)
    return app
