"""The arguments of ``clinic-edge evaluate``; the work is imported when it runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="how right the room is: labelled recordings through its own pipeline, scored"
    )
    evaluate.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    evaluate.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="ravdess=FOLDER, cremad=FOLDER or manifest=FILE.csv (path,label[,speaker][,valence,arousal]); repeatable",
    )
    evaluate.add_argument("--feedback", action="store_true", help="score against the clinicians' judgements instead")
    evaluate.add_argument("--out", type=Path, required=True, help="results folder (a rerun resumes there)")
    evaluate.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 2)), help="worker processes")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
