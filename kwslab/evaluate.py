"""``python -m kwslab.evaluate --ckpt C [C ...] --manifest M [--json] [--png P]``: accuracy, per-class
precision/recall/F1 and the confusion matrix (printed and saved as a PNG) of a trained keyword model on a manifest.
Several keyword checkpoints with the same labels are scored as one ensemble (the mean of their probabilities).

Rows whose keyword the model does not know are listed and the run stops (exit 2), unless ``--skip-unknown``.

``--adapt-folds N``: accuracy per speaker before and after unsupervised adaptation (``python -m kwslab.adapt``),
measured cross-fold: each speaker's clips are split into N folds; the model is adapted on N-1 of them (audio only)
and scores the remaining one, so no clip is scored by a model adapted on it.

``--stream-manifest streams.json`` (from ``python -m kwslab.data.sources.streams``): streaming detection over long
recordings with keyword time stamps; reports the miss rate (FRR) and false alarms per hour across thresholds, saves
the DET curve, and picks the threshold meeting ``--target-fa-per-hour``. ``--store-threshold`` writes that
calibration into the checkpoint (``--out-ckpt``: into a copy), where ``predict --stream`` finds it.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kwslab.adapt import AdaptationError, adapt_model
from kwslab.callbacks import plot_confusion_matrix
from kwslab.checkpoint import CheckpointError
from kwslab.data.manifest import ManifestError, read_manifest
from kwslab.inference import LoadedModel, load_model
from kwslab.metrics import classification_report, confusion_matrix, format_report
from kwslab.stream.backend import CALIBRATION_KEY
from kwslab.transcribe import add_decoder_arguments, evaluate_ctc, is_ctc, settings_from_args


class EvaluationError(ValueError):
    """A manifest that cannot be evaluated with this model (message says why and what to do)."""


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


def _loaded(ckpt: str | Path | Sequence[str | Path],
            model: LoadedModel | Sequence[LoadedModel] | None) -> tuple[list[Path], list[LoadedModel]]:
    ckpts = [Path(ckpt)] if isinstance(ckpt, (str, Path)) else [Path(c) for c in ckpt]
    if model is None:
        return ckpts, [load_model(c) for c in ckpts]
    return ckpts, [model] if isinstance(model, LoadedModel) else list(model)


def evaluate_keywords(ckpt: str | Path | Sequence[str | Path], manifest: str | Path, *, skip_unknown: bool = False,
                      batch_size: int = 64, png: str | Path | None = None,
                      model: LoadedModel | Sequence[LoadedModel] | None = None) -> dict:
    """Evaluate a keyword checkpoint, or an ensemble of several, on a manifest.

    With several checkpoints the prediction is the class with the highest mean probability (softmax) over the
    models; each model reads the audio with its own feature settings, so different architectures and features
    mix, but all must have the same labels in the same order. Returns the report dict (plus confusion matrix,
    PNG path and the checkpoints used).
    """
    ckpts, models = _loaded(ckpt, model)
    labels = ensemble_labels(models)
    rows, unknown = known_rows(manifest, labels, skip_unknown)
    preds = ensemble_probabilities(models, [r.path for r in rows], batch_size).argmax(-1).numpy()
    targets = np.array([labels.index(r.keyword) for r in rows])
    cm = confusion_matrix(targets, preds, len(labels))
    report = classification_report(cm, labels)
    png = Path(png) if png else ckpts[0].with_name(f"confusion_{Path(manifest).stem}.png")
    title = Path(manifest).name + (f" ({len(models)}-model ensemble)" if len(models) > 1 else "")
    plot_confusion_matrix(cm, labels, png, title=title)
    return {**report, "confusion_matrix": cm.tolist(), "labels": labels, "png": str(png),
            "skipped_unknown": dict(unknown), "clips": len(rows), "checkpoints": [str(m.path) for m in models]}


def evaluate_adapted(ckpt: str | Path | Sequence[str | Path], manifest: str | Path, *, folds: int = 2,
                     strength: float = 1.0, group_by: str = "speaker", batch_size: int = 64,
                     model: LoadedModel | Sequence[LoadedModel] | None = None) -> dict:
    """Keyword accuracy with unsupervised adaptation (:mod:`kwslab.adapt`), measured without adapting on the clips
    that are scored.

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
    _, sources = _loaded(ckpt, model)
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


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    """Rows: true class; columns: predicted."""
    w = max(max(len(s) for s in labels), max(len(str(v)) for row in cm for v in row)) + 1
    lines = [" " * w + " " + "".join(f"{s:>{w}}" for s in labels)]
    lines += [f"{labels[i]:>{w}} " + "".join(f"{v:>{w}}" for v in row) for i, row in enumerate(cm)]
    return "\n".join(lines)


