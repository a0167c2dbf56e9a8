"""What BatchNorm adaptation gains, measured cross-fold: no clip is scored by a model adapted on it.

Used by ``python -m kwslab.evaluate --adapt-folds N``.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from kwslab.adaptation.batchnorm import adapt_model
from kwslab.adaptation.common import AdaptationError
from kwslab.inference.loaded import LoadedModel
from kwslab.inference.scoring import ensemble_labels, ensemble_probabilities, known_rows, loaded_models


def evaluate_adapted(ckpt: str | Path | Sequence[str | Path], manifest: str | Path, *, folds: int = 2,
                     strength: float = 1.0, group_by: str = "speaker", batch_size: int = 64,
                     model: LoadedModel | Sequence[LoadedModel] | None = None) -> dict:
    """Keyword accuracy with unsupervised BatchNorm adaptation (:mod:`kwslab.adaptation.batchnorm`), measured
    without adapting on the clips that are scored.

    The manifest's rows are grouped by ``group_by`` (``speaker`` or ``voice``); each group's rows are dealt into
    ``folds`` folds in manifest order. For every fold, fresh copies of the model(s) are adapted on the group's other
    folds (their audio only, no labels) and score that fold. Several checkpoints are an ensemble (each adapted, the
    mean of their probabilities), as in :func:`evaluate_keywords`. Returns the pooled accuracy with and without
    adaptation on the same rows, and both per group.
    """
    if folds < 2:
        raise AdaptationError(f"folds must be at least 2 (adapt on some clips, score the others), got {folds}")
    if group_by not in ("speaker", "voice"):
        raise AdaptationError(f"group_by must be 'speaker' or 'voice', got {group_by!r}")
    _, sources = loaded_models(ckpt, model)
    labels = ensemble_labels(sources)
    rows, _ = known_rows(manifest, labels)
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(getattr(r, group_by) or "(none)", []).append(r)
    cache: dict = {}  # every clip is featurised once per feature setting, whatever the folds and models

    def correct(models: Sequence[LoadedModel], scored: list) -> int:
        preds = ensemble_probabilities(models, [r.path for r in scored], batch_size, cache).argmax(-1)
        return int((preds == torch.tensor([labels.index(r.keyword) for r in scored])).sum())

    per_group = {}
    for name, members in groups.items():
        if len(members) < folds:
            raise AdaptationError(f"{manifest}: {group_by} {name!r} has {len(members)} clips, fewer than {folds} folds")
        adapted = 0
        for k in range(folds):
            scored = [r for i, r in enumerate(members) if i % folds == k]
            unlabelled = [r.path for i, r in enumerate(members) if i % folds != k]
            models = [replace(m, module=copy.deepcopy(m.module)) for m in sources]  # the sources stay unadapted
            for m in models:
                adapt_model(m, unlabelled, strength, cache=cache)
            adapted += correct(models, scored)
        per_group[name] = {"clips": len(members), "accuracy": correct(sources, members) / len(members),
                           "adapted_accuracy": adapted / len(members)}
    n = sum(g["clips"] for g in per_group.values())
    return {"accuracy": sum(g["accuracy"] * g["clips"] for g in per_group.values()) / n,
            "adapted_accuracy": sum(g["adapted_accuracy"] * g["clips"] for g in per_group.values()) / n,
            "checkpoints": [str(m.path) for m in sources], "folds": folds, "strength": strength,
            "group_by": group_by, "groups": per_group}
