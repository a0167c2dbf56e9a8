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

CTC checkpoints: WER and CER per decoder on ``--manifest``. ``--spot yes,no,stop --spot-val val.csv`` adds
open-vocabulary keyword search scored against the utterances' word segments (manifests written by
``python -m kwslab.prepare sequences``): precision, recall and F1 per word at the threshold with the best F1 on the
validation manifest (or at ``--spot-threshold``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from kwslab.adaptation import AdaptationError, evaluate_adapted
from kwslab.checkpoint import CheckpointError, OutputExistsError, check_output
from kwslab.data.manifest import ManifestError, read_manifest
from kwslab.decoding.lm import ArpaError
from kwslab.decoding.settings import (DecoderSettingsError, add_decoder_arguments, finite_float, positive_float,
                                     positive_int, settings_from_args)
from kwslab.inference.backend import CALIBRATION_KEY
from kwslab.inference.ctc import evaluate_ctc
from kwslab.inference.loaded import LoadedModel, UnusableAudioError, load_model
from kwslab.inference.spotting import SpottingError, evaluate_spotting
from kwslab.inference.scoring import EvaluationError, default_png, evaluate_keywords, evaluate_stream_manifest, \
    save_confusion_png, store_threshold
from kwslab.metrics import format_report
from kwslab.models.base import add_allow_class_argument, allowed_classes

# what a run can refuse with one line (exit 2): bad input, never a traceback
INPUT_ERRORS = (AdaptationError, ArpaError, CheckpointError, DecoderSettingsError, EvaluationError, ManifestError,
                OutputExistsError, SpottingError, UnusableAudioError)


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    """Rows: true class; columns: predicted."""
    w = max(max(len(s) for s in labels), max(len(str(v)) for row in cm for v in row)) + 1
    lines = [" " * w + " " + "".join(f"{s:>{w}}" for s in labels)]
    lines += [f"{labels[i]:>{w}} " + "".join(f"{v:>{w}}" for v in row) for i, row in enumerate(cm)]
    return "\n".join(lines)


def _words(value: str) -> list[str]:
    words = [w.strip() for w in value.split(",") if w.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"expected comma-separated words, got {value!r}")
    return words


def format_spotting_report(result: dict) -> str:
    """Precision, recall and F1 per spotted word at the chosen threshold."""
    chosen = (f"chosen on {result['chosen_on']} (best F1 there)" if result["val"] is not None else "given")
    lines = [f"keyword search: threshold {result['threshold']:g} ({chosen}), tolerance {result['tolerance']:g} s, "
             f"{result['utterances']} utterances",
             f"{'word':<12} {'segments':>8} {'hits':>6} {'false alarms':>12} {'precision':>9} {'recall':>7} "
             f"{'F1':>6}"]
    for name, c in [*result["words"].items(), ("all", result["all"])]:
        lines.append(f"{name:<12} {c['hits'] + c['misses']:>8} {c['hits']:>6} {c['false_alarms']:>12} "
                     f"{c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>6.4f}")
    return "\n".join(lines)


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
    for rate, point in (result.get("miss_rate_at") or {}).items():
        lines.append(f"miss rate at <= {rate} FA/hour: " + (
            f"{100 * point['frr']:.2f}% (threshold {point['threshold']:.5g}, {point['fa_per_hour']:.2f} FA/hour)"
            if point else "not reached at any threshold tried"))
    return "\n".join(lines)


def _main_stream(args: argparse.Namespace) -> int:
    from kwslab.data.sources.streams import StreamManifestError

    try:
        result = evaluate_stream_manifest(args.ckpt, args.stream_manifest, target_fa_per_hour=args.target_fa_per_hour,
                                          tolerance=args.tolerance, hop=args.hop, window=args.window,
                                          png=args.png or default_png("det", Path(args.stream_manifest).parent.name
                                                                      or "streams"),
                                          smooth=args.smooth, refractory=args.refractory)
    except (*INPUT_ERRORS, StreamManifestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stored, store_error = None, None
    if (args.store_threshold or args.out_ckpt) and result["calibration"] is not None:
        try:
            stored = str(store_threshold(args.ckpt, result["calibration"], args.out_ckpt))
        except (CheckpointError, OSError) as exc:  # results first: a failed write is reported after them
            where = args.out_ckpt or args.ckpt
            store_error = str(exc) if isinstance(exc, CheckpointError) else \
                f"{where}: could not write the threshold ({exc.strerror or type(exc).__name__})"
    result["stored_in"] = stored
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_stream_report(result))
        if result["png"]:
            print(f"DET curve PNG: {result['png']}")
        if stored:
            print(f"stored the threshold in {stored} (key {CALIBRATION_KEY!r}); predict --stream uses it")
    _warn(result.get("warnings", []))
    if store_error:
        print(f"error: {store_error}", file=sys.stderr)
        return 1
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
    parser.add_argument("--png", help="where to save the confusion matrix (default: confusion_<manifest>.png in the "
                                      "working directory); the report is printed first, and a failed write is a "
                                      "warning")
    parser.add_argument("--skip-unknown", action="store_true", help="drop rows whose keyword the model lacks")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="clips per batch (default 64)")
    add_allow_class_argument(parser)
    parser.add_argument("--adapt-folds", type=positive_int, metavar="N",
                        help="also score with unsupervised adaptation (python -m kwslab.adapt) to each speaker: split "
                             "each speaker's clips into N folds, adapt on N-1 (audio only), score the other")
    parser.add_argument("--adapt-by", choices=["speaker", "voice"], default="speaker",
                        help="manifest column that groups clips for --adapt-folds (default speaker)")
    s = parser.add_argument_group("streaming (with --stream-manifest; --png names the DET curve, default "
                                  "det_<folder>.png in the working directory)")
    s.add_argument("--target-fa-per-hour", type=positive_float, default=1.0,
                   help="false alarms per hour to meet (1.0)")
    s.add_argument("--tolerance", type=finite_float, default=0.5, help="seconds of matching slack (default 0.5)")
    s.add_argument("--store-threshold", action="store_true", help="write the chosen threshold into --ckpt")
    s.add_argument("--out-ckpt", help="write a copy of the checkpoint with the chosen threshold here (a new file; an "
                                      "existing one is refused unless --force)")
    s.add_argument("--force", action="store_true", help="let --out-ckpt replace an existing file")
    s.add_argument("--hop", type=positive_float, help="seconds between windows (default 0.1)")
    s.add_argument("--window", type=positive_float, help="window seconds (default: the model's clip length)")
    s.add_argument("--smooth", type=positive_int, help="moving average over this many hops (default 3)")
    s.add_argument("--refractory", type=finite_float, help="seconds without detections after one (default 1.0)")
    k = parser.add_argument_group("keyword search (CTC checkpoints, with --manifest from kwslab.prepare sequences)")
    k.add_argument("--spot", type=_words, metavar="WORDS",
                   help="comma-separated words to spot in each utterance (any word the model can spell)")
    k.add_argument("--spot-val", metavar="MANIFEST", help="choose the threshold with the best F1 on this manifest")
    k.add_argument("--spot-threshold", type=positive_float, help="use this threshold (0-1] instead of --spot-val")
    k.add_argument("--spot-tolerance", type=finite_float, default=0.3,
                   help="seconds of matching slack around a word's segment (default 0.3: CTC letter spikes can lag "
                        "the word)")
    add_decoder_arguments(parser)
    args = parser.parse_args(argv)
    if args.spot and not (args.spot_val or args.spot_threshold):
        parser.error("--spot needs --spot-val MANIFEST (to choose the threshold on) or --spot-threshold T")
    ckpts, args.ckpt = args.ckpt, args.ckpt[0]
    if len(ckpts) > 1 and args.stream_manifest:
        parser.error("an ensemble of checkpoints is for --manifest only; give one --ckpt with --stream-manifest")
    if args.out_ckpt:
        try:
            check_output(args.out_ckpt, args.force, "--out-ckpt")
        except OutputExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    with allowed_classes(args.allow_class):
        if args.stream_manifest:
            return _main_stream(args)
        return _main_manifest(ckpts, args)


