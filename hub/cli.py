"""``clinic-hub``: the clinic server's command line.

``serve`` ingests the rooms' summaries from the broker, releases closed periods and serves the
dashboard; ``ingest`` and ``dashboard`` run those apart (ingest workers scale out through a share
group); ``release`` releases closed periods now; ``user`` creates or resets a dashboard account;
``backup-key``, ``backup`` and ``restore`` keep an encrypted copy of the database (:mod:`hub.backup`).
Exit codes: 0 done; 2 a person must act (configuration, accounts); 3 the environment failed
(database, broker) and a restart may succeed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

from clinic_common.backup import cli as backup_cli
from clinic_common.cli import setup_logging
from clinic_common.errors import ClinicError, ConfigError
from hub.backup import PREFIX, create_hub_backup, restore_hub_backup
from hub.config import HubConfig, load_hub_config
from hub.service import release_now, retire_worker, serve, user_change

logger = logging.getLogger("hub.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinic-hub", description="The clinic hub: aggregate rooms' summaries, serve the dashboard."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--config", type=Path, required=True, help="hub configuration (TOML)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="ingest from the broker and serve the dashboard (the default)")
    work = sub.add_parser("ingest", help="an ingest worker only (several share the stream: ingest.share_group)")
    work.add_argument(
        "--worker", default=None, help="this worker's name in its share group (its client id is <client_id>-<name>)"
    )
    work.add_argument(
        "--retire",
        action="store_true",
        help="take this worker out of its share group for good (stop its service first): store what its "
        "session holds, then end the session at the broker",
    )
    sub.add_parser("dashboard", help="the dashboard and the releases only (beside ingest workers)")
    sub.add_parser("release", help="release the periods that closed, now (serve does it hourly)")
    user = sub.add_parser("user", help="create, reset, disable, enable or delete a dashboard account")
    user.add_argument("username")
    user.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    change = user.add_mutually_exclusive_group()
    for action in ("disable", "enable", "delete"):
        change.add_argument(f"--{action}", action="store_const", const=action, dest="action", help=f"{action} it")
    backup_cli.add_parsers(sub, "the hub's database (sessions, releases, accounts)", PREFIX)
    return parser


def _worker_name(name: str | None, group: str) -> str | None:
    if group and not name:
        raise ConfigError("a worker of a share group needs a name: clinic-hub ingest --worker NAME")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,15}", name):
        raise ConfigError(f"worker name {name!r}: 1-15 letters, digits, '-' or '_'")
    return name


def _backup(args: argparse.Namespace, config: HubConfig) -> int:
    done = create_hub_backup(config, args.config, args.out, args.recipient)
    backup_cli.keep_newest(args, PREFIX)
    print(
        f"backup: {done.path} ({done.bytes / 2**20:.1f} MiB, {done.dialect}, {done.sessions} session rows, "
        f"schema {done.schema_version})"
    )
    return 0


def _restore(args: argparse.Namespace, config: HubConfig) -> int:
    done = restore_hub_backup(config, args.backup, args.identity)
    print(f"restored: {done.sessions} session rows kept after retention (schema {done.schema_version})")
    return 0


def _ingest(args: argparse.Namespace, config: HubConfig) -> int:
    name = _worker_name(args.worker, config.ingest.share_group)
    if not args.retire:
        return serve(config, dashboard=False, worker=name)
    if not config.ingest.share_group or name is None:
        raise ConfigError("--retire is for a named worker of a share group (ingest.share_group)")
    return retire_worker(config, name)


COMMANDS: dict[str | None, Callable[[argparse.Namespace, HubConfig], int]] = {
    None: lambda _args, config: serve(config),
    "serve": lambda _args, config: serve(config),
    "ingest": _ingest,
    "dashboard": lambda _args, config: serve(config, ingesting=False),
    "release": lambda _args, config: release_now(config),
    "user": lambda a, config: user_change(config, a.username, a.action or "save", a.role, a.password_stdin),
    "backup": _backup,
    "restore": _restore,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if args.command == "backup-key":  # needs no configuration
            return backup_cli.make_key(args)
        return COMMANDS[args.command](args, load_hub_config(args.config))
    except ClinicError as exc:
        logger.error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
