"""``clinic-edge setup``: serve the setup page (uvicorn; loopback, or the review page's TLS)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import uvicorn
from fastapi.templating import Jinja2Templates

from clinic_common.auth import Accounts
from clinic_common.errors import ConfigError
from clinic_common.mqtt import is_loopback
from edge.capture.source import parse_source
from edge.config.load import load_config
from edge.config.profile import FULL_FRAME
from edge.doctor import findings
from edge.review.service import tls_settings
from edge.review.staff import access_log, open_staff, staff_accounts
from edge.setup.preview import Preview
from edge.setup.web import HERE, Setup, create_app

logger = logging.getLogger(__name__)


def build(config_path: Path, source: str | None = None) -> tuple[Setup, Accounts]:
    """The page's state and its accounts, from the room's config (``source`` overrides the camera)."""
    config = load_config(config_path)
    spec = parse_source(source or config.capture.source)
    region = config.profile.client_region if config.profile is not None else FULL_FRAME
    engine = open_staff(config)
    accounts = staff_accounts(engine, config)
    templates = Jinja2Templates(directory=HERE / "templates")
    setup = Setup(config, config_path, Preview(config, spec, region), access_log(config, engine), templates, [])
    return setup, accounts


def serve_setup(config_path: Path, source: str | None = None, port: int | None = None) -> int:
    """Serve the page until SIGTERM/SIGINT; the preview stops with it.

    Raises:
        ConfigError: the certificate cannot be used.
    """
    setup, accounts = build(config_path, source)
    config = setup.config
    setup.findings.extend(findings(config, config_path))
    ssl_args = {} if is_loopback(config.setup.host) else tls_settings(config)  # off loopback: TLS (validated)
    app = create_app(setup, accounts, secure=bool(ssl_args))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.setup.host,
            port=config.setup.port if port is None else port,
            log_level="warning",
            server_header=False,
            **ssl_args,  # type: ignore[arg-type]
        )
    )
    halt = threading.Event()

    def started() -> None:
        while not server.started and not halt.is_set():
            halt.wait(0.1)
        if server.started and server.servers:
            bound = server.servers[0].sockets[0].getsockname()[1]
            scheme = "https" if ssl_args else "http"
            logger.info("setup page on %s://%s:%d/ (log in as a technician)", scheme, config.setup.host, bound)

    threading.Thread(target=started, name="setup-ready", daemon=True).start()
    try:
        server.run()
    except OSError as exc:
        raise ConfigError(f"the setup page cannot listen on {config.setup.host}:{config.setup.port}: {exc}") from None
    finally:
        halt.set()
        setup.preview.stop("the setup page stopped")
    return 0
