"""What the products' web pages share around the accounts: the security headers, constant-time
token checks (forms that change state carry the session's token; the log-in form a double-submit
token), cookie settings, and a log-in's refusal in words. Framework-neutral: the products' routes
(FastAPI) call these."""

from __future__ import annotations

import secrets

from clinic_common.auth.accounts import LoginRefusedError

# Everything a page uses is served by the product itself; nothing inline runs, nothing frames it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}
HSTS = ("Strict-Transport-Security", "max-age=31536000")  # added by products served over TLS


def proxy_settings(trusted: list[str]) -> dict[str, object]:
    """uvicorn's proxy options: ``X-Forwarded-For``/``-Proto`` believed only from the listed addresses.

    uvicorn believes them from 127.0.0.1 unless told otherwise; on a page served on loopback anyone on
    the machine could then forge the address the access log records and the per-address throttle
    counts. Trust is explicit configuration, never a default.
    """
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted)}


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens of any characters (non-ASCII text included)."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def new_token() -> str:
    return secrets.token_urlsafe(24)


def local_target(next_path: str, default: str = "/") -> str:
    """Where to go after logging in: a path on this site only (never ``//host`` or a URL)."""
    return next_path if next_path.startswith("/") and not next_path.startswith("//") else default


def cookie_settings(secure: bool) -> dict[str, object]:
    """The session cookie's attributes: not readable by scripts, never sent by other sites."""
    return {"path": "/", "httponly": True, "samesite": "strict", "secure": secure}


def refusal(exc: LoginRefusedError, busy: str = "busy") -> tuple[str, int]:
    """A refused log-in in words, and its HTTP status (never which of name or password was wrong)."""
    if exc.reason == "wrong":
        return "Wrong user name or password.", 401
    if exc.reason == "throttled":
        minutes = max(1, round(exc.retry_after / 60))
        return f"Too many failed log-ins: try again in {minutes} minute{'s' if minutes > 1 else ''}.", 429
    return f"The {busy} is busy: try again in a moment.", 503
