"""What the services' command lines share: one log format on standard error."""

from __future__ import annotations

import logging


def setup_logging(verbose: bool) -> None:
    """INFO (DEBUG with ``verbose``) with time, level and logger name on every line."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
