"""``python -m kwslab.evaluate --ckpt C --manifest M [--json] [--png P]``: accuracy, per-class precision/recall/F1
and the confusion matrix (printed and saved as a PNG) of a trained keyword model on a manifest.

Rows whose keyword the model does not know are listed and the run stops (exit 2), unless ``--skip-unknown``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from kwslab.callbacks import plot_confusion_matrix
from kwslab.checkpoint import CheckpointError
from kwslab.data.manifest import ManifestError, read_manifest
from kwslab.inference import load_model
from kwslab.metrics import classification_report, confusion_matrix, format_report


class EvaluationError(ValueError):
    """A manifest that cannot be evaluated with this model (message says why and what to do)."""


def evaluate_keywords(ckpt: str | Path, manifest: str | Path, *, skip_unknown: bool = False,
                      batch_size: int = 64, png: str | Path | None = None) -> dict:
    """Evaluate a keyword checkpoint on a manifest; returns the report dict (plus confusion matrix and PNG path)."""
    model = load_model(ckpt)
    rows = read_manifest(manifest, need_keyword=True)
    index = {label: i for i, label in enumerate(model.labels)}
    unknown = Counter(r.keyword for r in rows if r.keyword not in index)
    if unknown and not skip_unknown:
        listed = ", ".join(f"{k!r} ({n} rows)" for k, n in unknown.most_common())
        raise EvaluationError(f"{manifest}: keywords the model does not know: {listed}. The model knows: "
                              f"{', '.join(model.labels)}. Map them in the manifest or pass --skip-unknown.")
    rows = [r for r in rows if r.keyword in index]
    if not rows:
        raise EvaluationError(f"{manifest}: no row has a keyword the model knows ({', '.join(model.labels)})")
    preds = []
    for start in range(0, len(rows), batch_size):
        feats = [model.features(r.path) for r in rows[start:start + batch_size]]
        preds.append(model.logits(feats).argmax(-1).numpy())
    targets = np.array([index[r.keyword] for r in rows])
    cm = confusion_matrix(targets, np.concatenate(preds), len(model.labels))
    report = classification_report(cm, model.labels)
    png = Path(png) if png else Path(ckpt).with_name(f"confusion_{Path(manifest).stem}.png")
    plot_confusion_matrix(cm, model.labels, png, title=f"{Path(manifest).name}")
    return {**report, "confusion_matrix": cm.tolist(), "labels": model.labels, "png": str(png),
            "skipped_unknown": dict(unknown), "clips": len(rows)}


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    """Rows: true class; columns: predicted."""
    w = max(max(len(s) for s in labels), max(len(str(v)) for row in cm for v in row)) + 1
    lines = [" " * w + " " + "".join(f"{s:>{w}}" for s in labels)]
    lines += [f"{labels[i]:>{w}} " + "".join(f"{v:>{w}}" for v in row) for i, row in enumerate(cm)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by python -m kwslab.fit")
    parser.add_argument("--manifest", required=True, help="CSV manifest with filename and keyword columns")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--png", help="where to save the confusion matrix (default: beside the checkpoint)")
    parser.add_argument("--skip-unknown", action="store_true", help="drop rows whose keyword the model lacks")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        result = evaluate_keywords(args.ckpt, args.manifest, skip_unknown=args.skip_unknown,
                                   batch_size=args.batch_size, png=args.png)
    except (CheckpointError, ManifestError, EvaluationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_report(result))
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(format_confusion(result["confusion_matrix"], result["labels"]))
    if result["skipped_unknown"]:
        print(f"skipped rows with unknown keywords: {result['skipped_unknown']}")
    print(f"\nconfusion matrix PNG: {result['png']}")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
