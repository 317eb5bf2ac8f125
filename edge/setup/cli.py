"""The arguments of ``clinic-edge setup``; the work is imported when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    setup = sub.add_parser(
        "setup", help="the technician's setup page: live picture, client region, checks and verdict (standby only)"
    )
    setup.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    setup.add_argument("--source", help="override capture.source (any source URI)")
    setup.add_argument("--port", type=int, default=None, help="override setup.port (0: a free one)")


def run(args: argparse.Namespace) -> int:
    from edge.setup.service import serve_setup  # noqa: PLC0415

    return serve_setup(args.config, args.source, args.port)
