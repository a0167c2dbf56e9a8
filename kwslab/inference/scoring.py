"""Keyword models scored on labelled data: accuracy and the confusion matrix on a manifest (one checkpoint or an
ensemble), and streaming evaluation (false alarms per hour, miss rate, DET curve) on long recordings.

Used by ``python -m kwslab.evaluate`` and by cross-fold adaptation (:mod:`kwslab.adaptation.evaluation`).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kwslab.data.manifest import read_manifest
from kwslab.inference.backend import CALIBRATION_KEY, torch_backend
from kwslab.inference.loaded import LoadedModel, load_model
from kwslab.metrics import classification_report, confusion_matrix, plot_confusion_matrix

__all__ = ["EvaluationError", "default_png", "ensemble_labels", "ensemble_probabilities", "evaluate_keywords",
           "evaluate_stream_manifest", "known_rows", "loaded_models", "save_confusion_png", "store_threshold",
           "write_figure"]


class EvaluationError(ValueError):
    """A manifest that cannot be evaluated with this model (message says why and what to do)."""


def default_png(prefix: str, source: str | Path) -> Path:
    """Where a plot goes when no ``--png`` is given: ``<prefix>_<name>.png`` in the working directory (never beside
    the checkpoint, whose folder may be read-only or shared)."""
    return Path(f"{prefix}_{Path(source).stem or 'input'}.png")


def write_figure(write, path: str | Path) -> str | None:
    """Call ``write(path)`` (a plot function); a failed write (read-only folder, full disk, unknown image format)
    is returned as a one-line warning instead of raised, so results already computed are never lost."""
    try:
        write(Path(path))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:200]
        return f"{path}: could not write the plot ({reason}); pass --png PATH to save it elsewhere"
    return None


def save_confusion_png(result: dict, path: str | Path) -> str | None:
    """Plot an :func:`evaluate_keywords` result's confusion matrix to ``path``. Sets ``result["png"]`` to the path,
    or to None with the warning returned (see :func:`write_figure`)."""
    cm = np.asarray(result["confusion_matrix"])
    warning = write_figure(lambda p: plot_confusion_matrix(cm, result["labels"], p, title=result.get("title", "")),
                           path)
    result["png"] = None if warning else str(path)
    return warning


def ensemble_labels(models: Sequence[LoadedModel]) -> list[str]:
    """The labels shared by all ``models`` (an ensemble needs the same labels in the same order)."""
    if not models:
        raise EvaluationError("no checkpoint given")
    labels = models[0].labels
    for other in models[1:]:
        if other.labels != labels:
            raise EvaluationError(f"{other.path}: its labels {other.labels} differ from {models[0].path}'s "
                                  f"{labels}; an ensemble needs the same labels in the same order")
    return labels


def known_rows(manifest: str | Path, labels: list[str], skip_unknown: bool = False) -> tuple[list, Counter]:
    """The manifest's rows whose keyword is in ``labels``, and a count of the others (an error unless skipped)."""
    rows = read_manifest(manifest, need_keyword=True)
    unknown = Counter(r.keyword for r in rows if r.keyword not in labels)
    if unknown and not skip_unknown:
        listed = ", ".join(f"{k!r} ({n} rows)" for k, n in unknown.most_common())
        raise EvaluationError(f"{manifest}: keywords the model does not know: {listed}. The model knows: "
                              f"{', '.join(labels)}. Map them in the manifest or pass --skip-unknown.")
    rows = [r for r in rows if r.keyword not in unknown]
    if not rows:
        raise EvaluationError(f"{manifest}: no row has a keyword the model knows ({', '.join(labels)})")
    return rows, unknown


def ensemble_probabilities(models: Sequence[LoadedModel], paths: Sequence[Path], batch_size: int = 64,
                           cache: dict | None = None) -> torch.Tensor:
    """``(N, C)`` mean of the models' softmax probabilities on the files. Each model reads the audio with its own
    feature settings; with ``cache`` (one dict per call if None) files are featurised once per setting."""
    cache = {} if cache is None else cache
    probs = torch.zeros(len(paths), len(models[0].labels))
    for m in models:
        feats = m.features_of(paths, cache)
        for start in range(0, len(feats), batch_size):
            probs[start:start + batch_size] += torch.softmax(m.logits(feats[start:start + batch_size]), dim=-1)
    return probs / len(models)


def loaded_models(ckpt: str | Path | Sequence[str | Path],
                  model: LoadedModel | Sequence[LoadedModel] | None) -> tuple[list[Path], list[LoadedModel]]:
    """The checkpoint paths and their loaded models (``model``: already loaded ones, used as they are)."""
    ckpts = [Path(ckpt)] if isinstance(ckpt, (str, Path)) else [Path(c) for c in ckpt]
    if model is None:
        return ckpts, [load_model(c) for c in ckpts]
    return ckpts, [model] if isinstance(model, LoadedModel) else list(model)


