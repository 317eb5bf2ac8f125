"""``clinic-edge backup``, ``backup-key`` and ``restore``: the arguments; the work is imported when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser("backup-key", help="make the age key backups are encrypted to (keep it away from the room)")
    key.add_argument("--out", type=Path, required=True, help="where the identity (private key) is written, owner-only")
    backup = sub.add_parser(
        "backup", help="write an encrypted backup of the room's database, staff voices, profile and accounts"
    )
    backup.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    backup.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the backup file to write (never overwritten), or a folder: <site>-<room>-<UTC time>.clinic-backup in it",
    )
    backup.add_argument("--keep", type=int, default=None, metavar="N", help="with a folder: keep its N newest backups")
    backup.add_argument(
        "--recipient", required=True, metavar="AGE1...|FILE", help="age recipient (from backup-key) or a file with it"
    )
    restore = sub.add_parser("restore", help="restore a backup onto a fresh install (refuses a newer schema)")
    restore.add_argument("backup", type=Path, help="the backup file")
    restore.add_argument("--config", type=Path, required=True, help="room configuration (TOML) of the new install")
    restore.add_argument("--identity", type=Path, required=True, help="the key file backup-key wrote")


def key(args: argparse.Namespace) -> int:
    from edge.backup.keys import generate  # noqa: PLC0415

    print(f"backup key written to {args.out}; encrypt backups to: {generate(args.out)}")
    return 0


def backup(args: argparse.Namespace) -> int:
    from edge.backup.archive import create_backup, prune  # noqa: PLC0415
    from edge.config import load_config  # noqa: PLC0415

    config = load_config(args.config)
    done = create_backup(config, args.config, args.out, args.recipient)
    if args.keep is not None and args.out.is_dir():
        for old in prune(args.out, config, max(1, args.keep)):
            print(f"deleted the older backup {old}")
    print(
        f"backup: {done.path} ({done.bytes / 2**20:.1f} MiB, {done.files} files, {done.sessions} sessions, "
        f"schema {done.schema_version})"
    )
    return 0


def restore(args: argparse.Namespace) -> int:
    from edge.backup.archive import restore_backup  # noqa: PLC0415
    from edge.config import load_config  # noqa: PLC0415

    done = restore_backup(load_config(args.config), args.config, args.backup, args.identity)
    print(f"restored: {done.files} files, {done.sessions} sessions kept after retention (schema {done.schema_version})")
    return 0


COMMANDS = {"backup-key": key, "backup": backup, "restore": restore}
