"""``clinic-edge backup``, ``backup-key`` and ``restore``: the arguments; the work is imported when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinic_common.backup import cli as shared


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup, restore = shared.add_parsers(
        sub, "the room's database, staff voices, profile and accounts", "<site>-<room>"
    )
    backup.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    restore.add_argument("--config", type=Path, required=True, help="room configuration (TOML) of the new install")


def backup(args: argparse.Namespace) -> int:
    from edge.backup.archive import backup_prefix, create_backup  # noqa: PLC0415
    from edge.config import load_config  # noqa: PLC0415

    config = load_config(args.config)
    done = create_backup(config, args.config, args.out, args.recipient)
    shared.keep_newest(args, backup_prefix(config))
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


COMMANDS = {"backup-key": shared.make_key, "backup": backup, "restore": restore}