def _main_manifest(ckpts: list[str], args: argparse.Namespace) -> int:
    """Keyword accuracy (one model or an ensemble), adapted accuracy, or CTC WER/CER on a manifest."""
    try:
        models = [load_model(c) for c in ckpts]
        if any(m.is_ctc for m in models):
            if len(models) > 1:
                raise EvaluationError("ensembles are for keyword checkpoints; evaluate CTC checkpoints one at a time")
            return _main_ctc(models[0], args)
        if args.adapt_folds is not None:
            return _main_adapted(models, args)
        result = evaluate_keywords(ckpts, args.manifest, skip_unknown=args.skip_unknown,
                                   batch_size=args.batch_size, png=False, model=models)
    except INPUT_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    png = args.png or default_png("confusion", args.manifest)
    if args.json:  # the plot first, so the JSON names it; a failed write cannot stop the report
        warning = save_confusion_png(result, png)
        print(json.dumps(result, indent=2))
        _warn([warning] if warning else [])
        return 0
    if len(result["checkpoints"]) > 1:
        print(f"ensemble of {len(result['checkpoints'])} checkpoints (mean of their probabilities): "
              + ", ".join(result["checkpoints"]))
    print(format_report(result))
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(format_confusion(result["confusion_matrix"], result["labels"]))
    if result["skipped_unknown"]:
        print(f"skipped rows with unknown keywords: {result['skipped_unknown']}")
    sys.stdout.flush()
    warning = save_confusion_png(result, png)
    if warning:
        _warn([warning])
    else:
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
    if args.spot:
        result["spotting"] = evaluate_spotting(model, args.manifest, args.spot, val_manifest=args.spot_val,
                                               threshold=args.spot_threshold, tolerance=args.spot_tolerance)
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
    if "spotting" in result:
        print("\n" + format_spotting_report(result["spotting"]))
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
