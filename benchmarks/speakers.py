"""Speaker attribution's error rates on conversations made here, at the room's default thresholds.

Each conversation has a staff member (enrolled from about 12 s of their speech, as
``clinic-edge staff-voice enroll`` does) and a client taking turns (five client turns, four staff
turns between them, pauses of 0.4 s; about 45 s). Voices: espeak-ng's English voices with
different variants (a hard case: one synthesiser, similar timbres); jfk.wav (a real recording) as
a client against each staff voice; and, where Debian's pocketsphinx-testdata is installed, its
LibriVox reader as staff with jfk.wav and its card-reading speaker as clients (real voices on both
sides). The room's windows (2.5 s every 1 s) are cut from the conversation, voice activity found as
in the room, and every voiced 10 ms frame's attribution compared with who really spoke:

  staff analysed   staff frames taken for the client (the privacy error: staff speech analysed)
  client lost      client frames taken for staff (the client's speech not analysed)
  unknown          frames left unattributed (not analysed at the default ``speakers.unknown``)

Usage: .venv/bin/python benchmarks/speakers.py [--pack build/models/pack] [--pairs N]
Writes benchmarks/results/speakers-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from results_io import tag, write_results

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "build" / "models" / "pack"
JFK = ROOT / "tests" / "data" / "jfk.wav"
# Real recordings Debian ships (pocketsphinx-testdata): a LibriVox reader, and one speaker reading cards.
SPHINX = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = tuple(
    SPHINX / "librivox" / f"sense_and_sensibility_01_austen_64kb-0{n}.wav" for n in (870, 890, 920, 880, 930)
)
CARDS = tuple(SPHINX / "cards" / f"00{n}.wav" for n in range(1, 6))
RATE = 16_000
VOICES = ("en-us+m1", "en-gb+f2", "en+f4", "en-gb-scotland", "en-029+m7", "en-us+f3")
ENROL = (
    "My name is on the door and I have worked in this clinic for some years now.",
    "Please take a seat, we can start whenever you are ready, there is no hurry at all.",
    "Let us look at what we talked about last time and how the week went for you.",
)
STAFF_TURNS = (
    "How did that make you feel when it happened?",
    "What do you think would help you most this week?",
    "That sounds really hard. Can you tell me more about the mornings?",
    "We have a few minutes left, so let us think about next steps.",
)
CLIENT_TURNS = (
    "I keep thinking about what my sister said at dinner, and it still upsets me.",
    "Sometimes I wake up at four in the morning and cannot get back to sleep.",
    "I suppose I just want things to feel normal again, like they were before.",
    "The mornings are the worst part, I lie there and go over everything again.",
    "Maybe I could call her this week and try to talk it through properly.",
)


@dataclass
class Confusion:
    """Voiced frames by who spoke (rows) and whom they were attributed to (columns)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    windows: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, truth: str, said: str, n: int) -> None:
        self.counts[(truth, said)] = self.counts.get((truth, said), 0) + n

    def rate(self, truth: str, said: str) -> float:
        total = sum(v for (t, _), v in self.counts.items() if t == truth)
        return self.counts.get((truth, said), 0) / total if total else 0.0

    def merge(self, other: Confusion) -> None:
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.windows += other.windows
        self.ms += other.ms


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def conversation(
    staff: list[npt.NDArray[np.float32]], client: list[npt.NDArray[np.float32]]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    """Turns client, staff, client, ..., client, and who speaks at each sample (0 nobody, 1 client,
    2 staff)."""
    pause = np.zeros(round(0.4 * RATE), dtype=np.float32)
    parts, owners = [pause], [np.zeros(pause.shape[0], dtype=np.int8)]
    for i in range(2 * min(len(client), len(staff) + 1) - 1):
        turn, owner = (client[i // 2], 1) if i % 2 == 0 else (staff[i // 2], 2)
        parts += [turn, pause]
        owners += [np.full(turn.shape[0], owner, dtype=np.int8), np.zeros(pause.shape[0], dtype=np.int8)]
    return np.concatenate(parts), np.concatenate(owners)


def run_conversation(
    encoder: Any, staff_audio: npt.NDArray[np.float32], staff_turns: list[Any], client_turns: list[Any]
) -> Confusion:
    from clinic_signals.audio import LogMel
    from edge.audio.vad import SpeechStream, voice_activity
    from edge.config.models import AudioConfig, SpeakersConfig
    from edge.speakers.attribution import SpeakerSession
    from edge.speakers.staff import StaffEmbeddings, speech_only

    audio_config, config = AudioConfig(), SpeakersConfig()
    enrolled = StaffEmbeddings(("staff",), encoder.embed(speech_only(staff_audio, audio_config))[None])
    session = SpeakerSession(encoder, enrolled, config)
    audio, owner = conversation(staff_turns, client_turns)
    logmel = LogMel(n_mels=audio_config.n_mels)
    stream = SpeechStream(audio_config.vad_threshold) if audio_config.vad == "silero" else None  # the session's
    confusion = Confusion()
    length, hop = round(2.5 * RATE), RATE
    for start in range(0, audio.shape[0] - length + 1, hop):
        window = audio[start : start + length]
        activity = voice_activity(window, logmel, audio_config, stream, start)  # as the room finds it
        t0 = time.perf_counter()
        heard = activity.energy_voiced if activity.energy_voiced is not None else activity.voiced  # as the room
        attributed = session.attribute(window, heard, logmel.hop, start / RATE)
        confusion.ms.append((time.perf_counter() - t0) * 1e3)
        confusion.windows += 1
        frames = np.flatnonzero(heard)
        truth = owner[start + frames * logmel.hop + logmel.win // 2]
        for j, who in zip(frames, truth, strict=True):
            if who == 0:
                continue  # voiced by the detector in a pause: nobody to be right about
            confusion.add("client" if who == 1 else "staff", str(attributed.labels[j]), 1)
    return confusion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, default=PACK)
    parser.add_argument(
        "--trusted-key", type=Path, default=ROOT / "build" / "keys" / "pack-signing.key.pub", help="the pack's signer"
    )
    parser.add_argument("--pairs", type=int, default=0, help="at most this many voice pairs (0: all)")
    args = parser.parse_args()
    from edge.config.models import ModelsConfig, OnnxRuntimeBackendConfig
    from edge.inference.engine import create_engine
    from edge.inference.manifest import load_manifest
    from edge.inference.pack import select_model, trust_pack
    from edge.speakers.encoder import SpeakerEncoder
    from export.speaker import speak

    trust_pack(ModelsConfig(pack=args.pack, trusted_keys=[args.trusted_key]))
    path = select_model(args.pack, "speaker", "fp32")
    encoder = SpeakerEncoder(create_engine(path, load_manifest(path), [OnnxRuntimeBackendConfig()]))
    enrol = {v: np.concatenate([speak(s, v) for s in ENROL]) for v in VOICES}
    staff_turns = {v: [speak(s, v) for s in STAFF_TURNS] for v in VOICES}
    client_turns: dict[str, list[Any]] = {v: [speak(s, v) for s in CLIENT_TURNS] for v in VOICES}
    jfk = read_wav(JFK)
    third = jfk.shape[0] // 3
    client_turns["jfk.wav"] = [jfk[:third], jfk[third : 2 * third], jfk[2 * third :]]  # three turns
    pairs = [(s, c) for s, c in itertools.permutations([*VOICES, "jfk.wav"], 2) if s != "jfk.wav"]
    if args.pairs:
        pairs = pairs[: args.pairs]
    if all(p.is_file() for p in (*LIBRIVOX, *CARDS)):  # real voices on both sides
        reader = [read_wav(p) for p in LIBRIVOX]
        enrol["librivox"] = np.concatenate(reader[:3])
        staff_turns["librivox"] = reader[3:]
        client_turns["cards"] = [np.concatenate([read_wav(p) for p in CARDS[:3]]), *(read_wav(p) for p in CARDS[3:])]
        pairs += [("librivox", "jfk.wav"), ("librivox", "cards")]
    rows, total = [], Confusion()
    for staff, client in pairs:
        confusion = run_conversation(encoder, enrol[staff], staff_turns[staff], client_turns[client])
        total.merge(confusion)
        rows.append(
            {
                "staff": staff,
                "client": client,
                "staff_analysed": round(confusion.rate("staff", "client"), 4),
                "client_lost": round(confusion.rate("client", "staff"), 4),
                "client_unknown": round(confusion.rate("client", "unknown"), 4),
                "staff_unknown": round(confusion.rate("staff", "unknown"), 4),
            }
        )
    summary = {
        "pairs": len(pairs),
        "windows": total.windows,
        "staff_analysed": round(total.rate("staff", "client"), 4),
        "client_lost": round(total.rate("client", "staff"), 4),
        "client_unknown": round(total.rate("client", "unknown"), 4),
        "staff_unknown": round(total.rate("staff", "unknown"), 4),
        "client_analysed": round(total.rate("client", "client"), 4),
        "attribution_ms_p50": round(float(np.percentile(total.ms, 50)), 2),
        "attribution_ms_p95": round(float(np.percentile(total.ms, 95)), 2),
    }
    md = [
        f"# Speaker attribution ({tag()})",
        "",
        f"{summary['pairs']} conversations, {summary['windows']} windows of 2.5 s, default thresholds.",
        "",
        "| measure | share of voiced frames |",
        "| --- | --- |",
        f"| staff speech analysed as the client's | {100 * summary['staff_analysed']:.1f} % |",
        f"| staff speech left unknown (not analysed) | {100 * summary['staff_unknown']:.1f} % |",
        f"| client speech analysed | {100 * summary['client_analysed']:.1f} % |",
        f"| client speech taken for staff | {100 * summary['client_lost']:.1f} % |",
        f"| client speech left unknown | {100 * summary['client_unknown']:.1f} % |",
        "",
        f"Attribution cost per window: p50 {summary['attribution_ms_p50']} ms, p95 {summary['attribution_ms_p95']} ms.",
        "",
        "| staff | client | staff analysed | staff unknown | client lost | client unknown |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['staff']} | {r['client']} | {100 * r['staff_analysed']:.1f} % | {100 * r['staff_unknown']:.1f} % "
            f"| {100 * r['client_lost']:.1f} % | {100 * r['client_unknown']:.1f} % |"
            for r in rows
        ),
    ]
    write_results(
        ROOT / "benchmarks" / "results", "speakers", {"summary": summary, "pairs": rows}, "\n".join(md) + "\n"
    )


if __name__ == "__main__":
    main()
