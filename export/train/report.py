"""Evaluation: accuracy, macro-F1, Cohen's kappa, per-class precision/recall, confusion matrix."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from contract.classes import CLASSES


@dataclass(frozen=True)
class Scores:
    """Scores on one labelled set. Macro averages run over the classes the set contains."""

    items: int
    accuracy: float
    macro_f1: float
    kappa: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64]) -> Scores:
    present = sorted(int(c) for c in np.unique(y_true))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    kappa = cohen_kappa_score(y_true, y_pred) if len(np.unique(np.concatenate([y_true, y_pred]))) > 1 else 1.0
    return Scores(
        items=int(y_true.shape[0]),
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        kappa=float(kappa),
        per_class={
            CLASSES[c]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(present)
        },
        confusion=confusion_matrix(y_true, y_pred, labels=list(range(len(CLASSES)))).tolist(),
    )


def confusion_png(scores: Scores, path: Path, title: str) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    matrix = np.asarray(scores.confusion)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {scores.accuracy:.3f}, macro-F1 {scores.macro_f1:.3f}, kappa {scores.kappa:.3f}")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(out: Path, body: dict[str, Any], test: Scores) -> tuple[Path, Path]:
    """``report.json`` (everything) and ``report.md`` (the summary a person reads)."""
    json_path = out / "report.json"
    json_path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    sources = ", ".join(f"{d['corpus']} ({d['path']})" for d in body["data"])
    lines = [
        f"# Training report: {body['model']['architecture']}",
        "",
        f"Data: {sources}; seed {body['seed']}; "
        f"best epoch {body['best_epoch']} of {body['epochs_run']}"
        f"{' (stopped early)' if body['stopped_early'] else ''}.",
        "Split by person: "
        + ", ".join(
            f"{name} {split['persons']} persons / {split['items']} items" for name, split in body["split"].items()
        )
        + ".",
        "",
        "| test set | value |",
        "| --- | --- |",
        f"| accuracy | {test.accuracy:.4f} |",
        f"| macro-F1 | {test.macro_f1:.4f} |",
        f"| Cohen's kappa | {test.kappa:.4f} |",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {int(v['support'])} |"
            for name, v in test.per_class.items()
        ),
        "",
        "![confusion matrix](confusion.png)",
        "",
    ]
    md_path = out / "report.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path
