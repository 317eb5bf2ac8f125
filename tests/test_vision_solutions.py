"""MediaPipe's solutions loaded without the rest of MediaPipe's package (edge.vision.solutions): face
detection and mesh give what they give with the full package, to the bit, and neither matplotlib nor
the Tasks API is imported."""

from __future__ import annotations

import json
import subprocess
import sys

RUN = """
import json, sys
import numpy as np
from skimage import data
if sys.argv[1] == "full":
    sys.modules["sounddevice"] = None
    import mediapipe
from edge.vision import FaceDetector
from edge.vision.skin import SkinSampler
detector, mesh = FaceDetector("full", 0.5), SkinSampler()
image = data.astronaut()
frames = [np.roll(image, 3 * i, axis=1) for i in range(12)] + [data.coffee(), image]
faces = [[(f.x, f.y, f.w, f.h, f.score, f.left_eye) for f in detector.detect(frame)] for frame in frames]
points = [None if (p := mesh.landmarks(frame)) is None else p.tolist() for frame in frames]
loaded = {m.split(".")[0] for m, v in sys.modules.items() if v is not None} & {"matplotlib", "sounddevice", "jax"}
loaded |= {m for m in sys.modules if m.startswith(("mediapipe.tasks", "mediapipe.python.solutions.drawing"))}
import mediapipe as mp  # afterwards, as another module of the process would
from edge.vision.solutions import solution
alias = mp.solutions.face_mesh is solution("face_mesh") and mp.solutions.face_detection is solution("face_detection")
print(json.dumps({"faces": faces, "points": points, "loaded": sorted(loaded), "alias": alias}))
"""


def _run(mode: str) -> dict[str, list[object]]:
    out = subprocess.run([sys.executable, "-c", RUN, mode], capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, list[object]] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_the_rooms_solutions_give_what_the_full_package_gives() -> None:
    room, full = _run("room"), _run("full")
    assert room["faces"] == full["faces"]  # boxes, scores and eyes, frame by frame
    assert room["points"] == full["points"]  # the mesh's 468 points, tracked across the frames
    assert [len(f) for f in room["faces"]] == [1] * 12 + [0, 1]  # Eileen Collins, once each; the coffee: none
    assert room["points"][-2] is None and all(p is not None for p in room["points"][:12])
    assert room["loaded"] == []  # no pyplot (31 MiB a room), no Tasks API, no audio library
    assert "matplotlib" in full["loaded"]  # what the full package costs
    assert room["alias"] and full["alias"]  # mediapipe.solutions.<name>, imported later, is the same module
