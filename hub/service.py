"""``clinic-hub``: ingest + dashboard + metrics in one process, or ingest workers and the dashboard apart."""

from __future__ import annotations

import gc
import logging
import signal
import threading

import sqlalchemy as sa
import uvicorn
from prometheus_client import start_http_server

from clinic_common.auth.accounts import Accounts
from clinic_common.auth.shell import change_account
from clinic_common.auth.web import proxy_settings
from clinic_common.errors import ClinicError
from clinic_common.mqtt import read_password
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.release import configured_policy, release_due, roll_up
from hub.schema import create_schema
from hub.store import make_engine
from hub.subscriber import Subscriber
from hub.users import hub_accounts
from hub.web import create_app

logger = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 3600.0


class HubStoreError(ClinicError):
    """The hub's database cannot be opened."""

    exit_code = 3


def dashboard_password(config: HubConfig) -> str | None:
    path = config.database.dashboard_password_file
    return read_password(path) if path is not None else None


def database_engine(config: HubConfig) -> sa.Engine:
    """An engine for the configured database (its password from ``database.password_file``), unopened."""
    password = read_password(config.database.password_file) if config.database.password_file else None
    return make_engine(config.database.url, password)


def open_database(config: HubConfig) -> sa.Engine:
    """Connect, create the schema and views, and set k.

    Raises:
        HubStoreError: the database is unreachable or refuses the schema.
    """
    engine = database_engine(config)
    try:
        create_schema(engine, config.privacy.k, config.privacy.dominance, dashboard_password(config))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise HubStoreError(f"cannot open the hub database {where}: {str(exc).splitlines()[0]}") from None
    except BaseException:  # a refused schema or setting: no connection left open behind the error
        engine.dispose()
        raise
    return engine


def apply_retention(engine: sa.Engine, config: HubConfig, ingest: Ingest, accounts: Accounts) -> None:
    """The retention rules, as the hourly housekeeping applies them (and a restore, at once): session
    rows of months released ``privacy.session_rows_days`` ago, message ids, gaps and dead letters past
    their days, ended log-ins and the access log past ``web.audit_days``."""
    roll_up(engine, config.privacy.session_rows_days)
    ingest.prune()
    accounts.sessions.purge()
    accounts.audit.purge(config.web.audit_days)


def serve(config: HubConfig, *, ingesting: bool = True, dashboard: bool = True, worker: str | None = None) -> int:
    """Run the hub: ingest (a worker), the dashboard with the hourly releases, or both (``serve``).

    Ingest workers scale out through a share group (``ingest.share_group``); the dashboard is one
    process reading released cells, and the one that releases.
    """
    engine = open_database(config)
    if dashboard:
        configured_policy(engine, config.privacy)  # a privacy setting the released history refuses stops here
    metrics = HubMetrics()
    if config.metrics.port:
        start_http_server(config.metrics.port, addr=config.metrics.host, registry=metrics.registry)
    ingest = Ingest.configured(engine, metrics, config)
    gc.freeze()  # start-up's objects live as long as the process (see below)
    subscriber = None
    if ingesting:
        subscriber = Subscriber(config.mqtt, config.client_id, ingest, config.ingest, worker)
        subscriber.start()
    halt = threading.Event()
    try:
        if not dashboard:
            logger.info("ingest worker %s running (share group %r)", worker or "main", config.ingest.share_group)
            _wait_for_signal(halt)
            return 0
        accounts = hub_accounts(engine, config.web)

        def housekeeping() -> None:
            while True:
                try:
                    release_due(engine, configured_policy(engine, config.privacy))
                    apply_retention(engine, config, ingest, accounts)
                except sa.exc.SQLAlchemyError as exc:
                    logger.warning("releasing or pruning failed (tried again in an hour): %s", exc)
                except ClinicError as exc:
                    logger.error("nothing released (tried again in an hour): %s", exc)
                except Exception:  # a bug must not end the releases for good: logged, tried again
                    logger.exception("releasing or pruning failed unexpectedly (tried again in an hour)")
                if halt.wait(HOUSEKEEPING_EVERY_S):
                    return

        threading.Thread(target=housekeeping, name="hub-housekeeping", daemon=True).start()
        app = create_app(config, engine, metrics)
        server = uvicorn.Server(dashboard_server(config, app))
        logger.info("dashboard on http://%s:%d/", config.web.host, config.web.port)
        # What start-up loaded stays for the life of the process: leaving it out of the garbage
        # collector's full passes keeps those from adding ~200 ms to a page now and then.
        gc.freeze()
        server.run()  # returns on SIGINT/SIGTERM
    finally:
        halt.set()
        if subscriber is not None:
            subscriber.stop()
        engine.dispose()
    return 0


def dashboard_server(config: HubConfig, app: object) -> uvicorn.Config:
    """The dashboard's server settings: proxy headers believed only from ``web.trusted_proxies``."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=config.web.host,
        port=config.web.port,
        log_level="warning",
        **proxy_settings([str(a) for a in config.web.trusted_proxies]),  # type: ignore[arg-type]
    )


def retire_worker(config: HubConfig, worker: str) -> int:
    """Take ``worker`` out of its share group for good (after stopping its service)."""
    engine = open_database(config)
    subscriber = Subscriber(
        config.mqtt, config.client_id, Ingest.configured(engine, HubMetrics(), config), config.ingest, worker
    )
    subscriber.start()
    try:
        stored = subscriber.retire()
    finally:
        engine.dispose()
    print(f"worker {worker} retired: its session ended at the broker after {stored} messages were stored")
    return 0


def _wait_for_signal(halt: threading.Event) -> None:
    """Block until SIGTERM or SIGINT."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: halt.set())
    while not halt.wait(3600):
        pass


def user_change(config: HubConfig, username: str, action: str, role: str, password_stdin: bool) -> int:
    """Create or reset (``save``), ``disable``, ``enable`` or ``delete`` an account from a shell."""
    print(change_account(hub_accounts(open_database(config), config.web), username, action, role, password_stdin))
    return 0


def release_now(config: HubConfig) -> int:
    """Release every period that closed, now, and say what was released."""
    engine = open_database(config)
    policy = configured_policy(engine, config.privacy)
    done = release_due(engine, policy)
    for r in done:
        print(f"{r.grain} {r.period} (version {r.version}): {r.shown} cells shown, {r.hidden} held back")
    if not done:
        print("nothing to release: no closed period holds unreleased sessions")
    return 0
