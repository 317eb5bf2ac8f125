"""The review's commands of ``clinic-edge``: ``review`` (the page), ``review-account`` and
``session list|export-fhir|erase``. Arguments only here; the work is imported when a command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from edge.errors import EdgeError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review = sub.add_parser("review", help="serve the therapists' review page (sessions, reports, FHIR, erasure)")
    review.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")

    account = sub.add_parser("review-account", help="create, reset, list, disable, enable or delete a review account")
    account.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    account.add_argument("username", nargs="?", help="the account (a therapist's: their consent staff identifier)")
    account.add_argument("--role", choices=("therapist", "admin", "technician"), default="therapist")
    account.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    change = account.add_mutually_exclusive_group()
    for verb in ("list", "disable", "enable", "delete"):
        change.add_argument(f"--{verb}", action="store_const", const=verb, dest="action", help=f"{verb} it")

    session = sub.add_parser("session", help="the stored sessions from a shell: list, show, export-fhir, erase")
    session_sub = session.add_subparsers(dest="session_action", required=True)
    listing = session_sub.add_parser("list", help="sessions, newest first (no client identity is stored)")
    listing.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    listing.add_argument("--recorded-by", metavar="STAFF_ID", help="only the sessions whose consent they recorded")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    show = session_sub.add_parser("show", help="a session's timeline, window by window (and its kept transcript)")
    show.add_argument("session_id", help="a session id, or 'latest' for the newest")
    show.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    export = session_sub.add_parser("export-fhir", help="the session as an HL7 FHIR R4 bundle (file and/or POST)")
    export.add_argument("session_id")
    export.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    export.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="write the bundle here (0600)")
    export.add_argument("--post", action="store_true", help="file it to the configured endpoint ([review.fhir])")
    erase = session_sub.add_parser("erase", help="erase a session for good (consent withdrawn)")
    erase.add_argument("session_id")
    erase.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    erase.add_argument("--yes", action="store_true", help="do not ask to confirm (scripts)")


def _review(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.review.service import serve_review  # noqa: PLC0415

    return serve_review(load_config(args.config))


def _review_account(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.review.service import account_change  # noqa: PLC0415

    action = args.action or "save"
    if action != "list" and not args.username:
        raise EdgeError("name the account: clinic-edge review-account NAME --config ROOM")
    return account_change(load_config(args.config), args.username or "", action, args.role, args.password_stdin)


def _session(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.review.service import erase_from_shell, export_fhir, list_sessions  # noqa: PLC0415

    config = load_config(args.config)
    if args.session_action == "list":
        return list_sessions(config, args.recorded_by, args.json)
    if args.session_action == "show":
        from edge.review.show import show_session  # noqa: PLC0415

        return show_session(config, args.session_id)
    if args.session_action == "export-fhir":
        return export_fhir(config, args.session_id, args.out, args.post)
    return erase_from_shell(config, args.session_id, args.yes)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "review": _review,
    "review-account": _review_account,
    "session": _session,
}
