"""The administrators' dashboard (FastAPI, Jinja2 templates, Chart.js served locally).

(No ``from __future__ import annotations`` here: FastAPI reads the routes' dependency annotations
at definition time, and they refer to closures.)

Every page reads the suppressed aggregate lattice (:mod:`hub.privacy`) or the appliances'
health; no page can reach a session. Sessions are signed cookies (itsdangerous via Starlette),
``SameSite=strict``; forms that change state carry a per-session token.
"""

import csv
import io
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from clinic_common.errors import ConfigError
from contract.classes import CLASSES
from hub.config import HubConfig
from hub.dashboard import CSV_HEADER, Filters, chart_data, health, scopes, select
from hub.metrics import HubMetrics
from hub.privacy import Lattice, read_lattice
from hub.users import ROLES, add_user, authenticate, list_users
from hub.views import GRAINS

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


def create_app(config: HubConfig, engine: sa.Engine, metrics: HubMetrics) -> FastAPI:  # noqa: PLR0915 - routes close over one app's state
    app = FastAPI(title="clinic hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(config.web.secret_file),
        session_cookie="clinic_hub",
        max_age=int(config.web.session_hours * 3600),
        same_site="strict",
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    grains = GRAINS[GRAINS.index(config.privacy.finest_grain) :]

    @app.exception_handler(_LoginRequiredError)
    async def _to_login(request: Request, _exc: _LoginRequiredError) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    def user(request: Request) -> dict[str, str]:
        name, role = request.session.get("user"), request.session.get("role")
        if not name or role not in ROLES:
            raise _LoginRequiredError
        return {"name": name, "role": role, "csrf": request.session.setdefault("csrf", secrets.token_urlsafe(24))}

    def admin(u: Annotated[dict[str, str], Depends(user)]) -> dict[str, str]:
        if u["role"] != "admin":
            raise HTTPException(status_code=403, detail="administrators only")
        return u

    def lattice() -> Lattice:
        with engine.connect() as conn:
            result = read_lattice(conn, grains)
        metrics.suppressed.set(result.hidden_secondary)
        return result

    def page(request: Request, name: str, u: dict[str, str], **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": u, "k": config.privacy.k, **context})

    def filters(
        level: str = "clinic", grain: str = "", site: str = "", room: str = "", start: str = "", end: str = ""
    ) -> Filters:
        if level not in LEVELS:
            raise HTTPException(status_code=400, detail=f"level must be one of {LEVELS}")
        grain = grain or ("week" if "week" in grains else grains[0])
        if grain not in grains:
            raise HTTPException(status_code=400, detail=f"grain must be one of {grains}")
        return Filters(level, grain, site or None, room or None, start or None, end or None)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"next": next, "error": None, "user": None})

    @app.post("/login", response_model=None)
    def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        role = authenticate(engine, username, password)
        if role is None:
            metrics.logins.labels("refused").inc()
            time.sleep(0.5)
            context = {"next": next, "error": "Wrong user name or password.", "user": None}
            return templates.TemplateResponse(request, "login.html", context, status_code=401)
        metrics.logins.labels("accepted").inc()
        request.session.clear()
        request.session.update({"user": username, "role": role, "csrf": secrets.token_urlsafe(24)})
        return RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", status_code=303)

    @app.post("/logout")
    def logout(request: Request, u: Annotated[dict[str, str], Depends(user)], csrf: Annotated[str, Form()]) -> Response:
        if not secrets.compare_digest(csrf, u["csrf"]):
            raise HTTPException(status_code=403, detail="stale form")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def overview(
        request: Request, u: Annotated[dict[str, str], Depends(user)], f: Annotated[Filters, Depends(filters)]
    ) -> HTMLResponse:
        lat = lattice()
        rows = select(lat, Filters("clinic", f.grain, None, None, f.start, f.end))
        devices = health(engine)
        online = sum(1 for d in devices if d.state == "online")
        return page(
            request,
            "overview.html",
            u,
            rows=rows,
            chart=json.dumps(chart_data(rows)),
            classes=CLASSES,
            f=f,
            grains=grains,
            devices=len(devices),
            online=online,
            hidden=lat.hidden_secondary,
        )

    @app.get("/rooms", response_class=HTMLResponse)
    def rooms(request: Request, u: Annotated[dict[str, str], Depends(user)], site: str = "") -> HTMLResponse:
        sites, _ = scopes(engine)
        return page(request, "rooms.html", u, devices=health(engine, site or None), sites=sites, site=site)

    @app.get("/trends", response_class=HTMLResponse)
    def trends(
        request: Request, u: Annotated[dict[str, str], Depends(user)], f: Annotated[Filters, Depends(filters)]
    ) -> HTMLResponse:
        rows = select(lattice(), f)
        sites, rooms_by_site = scopes(engine)
        query = request.url.query
        return page(
            request,
            "trends.html",
            u,
            rows=rows,
            chart=json.dumps(chart_data(rows)),
            classes=CLASSES,
            f=f,
            grains=grains,
            levels=LEVELS,
            sites=sites,
            rooms=rooms_by_site,
            query=query,
        )

    @app.get("/export.csv")
    def export(_u: Annotated[dict[str, str], Depends(user)], f: Annotated[Filters, Depends(filters)]) -> Response:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for row in select(lattice(), f):
            writer.writerow(row.csv())
        name = f"clinic-{f.level}-{f.grain}.csv"
        return Response(
            out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @app.get("/users", response_class=HTMLResponse)
    def users_page(request: Request, u: Annotated[dict[str, str], Depends(admin)]) -> HTMLResponse:
        return page(request, "users.html", u, accounts=list_users(engine), roles=ROLES, error=None)

    @app.post("/users", response_model=None)
    def users_add(
        request: Request,
        u: Annotated[dict[str, str], Depends(admin)],
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        role: Annotated[str, Form()],
        csrf: Annotated[str, Form()],
    ) -> Response:
        if not secrets.compare_digest(csrf, u["csrf"]):
            raise HTTPException(status_code=403, detail="stale form")
        try:
            add_user(engine, username, password, role)
        except ConfigError as exc:
            context = {"accounts": list_users(engine), "roles": ROLES, "error": str(exc)}
            return page(request, "users.html", u, **context)
        return RedirectResponse("/users", status_code=303)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
