"""Compose the bundled demo clip from assets that installed packages ship.

Video: scikit-image's astronaut photograph (a real, smiling face) drifting slowly on a grey
background, with a cut-away of three and a half seconds to a picture without a face (scikit-image's coffee cup) so
the demo also shows the 'no_face' flag. Audio: speech synthesised by espeak-ng, with pauses, so the
demo shows voice activity and silence. Composed by ``make_scene.py`` (H.264 + Vorbis in Matroska).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from make_scene import Shot, compose

DURATION_S = 14.0
CUTAWAY_S = (7.0, 10.5)
SPEECH = [
    (1.0, "Hello. This week has been really good, and I am feeling much better."),
    (7.5, "I went for a long walk with my sister and we laughed a lot."),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=1, help="the 14 s scene this many times (longer benchmarks)")
    args = parser.parse_args()
    duration = DURATION_S * args.repeat
    shots = [
        Shot(k * DURATION_S + t, photo)
        for k in range(args.repeat)
        for t, photo in ((0.0, "astronaut"), (CUTAWAY_S[0], "coffee"), (CUTAWAY_S[1], "astronaut"))
    ]
    speech = [(start + k * DURATION_S, text) for k in range(args.repeat) for start, text in SPEECH]
    compose(args.out, shots, speech, duration)
    print(f"demo clip: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
