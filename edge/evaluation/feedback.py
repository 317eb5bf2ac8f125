"""Clinicians' judgements as labelled clips: ``clinic-edge evaluate --feedback``.

A window a therapist marked is a clip of that one window whose truth is the class they gave ("the
client seemed: ...") or, where they agreed, the room's own label; a disparity moment they gave a
class is a clip of the moment's windows, and a moment they called real ("agree") or not one
("disagree") is such a clip whose truth is that disparity (fit learns the threshold from these).
Sessions stand in for speakers in the intervals (clients are
never identified). The records go to ``<out>/clips`` like a corpus run's, so ``clinic-export fit``
reads them the same way; the words vary here, so fit may learn the words' weight from them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from contract.evaluation import ClipRecord
from edge.channels.registry import default_registry
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.evaluation.runner import CLIPS, window_record, write_record
from edge.report.data import load_session
from edge.store import Store
from edge.store.judgements import judgements

logger = logging.getLogger(__name__)


def feedback_records(config: AppConfig, out: Path) -> list[ClipRecord]:
    """Records of every judged window and moment of the room's sessions, also written to ``out``.

    Raises:
        StoreError: no database, or it cannot be read.
    """
    path = config.storage.state_dir / config.storage.database
    if not path.is_file():
        raise StoreError(f"no database at {path}; check storage.state_dir in the room config")
    registry = default_registry()
    store = Store(path, migrate_schema=False)
    try:
        judged = judgements(store)
    finally:
        store.close()
    (out / CLIPS).mkdir(parents=True, exist_ok=True)
    records: list[ClipRecord] = []
    sessions = {}
    for n, j in enumerate(judged):
        if j.kind == "session":
            continue
        if j.session_id not in sessions:
            sessions[j.session_id] = load_session(path, j.session_id, registry)
        session = sessions[j.session_id]
        disparate: bool | None = None
        if j.kind == "window":
            windows = [w for w in session.windows if w.index == j.window_index]
            label = j.label if j.verdict == "other" else (windows[0].label if windows else None)
        else:
            start, end = j.start_s or 0.0, j.end_s or 0.0
            windows = [w for w in session.windows if w.start_s < end and w.end_s > start]
            # "agree": a real moment; "disagree": none there; "other": the class the client seemed to show.
            label = j.label if j.verdict == "other" else None
            disparate = {"agree": True, "disagree": False}.get(j.verdict)
        if not windows or (label is None and disparate is None):
            continue
        record = ClipRecord(
            clip_id=f"feedback-{j.session_id}-{n}",
            corpus="feedback",
            path=f"{j.session_id}#{j.kind}-{j.window_index if j.kind == 'window' else j.start_s}",
            label=label,
            speaker=f"session-{j.session_id[:8]}",
            modality="audiovisual",
            words_applicable=True,
            disparate=disparate,
            windows=tuple(window_record(w, registry) for w in windows),
        )
        write_record(out, record)
        records.append(record)
    ratings = [j.rating for j in judged if j.kind == "session" and j.rating is not None]
    logger.info(
        "%d judgements: %d clips to score, %d session ratings (mean %s)",
        len(judged),
        len(records),
        len(ratings),
        f"{sum(ratings) / len(ratings):.1f}" if ratings else "-",
    )
    return records
