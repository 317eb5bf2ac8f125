"""Dependencies imported on first use (edge.deferred): nothing of the module runs until an attribute
is read, it runs once however many threads read at once, and a room's faster-whisper leaves PyAV's
libraries unloaded while decoding a file still works."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from edge import deferred

ROOT = Path(__file__).resolve().parents[1]
RUNS = "_deferred_test_runs"  # a module in sys.modules where the probe package records its runs


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A package ``deferredprobe`` (with a submodule ``part``) that records each run of its code."""
    package = tmp_path / "deferredprobe"
    package.mkdir()
    record = f"import sys\nsys.modules[{RUNS!r}].runs.append(__name__)\n"
    (package / "__init__.py").write_text(record + "VALUE = 42\n")
    (package / "part.py").write_text(record + "PART = 'p'\n")
    runs: list[str] = []
    recorder = ModuleType(RUNS)
    recorder.runs = runs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, RUNS, recorder)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "deferredprobe", runs
    for name in [n for n in sys.modules if n.split(".")[0] == "deferredprobe"]:
        del sys.modules[name]


@pytest.mark.unit
def test_the_module_runs_when_an_attribute_is_first_read(probe: tuple[str, list[str]]) -> None:
    name, runs = probe
    stand_in = deferred.defer(name)
    assert isinstance(stand_in, deferred.DeferredModule)
    import deferredprobe  # type: ignore[import-not-found]

    assert deferredprobe is stand_in
    assert runs == []
    assert not stand_in.loaded
    assert deferredprobe.VALUE == 42
    assert runs == ["deferredprobe"]
    assert stand_in.loaded
    assert type(sys.modules[name]) is ModuleType  # the real module, for later imports
    assert deferredprobe.VALUE == 42
    assert runs == ["deferredprobe"]


@pytest.mark.unit
def test_a_submodule_import_loads_the_package_first(probe: tuple[str, list[str]]) -> None:
    name, runs = probe
    deferred.defer(name)
    import deferredprobe.part  # type: ignore[import-not-found]

    assert runs == ["deferredprobe", "deferredprobe.part"]
    assert deferredprobe.part.PART == "p"


@pytest.mark.unit
def test_concurrent_first_reads_run_the_module_once(probe: tuple[str, list[str]]) -> None:
    name, runs = probe
    stand_in = deferred.defer(name)
    assert stand_in is not None
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def read() -> None:
        barrier.wait()
        seen.append(stand_in.VALUE)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [42] * 8
    assert runs == ["deferredprobe"]


@pytest.mark.unit
def test_a_failing_module_raises_on_use_and_is_tried_again(probe: tuple[str, list[str]], tmp_path: Path) -> None:
    name, runs = probe
    source = tmp_path / name / "__init__.py"
    good = source.read_text()
    source.write_text("raise RuntimeError('broken install')\n")
    stand_in = deferred.defer(name)
    assert stand_in is not None
    with pytest.raises(RuntimeError, match="broken install"):
        _ = stand_in.VALUE
    assert sys.modules[name] is stand_in
    source.write_text(good)
    sys.path_importer_cache.clear()
    assert stand_in.VALUE == 42
    assert runs == ["deferredprobe"]


@pytest.mark.unit
def test_imported_or_missing_modules_are_left_alone() -> None:
    assert deferred.defer("json") is json
    assert deferred.defer("no_such_module_anywhere") is None
    assert "no_such_module_anywhere" not in sys.modules


ROOM = """
import json, sys
from edge.transcribe.faster import FasterWhisperTranscriber
from export.whisper_ggml import packaged_model_dir
import numpy as np, wave
with wave.open(sys.argv[1]) as w:
    audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
text = FasterWhisperTranscriber(packaged_model_dir()).transcribe(audio).text
maps = lambda: "/av.libs/" in open("/proc/self/maps").read()
before = {"av_mapped": maps(), "av_real": type(sys.modules["av"]).__name__ != "DeferredModule"}
from faster_whisper import decode_audio  # a file, decoded by PyAV
decoded = decode_audio(sys.argv[1])
print(json.dumps({**before, "text": text, "decoded": len(decoded), "after": maps()}))
"""


def test_a_rooms_whisper_leaves_pyav_unloaded_and_files_still_decode() -> None:
    jfk = ROOT / "tests" / "data" / "jfk.wav"
    out = subprocess.run(
        [sys.executable, "-c", ROOM, str(jfk)], capture_output=True, text=True, check=True, timeout=300, cwd=ROOT
    )
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["av_mapped"] is False
    assert result["av_real"] is False
    assert "ask not what your country can do for you" in result["text"].lower()
    assert result["decoded"] == 176_000  # 11 s at 16 kHz
    assert result["after"] is True
