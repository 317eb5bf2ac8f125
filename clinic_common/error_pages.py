"""Errors as pages: a person's browser gets a page in plain words with a way back, a program
(no ``text/html`` in its ``Accept``) the usual JSON ``{"detail": ...}``. Both products' web apps
install it; each gives its own page template."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

Render = Callable[[Request, int, str, str], HTMLResponse]

TITLES = {
    400: "That request could not be used",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    409: "Not possible now",
    422: "Something in the address or form was not understood",
}

# What the apps' terse details mean to a person.
PLAIN = {
    "stale form": "This form was out of date (you may have logged in again in another tab). Go back, reload the "
    "page and try again.",
    "stale form: reload the page": "This form was out of date (you may have logged in again in another tab). Go "
    "back, reload the page and try again.",
    "stale log-in form: reload the page": "The log-in form was out of date. Reload the log-in page and try again.",
    "administrators only": "Only administrators may open this page.",
    "no such session among those you may open": "This session is not among those you may open: it may have been "
    "erased or passed its retention period, or its consent was recorded by someone else.",
    "Not Found": "There is no page at this address.",
    "Method Not Allowed": "This address cannot be used that way.",
}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def install_error_pages(app: FastAPI, render: Render) -> None:
    """Answer ``HTTPException`` and request validation errors with ``render``'s page for browsers."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = str(getattr(exc, "detail", "")) or "Something went wrong."
        headers = getattr(exc, "headers", None)
        if not _wants_html(request):
            return JSONResponse({"detail": detail}, status_code=status, headers=headers)
        message = PLAIN.get(detail, detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else "."))
        return render(request, status, TITLES.get(status, "Something went wrong"), message)

    async def invalid(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        if not _wants_html(request):
            return JSONResponse({"detail": errors}, status_code=422)
        fields = ", ".join(sorted({str(e.get("loc", ("", ""))[-1]) for e in errors})) or "a value"
        return render(request, 422, TITLES[422], f"Check {fields}: it is missing or not in the expected form.")

    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        StarletteHTTPException: http_error,
        RequestValidationError: invalid,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
