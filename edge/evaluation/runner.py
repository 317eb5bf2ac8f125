"""Labelled clips through the room's own pipeline, unpaced, in worker processes, resumable.

Each clip is one session of the room, at the room's config, from its file: capture, face region,
speaker attribution, every channel, fusion and disparity are the code the room runs (there is no
second path). What changes for a clip is only what cannot matter to its result: the session's state
folder is a temporary one (deleted with everything in it after the clip), nothing is published,
no metrics endpoint, no explanations (they explain a result, they do not change it). What is kept is
the clip's record (:class:`contract.evaluation.ClipRecord`): its labels and the room's per-window
outputs, written atomically to ``<out>/clips/<clip id>.json``. A rerun skips clips that have one.
"""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from contract.evaluation import ClipRecord, VoteRecord, WindowRecord
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.control.commands import Consent
from edge.errors import EdgeError
from edge.evaluation.corpora import Clip
from edge.inference.shared import SharedEngines
from edge.report.data import StoredWindow, load_session

logger = logging.getLogger(__name__)

CONSENT = Consent(method="written", recorded_by="evaluation")  # the corpus's own consent covers its clips
CLIPS = "clips"


def clip_config(config: AppConfig, state_dir: Path) -> AppConfig:
    """The room's config for one clip: its own temporary state, nothing published or served."""
    return config.model_copy(
        update={
            "storage": config.storage.model_copy(update={"state_dir": state_dir}),
            "mqtt": config.mqtt.model_copy(update={"enabled": False}),
            "metrics": config.metrics.model_copy(update={"enabled": False}),
            "explain": config.explain.model_copy(update={"when": "off"}),
            "capture": config.capture.model_copy(update={"realtime_files": False}),
        }
    )


def window_record(window: StoredWindow, registry: ChannelRegistry) -> WindowRecord:
    votes = []
    for vote in registry.votes(window.channels):
        result = window.channels.get(vote.name)
        cue = getattr(result, "affect_confidence", None)
        votes.append(
            VoteRecord(
                name=vote.name,
                probs=tuple(vote.probs) if vote.probs else None,
                quality=vote.quality,
                reliability=vote.reliability,
                affect=vote.affect,
                cue_confidence=cue,
                from_cues=getattr(result, "method", None) == "acoustic" and vote.probs is not None,
            )
        )
    return WindowRecord(
        index=window.index,
        start_s=window.start_s,
        end_s=window.end_s,
        votes=tuple(votes),
        fused=window.probs,
        label=window.label,
        state=window.state,
        disparity=window.disparity,
    )


def _record(clip: Clip, **fields: Any) -> ClipRecord:
    return ClipRecord(
        clip_id=clip.id,
        corpus=clip.corpus,
        path=clip.relative,
        label=clip.label,
        speaker=clip.speaker,
        modality=clip.modality,
        words_applicable=clip.words_applicable,
        disparate=clip.disparate,
        intensity=clip.intensity,
        statement=clip.statement,
        valence=clip.valence,
        arousal=clip.arousal,
        **fields,
    )


def analyse_clip(clip: Clip, config: AppConfig, engines: SharedEngines, registry: ChannelRegistry) -> ClipRecord:
    """One clip as one session of the room; a clip the room cannot analyse is recorded with why."""
    from edge.runtime import Appliance  # noqa: PLC0415 - the runtime is loaded in the workers only

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clinic-eval-") as tmp:
        room = clip_config(config, Path(tmp))
        try:
            report = Appliance(room, clip.path.as_uri(), engines=engines, registry=registry).run(consent=CONSENT)
            session = load_session(Path(tmp) / room.storage.database, report.session_id, registry)
        except EdgeError as exc:
            logger.warning("%s: %s", clip.relative, exc)
            return _record(clip, seconds=time.perf_counter() - started, error=str(exc)[:500])
    return _record(
        clip,
        seconds=round(time.perf_counter() - started, 3),
        windows=tuple(window_record(w, registry) for w in session.windows),
        events=len(session.events),
    )


def record_path(out: Path, clip_id: str) -> Path:
    return out / CLIPS / f"{clip_id}.json"


def write_record(out: Path, record: ClipRecord) -> None:
    """Atomically: a clip interrupted half-way is not mistaken for a finished one."""
    path = record_path(out, record.clip_id)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(record.model_dump_json(), encoding="utf-8")
    tmp.replace(path)


def read_records(out: Path) -> list[ClipRecord]:
    return [ClipRecord.model_validate_json(p.read_text(encoding="utf-8")) for p in sorted((out / CLIPS).glob("*.json"))]


_worker: dict[str, Any] = {}


def _start_worker(config: AppConfig, out: Path, quiet: bool = True) -> None:
    if quiet:  # a worker process of its own: a clip's warnings go into its record, not the terminal
        logging.getLogger("edge").setLevel(logging.ERROR)
    # Models stay loaded from one clip to the next (each clip is a session of the same room).
    _worker.update(config=config, out=out, engines=SharedEngines(keep=True), registry=default_registry())


def _work(clip: Clip) -> tuple[str, float, str | None]:
    record = analyse_clip(clip, _worker["config"], _worker["engines"], _worker["registry"])
    write_record(_worker["out"], record)
    return clip.id, record.seconds, record.error


def run(config: AppConfig, clips: Sequence[Clip], out: Path, workers: int = 2, *, progress: bool = True) -> int:
    """Analyse every clip without a record in ``out``; returns how many were analysed now."""
    (out / CLIPS).mkdir(parents=True, exist_ok=True)
    todo = [c for c in clips if not record_path(out, c.id).is_file()]
    if len(todo) < len(clips):
        logger.info("%d of %d clips analysed before: resuming with %d", len(clips) - len(todo), len(clips), len(todo))
    if not todo:
        return 0
    columns = (
        TextColumn("[evaluate]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("clips"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    failed = 0
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("clips", total=len(todo))
        if workers <= 1:
            _start_worker(config, out, quiet=False)
            results = (_work(c) for c in todo)
            for _, _, error in results:
                failed += error is not None
                bar.advance(task)
        else:
            context = multiprocessing.get_context("spawn")  # GStreamer and ONNX Runtime do not survive fork
            with context.Pool(workers, initializer=_start_worker, initargs=(config, out), maxtasksperchild=200) as pool:
                for _, _, error in pool.imap_unordered(_work, todo):
                    failed += error is not None
                    bar.advance(task)
    if failed:
        logger.warning("%d of %d clips could not be analysed (their records say why)", failed, len(todo))
    return len(todo)
