"""``clinic-edge evaluate``: labelled corpora (or clinicians' judgements) through the room, scored."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.config.models import AppConfig
from edge.evaluation import report
from edge.evaluation.corpora import Clip, CorpusLayoutError, read_corpus
from edge.evaluation.runner import read_records, run

logger = logging.getLogger(__name__)


def room_summary(config: AppConfig) -> dict[str, Any]:
    """What of the room's config the scores depend on, written beside them."""
    from edge.inference.pack import open_pack, trust_pack  # noqa: PLC0415

    pack: dict[str, Any] | None = None
    if config.models.pack is not None:
        trust_pack(config.models)
        index = open_pack(config.models.pack)
        pack = {"path": str(config.models.pack), "name": index.name, "release": index.release}
    channels = config.channels
    return {
        "pack": pack,
        "precision": config.models.precision,
        "channels": {
            "voice": channels.voice.enabled,
            "words": str(channels.words.enabled),
            "pulse": channels.pulse.enabled,
        },
        "fusion": config.fusion.model_dump(mode="json"),
        "voice_tempering": channels.voice.tempering,
        "disparity": config.disparity.model_dump(mode="json"),
    }


def trained_on(config: AppConfig) -> set[str]:
    """Speakers the pack's models were trained or fitted on, as its model cards list them."""
    from edge.inference.pack import open_pack, trust_pack  # noqa: PLC0415

    if config.models.pack is None:
        return set()
    trust_pack(config.models)
    index = open_pack(config.models.pack)
    speakers = {s for m in index.models.values() if m.card is not None for s in getattr(m.card, "speakers", ())}
    if index.calibration is not None:
        speakers |= set(index.calibration.speakers)
    return speakers


def evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.feedback:
        from edge.evaluation.feedback import feedback_records  # noqa: PLC0415

        if args.corpus:
            raise CorpusLayoutError("give --corpus or --feedback, not both")
        records = feedback_records(config, out)
        warnings: list[str] = []
    else:
        if not args.corpus:
            raise CorpusLayoutError("name at least one --corpus KIND=PATH (or --feedback)")
        clips: list[Clip] = [clip for spec in args.corpus for clip in read_corpus(spec)]
        ids = [c.id for c in clips]
        if len(set(ids)) != len(ids):
            raise CorpusLayoutError("two corpora hold the same clip (a folder given twice?)")
        overlap = sorted(trained_on(config) & {c.speaker for c in clips})
        warnings = (
            [f"{len(overlap)} speakers of this corpus were in the pack's training or fitting: {', '.join(overlap[:8])}"]
            if overlap
            else []
        )
        for w in warnings:
            logger.warning("%s", w)
        logger.info("%d clips from %d speakers; results in %s", len(clips), len({c.speaker for c in clips}), out)
        run(config, clips, out, max(1, args.workers), progress=not args.no_progress)
        wanted = set(ids)
        records = [r for r in read_records(out) if r.clip_id in wanted]
    body = report.evaluation(records, room_summary(config), warnings)
    paths = report.write(out, body)
    fused = body["predictors"].get("fused", {})
    if fused.get("n_clips"):
        print(
            f"fused: accuracy {100 * fused['accuracy']:.1f} %, UAR {100 * fused['uar']:.1f} % over {fused['n_clips']} "
            f"clips (coverage {100 * fused['coverage']:.1f} %)"
        )
    print("\n".join(str(p) for p in paths))
    return 0
