"""``clinic-export train``: data -> person-wise split -> training with early stopping -> report.

The run folder receives ``last.pt`` (every epoch, resumable), ``best.pt`` (best validation
macro-F1), ``report.json``/``report.md``/``confusion.png`` (test split), ``heldout.npz`` (the test
split's inputs, for ``clinic-export onnx``/``verify``) and ``calibration.npz`` (training inputs for
INT8 calibration).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm

from export.data import scan
from export.data.inputs import Arrays, build_arrays
from export.data.split import split_by_person
from export.errors import DataError, ExportError
from export.models.blocks import Standardize
from export.models.fusion import FusionNet
from export.models.registry import AnySpec, FusionSpec, build_model, parse_spec
from export.train.config import TrainConfig
from export.train.report import Scores, confusion_png, score, write_report

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "clinic-export-checkpoint/1"


@dataclass(frozen=True)
class TrainResult:
    out: Path
    best_checkpoint: Path
    best_epoch: int
    epochs_run: int
    val: Scores
    test: Scores


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)  # libraries that draw from the legacy global state
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit_standardizers(model: nn.Module, x: npt.NDArray[np.float32]) -> None:
    """Set every :class:`Standardize` layer's statistics from the training inputs."""
    for layer in model.modules():
        if isinstance(layer, Standardize):
            reduce = tuple(i for i in range(x.ndim) if i != layer.axis)
            layer.fit(torch.from_numpy(x.mean(axis=reduce)), torch.from_numpy(x.std(axis=reduce)))


