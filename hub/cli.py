"""``clinic-hub``: the clinic server's command line.

``serve`` ingests the rooms' summaries from the broker, releases closed periods and serves the
dashboard; ``release`` releases closed periods now; ``user`` creates or resets a dashboard account.
Exit codes: 0 done; 2 a person must act (configuration, accounts); 3 the environment failed
(database, broker) and a restart may succeed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from clinic_common.cli import setup_logging
from clinic_common.errors import ClinicError
from hub.config import load_hub_config
from hub.service import release_now, serve, user_change

logger = logging.getLogger("hub.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinic-hub", description="The clinic hub: aggregate rooms' summaries, serve the dashboard."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--config", type=Path, required=True, help="hub configuration (TOML)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="ingest from the broker and serve the dashboard (the default)")
    sub.add_parser("release", help="release the periods that closed, now (serve does it hourly)")
    user = sub.add_parser("user", help="create, reset, disable, enable or delete a dashboard account")
    user.add_argument("username")
    user.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    change = user.add_mutually_exclusive_group()
    for action in ("disable", "enable", "delete"):
        change.add_argument(f"--{action}", action="store_const", const=action, dest="action", help=f"{action} it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        config = load_hub_config(args.config)
        if args.command == "user":
            return user_change(config, args.username, args.action or "save", args.role, args.password_stdin)
        if args.command == "release":
            return release_now(config)
        return serve(config)
    except ClinicError as exc:
        logger.error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