def evaluate_stream_manifest(ckpt: str | Path, stream_manifest: str | Path, *, target_fa_per_hour: float = 1.0,
                             tolerance: float = 0.5, png: str | Path | None = None, threads: int | None = 1,
                             **stream: object) -> dict:
    """Streaming evaluation of a keyword checkpoint on ``streams.json``; see
    :func:`kwslab.stream.evaluation.evaluate_streams` (``stream``: StreamConfig fields; None keeps defaults;
    ``threads``: torch threads, default 1, fastest for streaming batches)."""
    from kwslab.data.sources.streams import read_stream_manifest
    from kwslab.stream import StreamConfig, torch_backend
    from kwslab.stream.evaluation import evaluate_streams

    entries = read_stream_manifest(stream_manifest)
    backend = torch_backend(ckpt, threads=threads)
    config = StreamConfig(**{k: v for k, v in stream.items() if v is not None})
    png = Path(png) if png else Path(ckpt).with_name(f"det_{Path(stream_manifest).parent.name}.png")
    result = evaluate_streams(backend, [(e.path, e.duration, e.events) for e in entries], config,
                              target_fa_per_hour=target_fa_per_hour, tolerance=tolerance, png=png,
                              title=f"{Path(ckpt).name} on {Path(stream_manifest).parent.name}")
    if result["calibration"] is not None:
        result["calibration"]["stream_manifest"] = str(stream_manifest)
    return {**result, "streams": len(entries), "settings": config.to_dict()}


def store_threshold(ckpt: str | Path, calibration: dict, out: str | Path | None = None) -> Path:
    """Write ``calibration`` into the checkpoint under ``kwslab_threshold`` (``out``: into a copy); atomic."""
    from kwslab.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(ckpt)
    data[CALIBRATION_KEY] = calibration
    return save_checkpoint(data, out if out else ckpt)