def forward(model: nn.Module, x: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    out: torch.Tensor = model(x, present) if isinstance(model, FusionNet) else model(x)
    return out


def predict(model: nn.Module, arrays: Arrays, batch_size: int = 256) -> npt.NDArray[np.float32]:
    """Probabilities ``(N, 8)`` in eval mode."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(arrays), batch_size):
            x = torch.from_numpy(arrays.x[start : start + batch_size])
            present = None if arrays.present is None else torch.from_numpy(arrays.present[start : start + batch_size])
            outs.append(torch.softmax(forward(model, x, present), dim=1).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 8), dtype=np.float32)


def _class_weights(y: npt.NDArray[np.int64]) -> torch.Tensor:
    counts = np.bincount(y, minlength=8).astype(np.float32)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(int((counts > 0).sum()), 1), 0.0)
    return torch.from_numpy(weights.astype(np.float32))


def _drop_modalities(present: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Hide each present modality with probability ``rate``, keeping at least one per item."""
    keep = (torch.rand(present.shape, generator=generator) >= rate).to(present.dtype)
    dropped = present * keep
    empty = dropped.sum(dim=1) == 0
    dropped[empty] = present[empty]
    return dropped


def save_checkpoint(path: Path, model: nn.Module, spec: AnySpec, extra: dict[str, Any]) -> Path:
    tmp = path.with_suffix(".pt.partial")
    torch.save(
        {"format": CHECKPOINT_FORMAT, "spec": spec.model_dump(mode="json"), "state_dict": model.state_dict(), **extra},
        tmp,
    )
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> tuple[nn.Module, AnySpec, dict[str, Any]]:
    """Rebuild the network of a checkpoint (tensors and plain values only: ``weights_only``).

    Raises:
        ExportError: missing, unreadable or not a clinic-export checkpoint.
    """
    if not path.is_file():
        raise ExportError(f"checkpoint not found: {path}; make one with `clinic-export train`")
    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for damaged files
        raise ExportError(f"checkpoint {path} is unreadable: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != CHECKPOINT_FORMAT:
        raise ExportError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    spec = parse_spec(body["spec"])
    model = build_model(spec)
    model.load_state_dict(body["state_dict"])
    model.eval()
    return model, spec, body


def _prepare(config: TrainConfig) -> dict[str, Arrays]:  # keys: train, val, test
    samples = []
    for source in config.data:
        samples.extend(scan(source.corpus, source.path))
    splits = split_by_person(
        samples, val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed
    )
    arrays: dict[str, Arrays] = {name: build_arrays(config.model, items, desc=name) for name, items in splits.items()}
    overlap = set(arrays["train"].persons) & (set(arrays["val"].persons) | set(arrays["test"].persons))
    if overlap:  # split_by_person guarantees this; checked again because a leak would void the report
        raise DataError(f"persons in more than one split: {sorted(overlap)[:5]}")
    return arrays


def _run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    train_set: Arrays,
    config: TrainConfig,
    generator: torch.Generator,
    epoch: int,
) -> float:
    """One pass over the training split in a seeded order; returns the mean loss."""
    model.train()
    x_all, y_all = torch.from_numpy(train_set.x), torch.from_numpy(train_set.y)
    p_all = None if train_set.present is None else torch.from_numpy(train_set.present)
    order = torch.randperm(len(train_set), generator=generator)
    total = 0.0
    bar = tqdm(
        range(0, len(order), config.batch_size), desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=None
    )
    for start in bar:
        idx = order[start : start + config.batch_size]
        if idx.numel() < 2 and len(order) > 1:
            continue  # batch norm needs two items
        present = None if p_all is None else _drop_modalities(p_all[idx], config.modality_dropout, generator)
        loss = loss_fn(forward(model, x_all[idx], present), y_all[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        total += value * idx.numel()
        bar.set_postfix(loss=f"{value:.3f}")
    return total / max(len(train_set), 1)


def _finish(
    config: TrainConfig,
    best: nn.Module,
    arrays: dict[str, Arrays],
    val: Scores,
    test: Scores,
    history: dict[str, Any],
    seconds: float,
) -> None:
    """Held-out and calibration arrays, the report and the confusion matrix."""
    test_set, train_set = arrays["test"], arrays["train"]
    test_set.save(config.out / "heldout.npz")
    rng = np.random.default_rng(config.seed)
    pick = np.sort(rng.permutation(len(train_set))[: config.calibration_items])
    Arrays(
        train_set.x[pick],
        train_set.y[pick],
        train_set.persons[pick],
        None if train_set.present is None else train_set.present[pick],
    ).save(config.out / "calibration.npz")
    spec = config.model
    report: dict[str, Any] = {
        "model": spec.model_dump(mode="json"),
        "parameters": sum(p.numel() for p in best.parameters()),
        "data": [{"corpus": d.corpus, "path": str(d.path)} for d in config.data],
        "seed": config.seed,
        **history,
        "seconds": round(seconds, 1),
        "split": {
            name: {"persons": len(set(a.persons)), "items": len(a), "person_ids": sorted(set(a.persons.tolist()))}
            for name, a in arrays.items()
        },
        "val": val.as_dict(),
        "test": test.as_dict(),
    }
    if isinstance(spec, FusionSpec):
        report["modalities"] = list(spec.modalities)
    write_report(config.out, report, test)
    confusion_png(test, config.out / "confusion.png", f"{spec.architecture}, test split")
    logger.info("test accuracy %.4f, macro-F1 %.4f; run folder %s", test.accuracy, test.macro_f1, config.out)


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train ``config.model`` on ``config.data`` and write the run folder.

    Raises:
        DataError: the data cannot be read or split.
        ExportError: a checkpoint to resume from is unusable.
    """
    started = time.monotonic()
    config.out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    generator = seed_everything(config.seed)
    arrays = _prepare(config)
    train_set, val_set, test_set = arrays["train"], arrays["val"], arrays["test"]
    model = build_model(config.model)
    fit_standardizers(model, train_set.x)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(train_set.y))
    best_f1, best_epoch, first_epoch, stale = -1.0, 0, 1, 0
    last_path, best_path = config.out / "last.pt", config.out / "best.pt"
    if resume and last_path.is_file():
        model, _, body = load_checkpoint(last_path)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        optimizer.load_state_dict(body["optimizer"])
        best_f1, best_epoch, stale = float(body["best_f1"]), int(body["best_epoch"]), int(body["stale"])
        first_epoch = int(body["epoch"]) + 1
        generator.manual_seed(config.seed + first_epoch)
        logger.info("resuming %s after epoch %d", config.out, first_epoch - 1)
    epoch = first_epoch - 1
    stopped_early = False
    for epoch in range(first_epoch, config.epochs + 1):
        mean_loss = _run_epoch(model, optimizer, loss_fn, train_set, config, generator, epoch)
        val = score(val_set.y, predict(model, val_set).argmax(1))
        logger.info(
            "epoch %d: train loss %.4f, val accuracy %.4f, macro-F1 %.4f",
            epoch,
            mean_loss,
            val.accuracy,
            val.macro_f1,
        )
        if val.macro_f1 > best_f1:
            best_f1, best_epoch, stale = val.macro_f1, epoch, 0
            save_checkpoint(best_path, model, config.model, {"epoch": epoch, "val": val.as_dict()})
        else:
            stale += 1
        save_checkpoint(
            last_path,
            model,
            config.model,
            {
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                "stale": stale,
            },
        )
        if stale >= config.patience:
            stopped_early = True
            logger.info("no better validation macro-F1 for %d epochs; stopping", stale)
            break
    best, _, body = load_checkpoint(best_path)
    val = Scores(**body["val"])
    test = score(test_set.y, predict(best, test_set).argmax(1))
    history = {"best_epoch": best_epoch, "epochs_run": epoch, "stopped_early": stopped_early}
    _finish(config, best, arrays, val, test, history, time.monotonic() - started)
    return TrainResult(config.out, best_path, best_epoch, epoch, val, test)