def evaluate_keywords(ckpt: str | Path | Sequence[str | Path], manifest: str | Path, *, skip_unknown: bool = False,
                      batch_size: int = 64, png: str | Path | None | bool = None,
                      model: LoadedModel | Sequence[LoadedModel] | None = None) -> dict:
    """Evaluate a keyword checkpoint, or an ensemble of several, on a manifest.

    With several checkpoints the prediction is the class with the highest mean probability (softmax) over the
    models; each model reads the audio with its own feature settings, so different architectures and features
    mix, but all must have the same labels in the same order. Returns the report dict (plus confusion matrix,
    PNG path and the checkpoints used).

    ``png``: where to plot the confusion matrix (None or False: no plot, ``result["png"]`` None; the command's default
    is :func:`default_png` in the working directory). A failed write is ``result["warnings"]``, never an exception.
    """
    if batch_size < 1:
        raise EvaluationError(f"batch size must be at least 1, got {batch_size}")
    ckpts, models = loaded_models(ckpt, model)
    labels = ensemble_labels(models)
    rows, unknown = known_rows(manifest, labels, skip_unknown)
    preds = ensemble_probabilities(models, [r.path for r in rows], batch_size).argmax(-1).numpy()
    targets = np.array([labels.index(r.keyword) for r in rows])
    cm = confusion_matrix(targets, preds, len(labels))
    report = classification_report(cm, labels)
    title = Path(manifest).name + (f" ({len(models)}-model ensemble)" if len(models) > 1 else "")
    result = {**report, "confusion_matrix": cm.tolist(), "labels": labels, "png": None, "title": title,
              "skipped_unknown": dict(unknown), "clips": len(rows), "checkpoints": [str(m.path) for m in models],
              "warnings": []}
    if png:
        warning = save_confusion_png(result, png)
        result["warnings"] += [warning] if warning else []
    return result


def evaluate_stream_manifest(ckpt: str | Path, stream_manifest: str | Path, *, target_fa_per_hour: float = 1.0,
                             tolerance: float = 0.5, png: str | Path | None = None, threads: int | None = 1,
                             **stream: object) -> dict:
    """Streaming evaluation of a keyword checkpoint on ``streams.json``; see
    :func:`kwslab.stream.evaluation.evaluate_streams` (``stream``: StreamConfig fields; None keeps defaults;
    ``threads``: torch threads, default 1, fastest for streaming batches). ``png``: the DET curve (None: no plot;
    the command's default is :func:`default_png` in the working directory); a failed write is
    ``result["warnings"]``."""
    from kwslab.data.sources.streams import read_stream_manifest
    from kwslab.stream import StreamConfig
    from kwslab.stream.evaluation import evaluate_streams

    entries = read_stream_manifest(stream_manifest)
    backend = torch_backend(ckpt, threads=threads)
    config = StreamConfig(**{k: v for k, v in stream.items() if v is not None})
    png = Path(png) if png else None
    result = evaluate_streams(backend, [(e.path, e.duration, e.events) for e in entries], config,
                              target_fa_per_hour=target_fa_per_hour, tolerance=tolerance, png=png,
                              title=f"{Path(ckpt).name} on {Path(stream_manifest).parent.name}")
    if result["calibration"] is not None:
        result["calibration"]["stream_manifest"] = str(stream_manifest)
    return {**result, "streams": len(entries), "settings": config.to_dict(),
            "miss_rate_at": miss_rates_at(result["curve"], REPORTED_FA_PER_HOUR)}


REPORTED_FA_PER_HOUR = (0.5, 1.0, 5.0)


def miss_rates_at(curve: list[dict], fa_per_hour: tuple[float, ...] = REPORTED_FA_PER_HOUR) -> dict[str, dict | None]:
    """For each false-alarm rate, the operating point with the fewest misses among the thresholds whose rate is at
    most that (``{"threshold", "frr", "fa_per_hour"}``; None when no threshold gets that low). Keys are the rates
    as strings (``"0.5"``), so the result is plain JSON."""
    out: dict[str, dict | None] = {}
    for target in fa_per_hour:
        ok = [r for r in curve if r["fa_per_hour"] <= target]
        best = min(ok, key=lambda r: (r["frr"], r["threshold"])) if ok else None
        out[f"{target:g}"] = ({"threshold": best["threshold"], "frr": best["frr"],
                               "fa_per_hour": best["fa_per_hour"]} if best else None)
    return out


def store_threshold(ckpt: str | Path, calibration: dict, out: str | Path | None = None) -> Path:
    """Write ``calibration`` into the checkpoint under ``kwslab_threshold`` (``out``: into a copy); atomic."""
    from kwslab.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(ckpt)
    data[CALIBRATION_KEY] = calibration
    return save_checkpoint(data, out if out else ckpt)
