"""``clinic-edge review``: serve the review page (uvicorn, TLS with the room's certificate), and the
shell's side of it: accounts, ``session list``, ``session export-fhir`` and ``session erase``."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from clinic_common.auth.shell import change_account, shell_actor
from clinic_common.auth.web import proxy_settings
from clinic_common.errors import ConfigError
from edge.config.models import AppConfig
from edge.errors import EdgeError, StoreError
from edge.review.certificate import appliance_names, fingerprint
from edge.review.certificate import ensure as ensure_certificate
from edge.review.erasure import erase_session
from edge.review.fhir import FhirError, session_bundle
from edge.review.fhir_client import post_bundle
from edge.review.staff import EXPORTED, FILED, FILING_FAILED, access_log, open_staff, staff_accounts
from edge.review.web import Review, create_app
from edge.runtime.notify import Notifier
from edge.store import SessionRow, Store

logger = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 6 * 3600


def page_urls(config: AppConfig, scheme: str, port: int) -> list[str]:
    """Where people reach the page: loopback first, then the appliance's other addresses when it
    listens on every address."""
    host = config.review.host
    if host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return [f"{scheme}://{host}:{port}/"]
    names = appliance_names()
    lan = [a for a in names.ips if not ipaddress.ip_address(a).is_loopback]
    return [f"{scheme}://127.0.0.1:{port}/", *(f"{scheme}://{f'[{a}]' if ':' in a else a}:{port}/" for a in lan)]


def _warm(review: Review) -> None:
    try:
        review.warm()
    except Exception:  # logged: a page that cannot be built ahead is built when opened
        logger.exception("building the newest sessions' pages ahead failed")


def tls_settings(config: AppConfig) -> dict[str, str]:
    """uvicorn's TLS settings, the self-signed certificate made first where it is the one used.

    Raises:
        ConfigError: the certificate or key cannot be used.
    """
    tls = config.review_tls()
    if tls is None:
        logger.warning("review page without TLS (review.certificate = none): loopback only")
        return {}
    if config.review_self_signed():
        made = ensure_certificate(config.storage.state_dir)
        logger.info("review page certificate (self-signed): SHA-256 fingerprint %s", fingerprint(made[0]))
    try:  # fail here, naming the files, rather than inside the server
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"the review page's certificate {tls.cert_file} / key {tls.key_file}: {exc}") from None
    return {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}


def serve_review(config: AppConfig) -> int:
    """Serve the page until SIGTERM/SIGINT.

    Raises:
        ConfigError: the certificate or key cannot be used.
        StoreError: the review database cannot be opened.
    """
    engine = open_staff(config)
    accounts = staff_accounts(engine, config)
    log = access_log(config, engine)
    db = config.storage.state_dir / config.storage.database
    if db.is_file():  # the page writes judgements and report records: the room's schema, current
        Store(db).close()
    tls = config.review_tls()
    ssl_args = tls_settings(config)
    halt = threading.Event()

    def housekeeping() -> None:
        while True:
            try:
                accounts.sessions.purge()
                log.purge(config.review.access_log_days)
            except Exception:  # logged, tried again: housekeeping must not end the page
                logger.exception("purging old log-ins and access log entries failed")
            if halt.wait(HOUSEKEEPING_EVERY_S):
                return

    threading.Thread(target=housekeeping, name="review-housekeeping", daemon=True).start()
    app = create_app(config, accounts, log, secure=tls is not None)
    threading.Thread(target=_warm, args=(app.state.review,), name="review-warm", daemon=True).start()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.review.host,
            port=config.review.port,
            log_level="warning",
            server_header=False,
            **proxy_settings([str(a) for a in config.review.trusted_proxies]),  # type: ignore[arg-type]
            **ssl_args,  # type: ignore[arg-type]
        )
    )
    scheme = "https" if tls is not None else "http"
    notifier = Notifier.from_environment()

    def started() -> None:
        while not server.started and not halt.is_set():
            halt.wait(0.1)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1] if server.servers else config.review.port
            where = page_urls(config, scheme, port)
            others = f" (on the clinic's network: {', '.join(where[1:])})" if len(where) > 1 else ""
            logger.info("review page on %s%s", where[0], others)
            notifier.ready(f"review page on {where[0]}")

    threading.Thread(target=started, name="review-ready", daemon=True).start()
    try:
        server.run()  # returns on SIGINT/SIGTERM
    finally:
        halt.set()
        engine.dispose()
    return 0


def account_change(config: AppConfig, username: str, action: str, role: str, password_stdin: bool) -> int:
    """Create or reset (``save``), ``list``, ``disable``, ``enable`` or ``delete`` a review account."""
    engine = open_staff(config)
    try:
        print(change_account(staff_accounts(engine, config), username, action, role, password_stdin))
    finally:
        engine.dispose()
    return 0


def _rows(config: AppConfig, recorded_by: str | None) -> list[SessionRow]:
    db = config.storage.state_dir / config.storage.database
    if not db.is_file():
        raise StoreError(f"no database at {db}; check storage.state_dir in the room config")
    store = Store(db, migrate_schema=False)
    try:
        return store.sessions(recorded_by)
    finally:
        store.close()


def list_sessions(config: AppConfig, recorded_by: str | None, as_json: bool) -> int:
    rows = _rows(config, recorded_by)
    if as_json:
        out = [
            {
                "id": r.id,
                "started_at": r.started_at,
                "duration_s": r.duration_s,
                "consent_method": r.consent_method,
                "consent_recorded_by": r.consent_recorded_by,
                "windows": r.windows,
                "coverage": r.coverage,
                "disparity_moments": r.events,
                "ended_by": r.ended_by,
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    print("session\tstarted (UTC)\tduration\tconsent\trecorded by\tcoverage\tdisparity moments")
    for r in rows:
        duration = "recording" if r.duration_s is None else f"{r.duration_s / 60:.1f} min"
        coverage = "-" if r.coverage is None else f"{100 * r.coverage:.0f} %"
        print(
            f"{r.id}\t{r.started_at[:16].replace('T', ' ')}\t{duration}\t{r.consent_method or '-'}\t"
            f"{r.consent_recorded_by or '-'}\t{coverage}\t{r.events}"
        )
    if not rows:
        print("(no sessions)")
    return 0


def export_fhir(config: AppConfig, session_id: str, out: Path | None, post: bool) -> int:
    """Write the session's FHIR bundle to ``out`` and/or file it to the configured endpoint.

    Raises:
        FhirError, EdgeError: the session, the bundle or the endpoint failed.
    """
    if out is None and not post:
        raise ConfigError("give --out FILE.json, --post, or both")
    if post and config.review.fhir is None:
        raise ConfigError("--post needs a FHIR endpoint in the room config ([review.fhir] url = ...)")
    log = access_log(config)
    actor = shell_actor()
    bundle = session_bundle(config, session_id)
    if out is not None:
        _write_private(out, json.dumps(bundle, indent=1))
        log.record(actor, EXPORTED, session_id, detail=f"{len(bundle['entry'])} resources to {out}")
        print(f"FHIR bundle ({len(bundle['entry'])} resources): {out}")
        print(
            f"{out} is a copy outside the appliance's records (the report inside it included): erasing the session "
            "does not delete it; it is yours to keep safe or delete (the access log records that it was exported)"
        )
    if post and config.review.fhir is not None:
        try:
            filed = post_bundle(bundle, config.review.fhir)
        except FhirError as exc:
            log.record(actor, FILING_FAILED, session_id, detail=str(exc))
            raise
        log.record(actor, FILED, session_id, detail=f"HTTP {filed.status} {filed.location}")
        print(f"filed to {config.review.fhir.url}: HTTP {filed.status} {filed.location}")
    return 0


def _write_private(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc}") from None


def erase_from_shell(config: AppConfig, session_id: str, yes: bool, ask: Callable[[str], str] = input) -> int:
    """Erase a session after the person typed the start of its id (or with ``--yes`` in scripts)."""
    if not yes:
        answer = ask(f"erase session {session_id} for good? type {session_id[:8]} to confirm: ")
        if answer.strip().lower() != session_id[:8]:
            print("not erased")
            return 1
    erased = erase_session(config, session_id, shell_actor())
    counts = ", ".join(f"{k} {v}" for k, v in erased.counts.items())
    print(f"session {session_id} erased ({counts})")
    if config.mqtt.enabled:
        print("the hub is told through the outbox (retract), published while the appliance runs")
    return 0
