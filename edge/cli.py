"""``clinic-edge``: the appliance's command line.

``run`` starts a session on the room's source. Exit codes: 0 done; 1 unexpected failure;
2 a person must act (configuration, model files); 3 the environment failed (camera or source,
broker required at start, database or disk) and a restart may succeed. The message says which.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from edge import __version__
from edge.errors import EdgeError

logger = logging.getLogger("edge.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinic-edge", description="Privacy-preserving emotion analysis for clinic rooms."
    )
    parser.add_argument("--version", action="version", version=f"clinic-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="analyse the room's source and store/publish summaries")
    run.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    run.add_argument("--source", help="override capture.source (v4l2:///dev/video0, file:///..., rtsp://..., test:)")
    run.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this many seconds")
    dropin = sub.add_parser(
        "systemd-dropin",
        help="print the service drop-in for this config (IP allow list for the broker, credentials)",
    )
    dropin.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    dropin.add_argument("--out", type=Path, default=None, help="write here instead of printing")
    return parser


def _dropin(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.systemd_dropin import render_dropin  # noqa: PLC0415

    text = render_dropin(load_config(args.config), args.config)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


def _run(args: argparse.Namespace) -> int:
    # Heavy imports (GStreamer, MediaPipe, ONNX Runtime) only once a command needs them.
    from edge.config import load_config  # noqa: PLC0415
    from edge.runtime import Appliance  # noqa: PLC0415

    if args.duration is not None and args.duration <= 0:
        raise EdgeError(f"--duration must be a positive number of seconds, got {args.duration}")
    config = load_config(args.config)
    appliance = Appliance(config, args.source)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        appliance.request_stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    report = appliance.run(args.duration)
    print(
        "\n".join(
            [
                f"session:   {report.session_id}",
                f"source:    {report.source} ({report.source_restarts} capture rebuilds)",
                f"backend:   {report.backend}",
                f"frames:    {report.frames} analysed ({report.fps:.1f} fps), {report.frames_dropped} dropped",
                f"windows:   {report.windows} stored, {report.windows_dropped} dropped, "
                f"{report.windows_lost} lost to storage failures",
                f"latency:   window complete -> stored: {report.latency_summary()}",
                f"mqtt:      {report.published} summaries acknowledged, {report.unpublished} waiting in the outbox",
                f"database:  {report.database}",
            ]
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "systemd-dropin":
            return _dropin(args)
    except EdgeError as exc:
        logger.error("%s", exc)
        return exc.exit_code
    return 1


if __name__ == "__main__":
    sys.exit(main())