def format_stream_report(result: dict) -> str:
    """A table of FRR and false alarms per hour at a spread of thresholds, and the chosen threshold."""
    rows = result["curve"]
    picks = sorted({0, len(rows) - 1, *range(0, len(rows), max(1, len(rows) // 12))})
    lines = [f"{result['streams']} stream(s), {result['hours'] * 60:.1f} min, {result['events']} keywords",
             f"{'threshold':>10} {'FRR %':>7} {'FA/hour':>9} {'FA':>5} {'missed':>7}"]
    chosen = result["chosen"]
    for i in picks:
        r = rows[i]
        lines.append(f"{r['threshold']:>10.5g} {100 * r['frr']:>7.2f} {r['fa_per_hour']:>9.2f} "
                     f"{r['false_alarms']:>5d} {r['misses']:>7d}")
    if chosen:
        lines.append(f"threshold for <= {chosen['target_fa_per_hour']:g} FA/hour: {chosen['threshold']:.5g} "
                     f"(FRR {100 * chosen['frr']:.2f}%, {chosen['fa_per_hour']:.2f} FA/hour)")
    else:
        lowest = min(rows, key=lambda r: r["fa_per_hour"])
        lines.append(f"no threshold meets the target; the fewest false alarms: {lowest['fa_per_hour']:.2f}/hour "
                     f"at threshold {lowest['threshold']:.5g}")
    return "\n".join(lines)


def _main_stream(args: argparse.Namespace) -> int:
    from kwslab.data.sources.streams import StreamManifestError

    try:
        result = evaluate_stream_manifest(args.ckpt, args.stream_manifest, target_fa_per_hour=args.target_fa_per_hour,
                                          tolerance=args.tolerance, png=args.png, hop=args.hop, window=args.window,
                                          smooth=args.smooth, refractory=args.refractory)
        stored = None
        if (args.store_threshold or args.out_ckpt) and result["calibration"] is not None:
            stored = str(store_threshold(args.ckpt, result["calibration"], args.out_ckpt))
    except (CheckpointError, StreamManifestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["stored_in"] = stored
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_stream_report(result))
        print(f"DET curve PNG: {result['png']}")
        if stored:
            print(f"stored the threshold in {stored} (key {CALIBRATION_KEY!r}); predict --stream uses it")
    if (args.store_threshold or args.out_ckpt) and not stored:
        print("error: nothing stored: no threshold meets the target", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, nargs="+", action="extend",
                        help="checkpoint written by python -m kwslab.fit; several keyword checkpoints with the "
                             "same labels are evaluated as an ensemble (mean of their probabilities)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--manifest", help="CSV manifest with filename and keyword columns")
    what.add_argument("--stream-manifest", help="streams.json of long recordings with keyword time stamps")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--png", help="where to save the confusion matrix (default: beside the checkpoint)")
    parser.add_argument("--skip-unknown", action="store_true", help="drop rows whose keyword the model lacks")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--adapt-folds", type=int, metavar="N",
                        help="also score with unsupervised adaptation (python -m kwslab.adapt) to each speaker: split "
                             "each speaker's clips into N folds, adapt on N-1 (audio only), score the other")
    parser.add_argument("--adapt-by", choices=["speaker", "voice"], default="speaker",
                        help="manifest column that groups clips for --adapt-folds (default speaker)")
    s = parser.add_argument_group("streaming (with --stream-manifest; --png names the DET curve)")
    s.add_argument("--target-fa-per-hour", type=float, default=1.0, help="false alarms per hour to meet (1.0)")
    s.add_argument("--tolerance", type=float, default=0.5, help="seconds of matching slack (default 0.5)")
    s.add_argument("--store-threshold", action="store_true", help="write the chosen threshold into --ckpt")
    s.add_argument("--out-ckpt", help="write a copy of the checkpoint with the chosen threshold here")
    s.add_argument("--hop", type=float, help="seconds between windows (default 0.1)")
    s.add_argument("--window", type=float, help="window seconds (default: the model's clip length)")
    s.add_argument("--smooth", type=int, help="moving average over this many hops (default 3)")
    s.add_argument("--refractory", type=float, help="seconds without detections after one (default 1.0)")
    add_decoder_arguments(parser)
    args = parser.parse_args(argv)
    ckpts, args.ckpt = args.ckpt, args.ckpt[0]
    if len(ckpts) > 1 and args.stream_manifest:
        parser.error("an ensemble of checkpoints is for --manifest only; give one --ckpt with --stream-manifest")
    if args.stream_manifest:
        return _main_stream(args)
    try:
        models = [load_model(c) for c in ckpts]
        if any(is_ctc(m) for m in models):
            if len(models) > 1:
                raise EvaluationError("ensembles are for keyword checkpoints; evaluate CTC checkpoints one at a time")
            return _main_ctc(models[0], args)
        if args.adapt_folds is not None:
            return _main_adapted(models, args)
        result = evaluate_keywords(ckpts, args.manifest, skip_unknown=args.skip_unknown,
                                   batch_size=args.batch_size, png=args.png, model=models)
    except (CheckpointError, ManifestError, EvaluationError, AdaptationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if len(result["checkpoints"]) > 1:
        print(f"ensemble of {len(result['checkpoints'])} checkpoints (mean of their probabilities): "
              + ", ".join(result["checkpoints"]))
    print(format_report(result))
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(format_confusion(result["confusion_matrix"], result["labels"]))
    if result["skipped_unknown"]:
        print(f"skipped rows with unknown keywords: {result['skipped_unknown']}")
    print(f"\nconfusion matrix PNG: {result['png']}")
    return 0


def _main_adapted(models: list[LoadedModel], args: argparse.Namespace) -> int:
    """Accuracy per speaker (or voice) before and after cross-fold unsupervised adaptation."""
    result = evaluate_adapted([m.path for m in models], args.manifest, folds=args.adapt_folds, group_by=args.adapt_by,
                              batch_size=args.batch_size, model=models)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"unsupervised adaptation, {result['folds']} folds per {result['group_by']} (adapted on the other folds' "
          f"audio, never on the clips scored)\n")
    print(f"{args.adapt_by:<16} {'clips':>6} {'accuracy':>9} {'adapted':>9}")
    for name, g in result["groups"].items():
        print(f"{name:<16} {g['clips']:>6} {g['accuracy']:>9.4f} {g['adapted_accuracy']:>9.4f}")
    print(f"{'all':<16} {sum(g['clips'] for g in result['groups'].values()):>6} {result['accuracy']:>9.4f} "
          f"{result['adapted_accuracy']:>9.4f}")
    return 0


def _main_ctc(model: LoadedModel, args: argparse.Namespace) -> int:
    """WER/CER of a CTC checkpoint per decoder (greedy, beam with the given LM/hotwords)."""
    rows = read_manifest(args.manifest, need_transcript=True, vocab=model.module.vocab)
    result = evaluate_ctc(model, rows, settings_from_args(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for row in result["utterances"][:10]:
        print(f"{Path(row['file']).name}\n  ref:    {row['reference']}\n  greedy: {row['greedy']}"
              + (f"\n  beam:   {row['beam']}" if "beam" in row else ""))
    print(f"\n{len(rows)} utterances")
    lm = f" + LM {args.lm} (alpha {args.alpha:g}, beta {args.beta:g})" if args.lm else ""
    for name in ("greedy", "beam"):
        if name in result:
            label = f"beam {args.beam_width}{lm}" if name == "beam" else "greedy"
            print(f"{label:<40} WER {result[name]['wer']:.4f}   CER {result[name]['cer']:.4f}")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
