"""``clinic-edge``: the appliance's command line.

``run`` records one session now, with consent given on the command line; ``serve`` is the
service: it waits in standby for start commands (with consent) from ``control`` or the room's
MQTT command topic. ``review`` serves the therapists' review page; ``session`` lists, exports
(HL7 FHIR) and erases stored sessions from a shell. Exit codes: 0 done; 1 unexpected failure; 2 a person must act
(configuration, model files, missing consent); 3 the environment failed (camera or source,
broker required at start, database or disk) and a restart may succeed. The message says which.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from clinic_common.cli import setup_logging
from edge import __version__
from edge.backup import cli as backup_cli
from edge.errors import EdgeError
from edge.evaluation.cli import add_parser as add_evaluate
from edge.native import settle_heap
from edge.review.cli import COMMANDS as REVIEW_COMMANDS
from edge.review.cli import add_parsers as add_review
from edge.setup import cli as setup_cli
from edge.speakers.cli import add_parser as add_staff_voice

if TYPE_CHECKING:
    from edge.runtime import Appliance, RunReport
    from edge.runtime.device import Device

logger = logging.getLogger("edge.cli")

CONSENT_METHODS = ("verbal", "written", "electronic")


def _add_consent(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--consent", choices=CONSENT_METHODS, required=required, help="how the client consented")
    parser.add_argument("--consent-by", metavar="STAFF_ID", required=required, help="who recorded the consent")
    parser.add_argument("--consent-reference", metavar="ID", help="id in the clinic's consent records")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinic-edge", description="Privacy-preserving emotion analysis for clinic rooms."
    )
    parser.add_argument("--version", action="version", version=f"clinic-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="record one session now (consent given here) and store/publish summaries")
    run.add_argument(
        "--config",
        type=Path,
        required=True,
        action="append",
        help="room configuration (TOML); repeat it for several rooms in one process, sharing the models",
    )
    run.add_argument(
        "--source", help="override capture.source, one room only (v4l2:///dev/video0, file:///..., rtsp://..., test:)"
    )
    run.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this many seconds")
    _add_consent(run, required=True)

    serve = sub.add_parser("serve", help="the service: wait in standby for start commands, run sessions")
    serve.add_argument(
        "--config",
        type=Path,
        required=True,
        action="append",
        help="room configuration (TOML); repeat it for several rooms in one process, sharing the models",
    )
    serve.add_argument("--source", help="override capture.source (one room only)")

    control = sub.add_parser(
        "control", help="start, pause, resume or stop the running appliance's session; erase a finished one"
    )
    control.add_argument("--config", type=Path, required=True, help="the running appliance's configuration")
    control.add_argument("action", choices=("start", "pause", "resume", "stop", "status", "explain", "erase"))
    control.add_argument("--seconds", type=int, default=60, help="explain: explain every window for this long")
    control.add_argument("--session", metavar="SESSION_ID", help="erase: the session (consent withdrawn)")
    control.add_argument("--requested-by", metavar="STAFF_ID", help="erase: who asks (for the access log)")
    control.add_argument("--yes", action="store_true", help="erase: do not ask to confirm (scripts)")
    _add_consent(control, required=False)

    for add in (add_review, add_evaluate, setup_cli.add_parser, backup_cli.add_parsers):
        add(sub)

    report = sub.add_parser("report", help="write a session's report (HTML, and PDF when Chromium is installed)")
    report.add_argument(
        "session_id", nargs="?", help="the session's id (printed at its end, `clinic-edge session list`), or 'latest'"
    )
    report.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the report (default: <state_dir>/reports); files are owner-only and deleted with the "
        "session by retention wherever they are",
    )
    report.add_argument("--list", action="store_true", help="list the reports on record and exit")
    report.add_argument("--no-pdf", action="store_true", help="HTML only")

    cal = sub.add_parser("calibrate", help="check the room's camera and microphone and write the room profile")
    cal.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    cal.add_argument("--source", help="override capture.source")
    cal.add_argument("--duration", type=float, default=10.0, metavar="SECONDS", help="how long to measure")
    cal.add_argument(
        "--region",
        metavar="X,Y,W,H",
        help="client region (the chair) as fractions of the frame, e.g. 0.25,0.05,0.5,0.9",
    )
    cal.add_argument("--technician", required=True, metavar="ID", help="technician's identifier")
    cal.add_argument("--note", default="", help="note for the clinic's records (no client data)")
    cal.add_argument("--json", action="store_true", help="print JSON for scripts instead of the table")
    cal.add_argument(
        "--write", action="store_true", help="write room-profile.json beside the config when the verdict is ready"
    )
    cal.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="write an HTML report")
    cal.add_argument("--save-preview", action="store_true", help="include one preview frame of the room in the report")
    cal.add_argument("--checkerboard", metavar="COLSxROWS", help="also solve the lens from a printed checkerboard")
    cal.add_argument("--square-mm", type=float, default=25.0, help="checkerboard square size in millimetres")

    doc = sub.add_parser("doctor", help="check the installation: GStreamer, devices, models, disk, broker, clock")
    doc.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    doc.add_argument("--json", action="store_true", help="print JSON for scripts")

    dropin = sub.add_parser(
        "systemd-dropin",
        help="print the service drop-in for this config (IP allow list for the broker, credentials)",
    )
    dropin.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    dropin.add_argument("--out", type=Path, default=None, help="write here instead of printing")
    gpu = dropin.add_mutually_exclusive_group()
    gpu.add_argument(
        "--jetson",
        dest="jetson",
        action="store_true",
        default=None,
        help="allow the Jetson's GPU, video engines and CSI camera (the default on a Jetson)",
    )
    gpu.add_argument("--no-jetson", dest="jetson", action="store_false", help="leave them out, even on a Jetson")

    add_staff_voice(sub)
    return parser


def _consent(args: argparse.Namespace) -> dict[str, str]:
    body = {"method": args.consent, "recorded_by": args.consent_by}
    if args.consent_reference:
        body["reference"] = args.consent_reference
    return body


def _signals(appliance: Appliance | Device) -> None:
    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        appliance.request_stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)


def _print_report(report: RunReport) -> None:
    print(
        "\n".join(
            [
                f"room:      {report.room}",
                f"session:   {report.session_id}",
                f"source:    {report.source} ({report.source_restarts} capture rebuilds)",
                f"backend:   {report.backend}",
                f"frames:    {report.frames} analysed ({report.fps:.1f} fps), {report.frames_dropped} dropped",
                f"windows:   {report.windows} stored, {report.windows_dropped} dropped, "
                f"{report.windows_lost} lost to storage failures, "
                f"{report.explanations_shed} left unexplained (device busy)",
                f"words:     {report.utterances_skipped} stretches of speech left untranscribed (behind real time); "
                f"{report.quick_declined} quick passes declined (device busy); "
                f"{sum(report.words_refused.values())} transcript segments refused as not speech "
                f"({', '.join(f'{k} {v}' for k, v in sorted(report.words_refused.items())) or 'none'})",
                f"latency:   window complete -> stored: {report.latency_summary()}",
                f"mqtt:      {report.published} summaries acknowledged, {report.unpublished} waiting in the outbox",
                f"database:  {report.database}",
            ]
        ),
        flush=True,
    )


def _run(args: argparse.Namespace) -> int:
    # Heavy imports (GStreamer, MediaPipe, ONNX Runtime) only once a command needs them.
    from pydantic import ValidationError  # noqa: PLC0415

    from edge.control import Consent  # noqa: PLC0415
    from edge.runtime import Appliance  # noqa: PLC0415

    if args.duration is not None and args.duration <= 0:
        raise EdgeError(f"--duration must be a positive number of seconds, got {args.duration}")
    try:
        consent = Consent.model_validate(_consent(args))
    except ValidationError as exc:
        raise EdgeError(f"invalid consent: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    runner = _runner(args)
    _signals(runner)
    if isinstance(runner, Appliance):
        _print_report(runner.run(args.duration, consent=consent))
    else:
        for report in runner.run(args.duration, consent=consent):
            _print_report(report)
    return 0


def _runner(args: argparse.Namespace) -> Appliance | Device:
    """One room's appliance, or a device of several rooms sharing the models."""
    from edge.config import load_config  # noqa: PLC0415
    from edge.runtime import Appliance  # noqa: PLC0415
    from edge.runtime.device import Device  # noqa: PLC0415

    runner: Appliance | Device
    if len(args.config) == 1:
        runner = Appliance(load_config(args.config[0]), args.source)
    elif args.source is not None:
        raise EdgeError("--source overrides one room's source; with several --config, set capture.source in each")
    else:
        runner = Device([load_config(path) for path in args.config])
    frozen = settle_heap()  # what loading left lives as long as the process (edge.native)
    logger.info("loaded: %d objects kept out of garbage collection", frozen)
    return runner


