"""``clinic-edge staff-voice enroll|list|remove``: staff enrol their voice once, so that their speech
is recognised and never analysed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is built on every command: models and numpy load only for this one
    from edge.config.models import AppConfig
    from edge.speakers.encoder import SpeakerEncoder
    from edge.speakers.staff import StaffVoices


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    voice = sub.add_parser(
        "staff-voice", help="enrol, list or remove staff voices (staff speech is recognised and never analysed)"
    )
    actions = voice.add_subparsers(dest="action", required=True)
    enroll = actions.add_parser("enroll", help="store a staff member's voice embedding (never the recording)")
    enroll.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    enroll.add_argument("--staff-id", required=True, help="the staff member's id in the clinic")
    enroll.add_argument("--audio", type=Path, required=True, help="16-bit PCM WAV, at least 10 s of their speech")
    enroll.add_argument("--consent", required=True, metavar="REF", help="reference of the staff member's consent")
    listing = actions.add_parser("list", help="who is enrolled, when, with which consent reference")
    listing.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    remove = actions.add_parser("remove", help="delete a staff member's enrolment")
    remove.add_argument("--config", type=Path, required=True, help="room configuration (TOML)")
    remove.add_argument("--staff-id", required=True)


def staff_voices(config: AppConfig) -> StaffVoices:
    from edge.channels.sessions import staff_dir  # noqa: PLC0415
    from edge.speakers.staff import StaffVoices  # noqa: PLC0415

    state = config.storage.state_dir
    owner = None
    if os.geteuid() == 0 and state.is_dir():  # root enrols for the service's user
        st = state.stat()
        owner = (st.st_uid, st.st_gid)
    return StaffVoices(staff_dir(config), owner)


def speaker_encoder(config: AppConfig) -> SpeakerEncoder:
    from edge.errors import ConfigError  # noqa: PLC0415
    from edge.inference.engine import create_engine  # noqa: PLC0415
    from edge.inference.manifest import load_manifest  # noqa: PLC0415
    from edge.inference.pack import open_pack, select_model, trust_pack  # noqa: PLC0415
    from edge.speakers.encoder import SpeakerEncoder  # noqa: PLC0415

    pack = config.models.pack
    trust_pack(config.models)
    if pack is None or not any(m.role == "speaker" for m in open_pack(pack).models.values()):
        where = "the room has no models.pack" if pack is None else f"{pack} has no speaker encoder"
        raise ConfigError(f"cannot enrol voices: {where} (add it with `clinic-export speaker --pack PACK`)")
    path = select_model(pack, "speaker", "fp32")
    return SpeakerEncoder(create_engine(path, load_manifest(path), config.inference.backends))


def staff_voice(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.speakers.staff import read_wav  # noqa: PLC0415

    config = load_config(args.config)
    voices = staff_voices(config)
    if args.action == "enroll":
        encoder = speaker_encoder(config)
        try:
            voice = voices.enroll(args.staff_id, args.consent, read_wav(args.audio), encoder, config.audio)
        finally:
            encoder.engine.close()
        print(f"enrolled {voice.staff_id}: {voice.speech_s:.0f} s of speech, consent {voice.consent}")
        print(f"stored: {voices.folder / (voice.staff_id + '.json')} (the embedding only)")
    elif args.action == "list":
        enrolled = voices.list()
        for v in enrolled:
            print(f"{v.staff_id}\tenrolled {v.enrolled_at}\tconsent {v.consent}\t{v.speech_s:.0f} s\t{v.encoder}")
        if not enrolled:
            print(f"nobody is enrolled in {voices.folder}")
    else:
        voices.remove(args.staff_id)
        print(f"removed {args.staff_id}")
    return 0
