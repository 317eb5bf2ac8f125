"""Whether a speech-to-text engine can run on the GPU here (a Jetson, or any CUDA machine).

whisper.cpp uses the GPU when the library was built with CUDA (``GGML_CUDA=1``, see docs/jetson.md,
"First boot on a Jetson"): its system information then names CUDA. faster-whisper runs on the GPU
when CTranslate2 was built with CUDA and sees a device. The words channel's ``device = "auto"``
picks the GPU in either case and says so; ``cpu`` and ``cuda`` force the choice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
_CUDA = re.compile(r"\bCUDA\b")


def whisper_cpp_info() -> str:
    """whisper.cpp's own account of its build (backends and CPU features); "" when not installed."""
    try:
        import _pywhispercpp  # noqa: PLC0415 - the native module pywhispercpp wraps
    except ImportError:
        return ""
    return str(_pywhispercpp.whisper_print_system_info())


def ctranslate2_cuda_devices() -> int:
    try:
        import ctranslate2  # noqa: PLC0415
    except ImportError:
        return 0
    return int(ctranslate2.get_cuda_device_count())


def whisper_cpp_on_gpu(device: Device, info: Callable[[], str] = whisper_cpp_info) -> bool:
    """Whether whisper.cpp will run on the GPU: its build has CUDA (and the room did not say cpu)."""
    built_with_cuda = bool(_CUDA.search(info()))
    if device == "cuda" and not built_with_cuda:
        logger.warning("words.device = cuda but this whisper.cpp build has no CUDA: it runs on the CPU")
    return built_with_cuda and device != "cpu"


def faster_whisper_device(device: Device, cuda_devices: Callable[[], int] = ctranslate2_cuda_devices) -> str:
    """faster-whisper's device: cuda when asked for or (auto) when CTranslate2 sees a CUDA device."""
    if device == "cpu":
        return "cpu"
    if cuda_devices() > 0:
        return "cuda"
    if device == "cuda":
        logger.warning("words.device = cuda but CTranslate2 sees no CUDA device: it runs on the CPU")
    return "cpu"
