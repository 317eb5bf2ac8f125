"""The sign-in pages every product's web pages share (FastAPI): the log-in form with its
double-submit token, logging in (throttled, never sleeping, refusals in words), logging out with the
session's token, and the health check. A product puts a :class:`SignIn` on ``app.state.sign_in``
(its accounts, cookie names, how it draws its log-in page) and includes :data:`router`.

(No ``from __future__ import annotations``: FastAPI reads the routes' annotations at definition time.)
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clinic_common.auth.accounts import Accounts, LoginRefusedError
from clinic_common.auth.sessions import WebSession
from clinic_common.auth.web import HSTS, SECURITY_HEADERS, cookie_settings, local_target, new_token, refusal, same_token

LoginPage = Callable[[Request, str, "str | None", str, int], HTMLResponse]  # next, error, form token, status


class LoginRequiredError(Exception):
    """No live session: the product sends the browser to the log-in page."""


@dataclass(frozen=True)
class SignIn:
    accounts: Accounts
    session_cookie: str
    login_cookie: str
    secure: bool  # cookies only over TLS
    session_max_age_s: int
    product: str  # as refusals name it ("the hub is busy")
    login_page: LoginPage
    on_attempt: Callable[[str], None] = lambda _result: None  # "accepted" or a refusal's reason

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, **cookie_settings(self.secure))  # type: ignore[arg-type]

    def session(self, request: Request) -> WebSession:
        """The request's live session, or :class:`LoginRequiredError`."""
        session = self.accounts.sessions.get(request.cookies.get(self.session_cookie))
        if session is None:
            raise LoginRequiredError
        return session


def sign_in(request: Request) -> SignIn:
    state: SignIn = request.app.state.sign_in
    return state


SignInDep = Annotated[SignIn, Depends(sign_in)]


def address(request: Request) -> str:
    return request.client.host if request.client else ""


def fresh(form_token: str, session: WebSession) -> None:
    """A form that changes state carries the session's token."""
    if not same_token(form_token, session.csrf):
        raise HTTPException(status_code=403, detail="stale form: reload the page")


def login_page(request: Request, s: SignIn, next_path: str, error: str | None, status: int = 200) -> HTMLResponse:
    token = request.cookies.get(s.login_cookie) or new_token()
    response = s.login_page(request, next_path, error, token, status)
    s.set_cookie(response, s.login_cookie, token, max_age=3600)
    return response


router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, s: SignInDep, next: str = "/") -> HTMLResponse:
    return login_page(request, s, next, None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    s: SignInDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(s.login_cookie)
    if not expected or not same_token(csrf, expected):
        raise HTTPException(status_code=403, detail="stale log-in form: reload the page")
    try:
        token = s.accounts.log_in(username, password, address(request))
    except LoginRefusedError as exc:
        s.on_attempt(exc.reason)
        message, status = refusal(exc, s.product)
        response = login_page(request, s, next, message, status)
        if exc.reason != "wrong":
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    s.on_attempt("accepted")
    redirect = RedirectResponse(local_target(next), status_code=303)
    s.set_cookie(redirect, s.session_cookie, token, max_age=s.session_max_age_s)
    redirect.delete_cookie(s.login_cookie, path="/")
    return redirect


@router.post("/logout")
def logout(request: Request, s: SignInDep, csrf: Annotated[str, Form()]) -> Response:
    session = s.session(request)
    fresh(csrf, session)
    s.accounts.log_out(request.cookies.get(s.session_cookie) or "", session.username, address(request))
    redirect = RedirectResponse("/login", status_code=303)
    redirect.delete_cookie(s.session_cookie, path="/")
    return redirect


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def to_login(request: Request, _exc: Exception) -> Response:
    """The exception handler for :class:`LoginRequiredError`."""
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def add_security_headers(app: FastAPI, *, hsts: bool) -> None:
    """Every response of ``app`` gets the pages' shared hardening headers (and HSTS over TLS)."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if hsts:
            response.headers.setdefault(*HSTS)
        return response
