"""``python -m kwslab.predict --ckpt C FILE... [--json] [--top-k K]``: the keyword (and confidence) per file.

``--stream LONG.wav``: slide the model over a recording of any length (read block by block) and report each
detected keyword with its start, end and score. The threshold is ``--threshold``, else the one meeting
``--target-fa-per-hour`` on the stored calibration curve, else the calibrated one stored with the model by
``python -m kwslab.evaluate --stream-manifest M --store-threshold``, else 0.5.

``--onnx model.onnx`` instead of ``--ckpt`` runs on NumPy and ONNX Runtime only (torch is never imported).

Files may be any sample rate and any encoding the WAV reader accepts. Unreadable files, and files with nothing to
score (0 samples, every sample 0), are reported one line each on stderr and make the exit status 1; the others are
still predicted.

A keyword model scores one window (its clip length, e.g. 1 s): a FILE much longer than that is scored on its first
window only. predict does not stream such files by itself; it says so on stderr (``warning: FILE: 3600.0 s long, but
the model scores only its first 1.00 s``; ``"warning"`` in ``--json``) and ``--stream FILE`` detects keywords over a
recording's whole length.

Classes a checkpoint names outside kwslab are imported only with ``--allow-class CLASS_OR_PACKAGE`` (repeatable) or
``$KWSLAB_ALLOW_CLASSES``.
"""
from __future__ import annotations

import argparse
import json
import sys

from kwslab.audio import WavError
from kwslab.decoding.lm import ArpaError
from kwslab.decoding.settings import DecoderSettingsError, add_decoder_arguments, finite_float, positive_float, \
    positive_int
from kwslab.inference import add_model_arguments
from kwslab.inference.keywords import detect_stream, predict_files, predict_files_onnx

__all__ = ["detect_stream", "main", "predict_files", "predict_files_onnx"]  # the library functions live in inference


def _errors() -> tuple[type[Exception], ...]:
    """The error types of loading a model or its decoder settings: CheckpointError only when torch is already in use
    (--ckpt)."""
    from kwslab.inference.onnx import OnnxModelError

    checkpoint = sys.modules.get("kwslab.checkpoint")
    return (OnnxModelError, ArpaError, DecoderSettingsError) + ((checkpoint.CheckpointError,) if checkpoint else ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("files", nargs="*", metavar="FILE", help="WAV files (one keyword each)")
    parser.add_argument("--top-k", type=positive_int, default=1,
                        help="also list the K most likely keywords (default 1)")
    parser.add_argument("--allow-class", action="append", default=[], metavar="CLASS_OR_PACKAGE",
                        help="also import this class (or this package's classes) when the checkpoint names it; "
                             "kwslab imports only its own classes otherwise (repeatable; $KWSLAB_ALLOW_CLASSES too)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s = parser.add_argument_group("streaming detection")
    s.add_argument("--stream", metavar="LONG.wav", help="detect keywords in a recording of any length")
    level = s.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=finite_float,
                       help="smoothed posterior that fires (default: calibrated, 0.5)")
    level.add_argument("--target-fa-per-hour", type=positive_float,
                       help="pick the threshold from the stored calibration")
    s.add_argument("--hop", type=positive_float, help="seconds between windows (default: calibrated, else 0.1)")
    s.add_argument("--window", type=positive_float, help="window seconds (default: the model's clip length)")
    s.add_argument("--smooth", type=positive_int, help="moving average over this many hops (default: calibrated, "
                                                       "else 3)")
    s.add_argument("--refractory", type=finite_float, help="seconds without detections after one (default 1.0)")
    s.add_argument("--block-seconds", type=positive_float, default=1.0, help="audio read per block (default 1.0)")

    add_decoder_arguments(parser)
    args = parser.parse_args(argv)
    if bool(args.stream) == bool(args.files):
        parser.error("give either FILE... or --stream LONG.wav")
    if not args.stream and (args.threshold is not None or args.target_fa_per_hour is not None):
        parser.error("--threshold/--target-fa-per-hour apply to --stream")
    if args.allow_class and not args.ckpt:
        parser.error("--allow-class applies to --ckpt (an ONNX file names no class)")
    try:
        if args.stream:
            return _with_allowed(args, _main_stream)
        if args.onnx:
            results, errors = predict_files_onnx(args.onnx, args.files, args.top_k)
        else:
            results, errors = _with_allowed(args, _predict_ckpt)
            if isinstance(results, int):  # a CTC model: transcribed and reported
                return results
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    def line(r: dict) -> str:
        extra = "  " + ", ".join(f"{lab} {p:.3f}" for lab, p in r["top"][1:]) if len(r["top"]) > 1 else ""
        return f"{r['keyword']:<12} {r['confidence']:.3f}{extra}"

    return _report(results, errors, args.json, line)


def _with_allowed(args: argparse.Namespace, run):
    """``run(args)`` with the --allow-class entries allowed (torch is imported only with --ckpt)."""
    if not args.ckpt:
        return run(args)
    from kwslab.models.base import allowed_classes

    with allowed_classes(args.allow_class):
        return run(args)


def _predict_ckpt(args: argparse.Namespace) -> tuple:
    """(results, errors) of a keyword checkpoint; (exit status, None) once a CTC model has been reported."""
    from kwslab.inference.loaded import load_model

    model = load_model(args.ckpt)
    if model.is_ctc:
        return _main_ctc(model, args), None
    return predict_files(args.ckpt, args.files, args.top_k, model=model)


def _report(results: list[dict], errors: list[str], as_json: bool, line) -> int:
    """Errors one per line on stderr, then warnings (a file longer than the model's window); results as JSON or one
    aligned line per file. Exit status 1 on errors."""
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    for r in results:
        if r.get("warning"):
            print(f"warning: {r['warning']}", file=sys.stderr)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        width = max([len(r["file"]) for r in results] + [4])
        for r in results:
            print(f"{r['file']:<{width}}  {line(r)}")
    return 1 if errors else 0


def _main_ctc(model: object, args: argparse.Namespace) -> int:
    from kwslab.decoding.settings import settings_from_args
    from kwslab.inference.ctc import transcribe_files

    results, errors = transcribe_files(model, args.files, settings_from_args(args))
    return _report(results, errors, args.json, lambda r: r["text"])


def _main_stream(args: argparse.Namespace) -> int:
    from kwslab.inference.backend import onnx_backend, torch_backend

    backend = onnx_backend(args.onnx) if args.onnx else torch_backend(args.ckpt, threads=1)
    try:
        result = detect_stream(backend, args.stream, threshold=args.threshold,
                               target_fa_per_hour=args.target_fa_per_hour, block_seconds=args.block_seconds,
                               hop=args.hop, window=args.window, smooth=args.smooth, refractory=args.refractory)
    except (WavError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, (WavError, OSError)) else 1
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['file']}: {result['duration']:.1f} s, threshold {result['threshold']:.4g}, "
          f"{len(result['detections'])} detection(s)")
    for d in result["detections"]:
        print(f"  {d['start']:9.3f} - {d['end']:9.3f} s  {d['keyword']:<12} {d['score']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
