"""Plain NumPy classification metrics used by callbacks, evaluate and the training summary, and the confusion
matrix drawn as a PNG (matplotlib, loaded on first use)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts; rows are the true class, columns the prediction."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


def classification_report(cm: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro F1 and per-class precision/recall/F1/support from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    per_class = {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                         "support": int(support[i])} for i, label in enumerate(labels)}
    present = support > 0
    return {"accuracy": float(tp.sum() / max(cm.sum(), 1)),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "per_class": per_class}


def format_report(report: dict) -> str:
    """A printable table of a :func:`classification_report`."""
    width = max([len(k) for k in report["per_class"]] + [5])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for label, m in report["per_class"].items():
        lines.append(f"{label:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {m['support']:7d}")
    lines.append(f"accuracy {report['accuracy']:.4f}   macro F1 {report['macro_f1']:.4f}   "
                 f"({sum(m['support'] for m in report['per_class'].values())} clips)")
    return "\n".join(lines)


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level word and character error rates (jiwer: total edits / total reference words or chars).

    Pairs whose reference is empty after normalisation are skipped (WER is undefined for them).
    """
    import jiwer

    pairs = [(r.strip(), h.strip()) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return {"wer": 0.0, "cer": 0.0}
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def plot_confusion_matrix(cm: np.ndarray, labels: Sequence[str], path: Path, title: str = "") -> Path:
    """Save a confusion matrix (rows: truth, columns: prediction) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n), dpi=110)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
