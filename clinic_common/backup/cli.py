"""The arguments of ``backup-key``, ``backup`` and ``restore``, the same for ``clinic-edge`` and
``clinic-hub`` (each adds where its configuration comes from)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], what: str, prefix: str
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Add the three commands; return the ``backup`` and ``restore`` parsers. ``what`` says what a
    backup holds; ``prefix`` is how a dated backup's name starts."""
    key = sub.add_parser(
        "backup-key", help="make the age key backups are encrypted to (keep it away from this machine)"
    )
    key.add_argument("--out", type=Path, required=True, help="where the identity (private key) is written, owner-only")
    backup = sub.add_parser("backup", help=f"write an encrypted backup of {what}")
    backup.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"the backup file to write (never overwritten), or a folder: {prefix}-<UTC time>.clinic-backup in it",
    )
    backup.add_argument("--keep", type=int, default=None, metavar="N", help="with a folder: keep its N newest backups")
    backup.add_argument(
        "--recipient", required=True, metavar="AGE1...|FILE", help="age recipient (from backup-key) or a file with it"
    )
    restore = sub.add_parser("restore", help="restore a backup onto a fresh install (refuses a newer schema)")
    restore.add_argument("backup", type=Path, help="the backup file")
    restore.add_argument("--identity", type=Path, required=True, help="the key file backup-key wrote")
    return backup, restore


def make_key(args: argparse.Namespace) -> int:
    from clinic_common.backup.keys import generate  # noqa: PLC0415

    print(f"backup key written to {args.out}; encrypt backups to: {generate(args.out)}")
    return 0


def keep_newest(args: argparse.Namespace, prefix: str) -> None:
    """``--keep N`` with a folder: delete all but that folder's N newest backups of ``prefix``."""
    from clinic_common.backup.sealed import prune  # noqa: PLC0415

    if args.keep is not None and args.out.is_dir():
        for old in prune(args.out, prefix, max(1, args.keep)):
            print(f"deleted the older backup {old}")