def _serve(args: argparse.Namespace) -> int:
    runner = _runner(args)
    _signals(runner)
    for report in runner.serve():
        _print_report(report)
    return 0


def _control(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.control.local import SOCKET_NAME, send  # noqa: PLC0415

    config = load_config(args.config)
    command: dict[str, object] = {"command": args.action}
    if args.action == "start":
        if not (args.consent and args.consent_by):
            raise EdgeError("a session starts only with consent: give --consent and --consent-by")
        command["consent"] = _consent(args)
    if args.action == "explain":
        command["seconds"] = args.seconds
    if args.action == "erase":
        if not (args.session and args.requested_by):
            raise EdgeError("erase names the session and who asks: give --session and --requested-by")
        confirm = args.session[:8] if args.yes else input(f"erase session {args.session}? type {args.session[:8]}: ")
        command.update(session_id=args.session, requested_by=args.requested_by, confirm=confirm)
    reply = send(config.storage.state_dir / SOCKET_NAME, command)
    print(" ".join(f"{k}={v}" for k, v in reply.items()))
    return 0 if reply.get("result") == "ok" else 2


def _report(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.report.files import write_report  # noqa: PLC0415

    config = load_config(args.config)
    if args.list:
        from edge.store import Store  # noqa: PLC0415

        store = Store(config.storage.state_dir / config.storage.database, migrate_schema=False)
        try:
            for session_id, where, created in store.reports():
                print(f"{created}  {session_id}  {where}{'' if Path(where).exists() else '  (missing)'}")
        finally:
            store.close()
        return 0
    if not args.session_id:
        raise EdgeError("name the session to report on (clinic-edge report SESSION --config ROOM), or --list")
    from edge.review.show import resolve  # noqa: PLC0415

    for path in write_report(config, resolve(config, args.session_id), args.out, pdf=not args.no_pdf):
        print(f"report: {path}")
    return 0


def _dropin(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.systemd_dropin import render_dropin  # noqa: PLC0415

    text = render_dropin(load_config(args.config), args.config, jetson=args.jetson)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from edge.calibration.run import calibrate  # noqa: PLC0415

    if args.duration <= 0:
        raise EdgeError(f"--duration must be a positive number of seconds, got {args.duration}")
    return calibrate(
        args.config,
        source=args.source,
        duration_s=args.duration,
        region=args.region,
        technician=args.technician,
        note=args.note,
        as_json=args.json,
        write=args.write,
        report=args.report,
        save_preview=args.save_preview,
        checkerboard=args.checkerboard,
        square_mm=args.square_mm,
    )


def _staff_voice(args: argparse.Namespace) -> int:
    from edge.speakers.cli import staff_voice  # noqa: PLC0415

    return staff_voice(args)


def _evaluate(args: argparse.Namespace) -> int:
    from edge.evaluation.command import evaluate  # noqa: PLC0415

    return evaluate(args)


def _doctor(args: argparse.Namespace) -> int:
    from edge.doctor import doctor  # noqa: PLC0415

    return doctor(args.config, as_json=args.json)


COMMANDS = {
    "run": _run,
    "serve": _serve,
    "control": _control,
    "calibrate": _calibrate,
    "doctor": _doctor,
    "systemd-dropin": _dropin,
    "report": _report,
    "staff-voice": _staff_voice,
    "evaluate": _evaluate,
    "setup": setup_cli.run,
    **backup_cli.COMMANDS,
    **REVIEW_COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except EdgeError as exc:
        logger.error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
