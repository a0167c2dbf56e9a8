"""``python -m kwslab.predict --ckpt C FILE... [--json] [--top-k K]``: the keyword (and confidence) per file.

``--stream LONG.wav``: slide the model over a recording of any length (read block by block) and report each
detected keyword with its start, end and score. The threshold is ``--threshold``, else the one meeting
``--target-fa-per-hour`` on the stored calibration curve, else the calibrated one stored with the model by
``python -m kwslab.evaluate --stream-manifest M --store-threshold``, else 0.5.

``--onnx model.onnx`` instead of ``--ckpt`` runs on NumPy and ONNX Runtime only (torch is never imported).

Files may be any sample rate and any encoding the WAV reader accepts. Unreadable files are reported one line each
on stderr and make the exit status 1; the others are still predicted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kwslab.audio import WavError


def predict_files(ckpt: str | Path, files: list[str | Path], top_k: int = 1,
                  model: object | None = None) -> tuple[list[dict], list[str]]:
    """Returns (results, errors): per readable file ``{"file", "keyword", "confidence", "top": [[label, p], ...]}``."""
    import torch

    from kwslab.inference import load_model

    model = model or load_model(ckpt)

    def probabilities(feats):
        return torch.softmax(model.logits([feats])[0], dim=-1).numpy()

    return _predict(model.features, probabilities, model.labels, files, top_k)


def predict_files_onnx(onnx: str | Path, files: list[str | Path], top_k: int = 1) -> tuple[list[dict], list[str]]:
    """Like :func:`predict_files`, on an exported keyword model with ONNX Runtime (no torch)."""
    from kwslab.onnx_infer import OnnxModel, OnnxModelError

    model = OnnxModel(onnx)
    if model.kind != "keyword":
        raise OnnxModelError(f"{onnx}: a {model.kind} model; predict classifies with keyword models")
    return _predict(model.features, lambda f: model.probabilities([f])[0], model.labels, files, top_k)


def _predict(features, probabilities, labels: list[str], files, top_k: int) -> tuple[list[dict], list[str]]:
    k = max(1, min(top_k, len(labels)))
    results, errors = [], []
    for f in files:
        try:
            feats = features(f)
        except (WavError, OSError, ValueError) as exc:
            errors.append(str(exc) if str(f) in str(exc) else f"{f}: {exc}")  # WavError already names the file
            continue
        probs = probabilities(feats)
        idx = sorted(range(len(labels)), key=lambda i: -float(probs[i]))[:k]
        top = [[labels[i], round(float(probs[i]), 6)] for i in idx]
        results.append({"file": str(f), "keyword": top[0][0], "confidence": top[0][1], "top": top})
    return results, errors


def detect_stream(backend, path: str | Path, *, threshold: float | None = None,
                  target_fa_per_hour: float | None = None, block_seconds: float = 1.0, **overrides) -> dict:
    """Streaming detection over one recording; returns ``{"file", "threshold", "settings", "duration",
    "detections": [{keyword, start, end, score}]}``. ``overrides``: StreamConfig fields (None: keep)."""
    from kwslab.stream import StreamingDetector, iter_wav_blocks
    from kwslab.stream.evaluation import config_from_calibration

    cfg = config_from_calibration(backend.calibration, threshold=threshold, target_fa_per_hour=target_fa_per_hour,
                                  **overrides)
    det = StreamingDetector(backend.feature_config, backend.labels, backend.probabilities, cfg)
    found = det.run(iter_wav_blocks(path, backend.feature_config.sample_rate, block_seconds))
    return {"file": str(path), "threshold": cfg.threshold, "settings": cfg.to_dict(),
            "duration": round(det.duration, 3), "detections": [d.to_dict() for d in found]}


def _errors() -> tuple[type[Exception], ...]:
    """The error types of loading a model: CheckpointError only when torch is already in use (--ckpt)."""
    from kwslab.onnx_infer import OnnxModelError

    checkpoint = sys.modules.get("kwslab.checkpoint")
    return (OnnxModelError,) + ((checkpoint.CheckpointError,) if checkpoint else ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="checkpoint written by python -m kwslab.fit")
    source.add_argument("--onnx", help="model written by python -m kwslab.export (runs without torch)")
    parser.add_argument("files", nargs="*", metavar="FILE", help="WAV files (one keyword each)")
    parser.add_argument("--top-k", type=int, default=1, help="also list the K most likely keywords (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s = parser.add_argument_group("streaming detection")
    s.add_argument("--stream", metavar="LONG.wav", help="detect keywords in a recording of any length")
    level = s.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=float, help="smoothed posterior that fires (default: calibrated, 0.5)")
    level.add_argument("--target-fa-per-hour", type=float, help="pick the threshold from the stored calibration")
    s.add_argument("--hop", type=float, help="seconds between windows (default: calibrated, else 0.1)")
    s.add_argument("--window", type=float, help="window seconds (default: the model's clip length)")
    s.add_argument("--smooth", type=int, help="moving average over this many hops (default: calibrated, else 3)")
    s.add_argument("--refractory", type=float, help="seconds without detections after one (default 1.0)")
    s.add_argument("--block-seconds", type=float, default=1.0, help="audio read per block (default 1.0)")
    from kwslab.transcribe_args import add_decoder_arguments

    add_decoder_arguments(parser)
    args = parser.parse_args(argv)
    if bool(args.stream) == bool(args.files):
        parser.error("give either FILE... or --stream LONG.wav")
    if not args.stream and (args.threshold is not None or args.target_fa_per_hour is not None):
        parser.error("--threshold/--target-fa-per-hour apply to --stream")
    try:
        if args.stream:
            return _main_stream(args)
        if args.onnx:
            results, errors = predict_files_onnx(args.onnx, args.files, args.top_k)
        else:
            from kwslab.inference import load_model
            from kwslab.transcribe import is_ctc

            model = load_model(args.ckpt)
            if is_ctc(model):
                return _main_ctc(model, args)
            results, errors = predict_files(args.ckpt, args.files, args.top_k, model=model)
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    def line(r: dict) -> str:
        extra = "  " + ", ".join(f"{lab} {p:.3f}" for lab, p in r["top"][1:]) if len(r["top"]) > 1 else ""
        return f"{r['keyword']:<12} {r['confidence']:.3f}{extra}"

    return _report(results, errors, args.json, line)


def _report(results: list[dict], errors: list[str], as_json: bool, line) -> int:
    """Errors one per line on stderr; results as JSON or one aligned line per file. Exit status 1 on errors."""
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        width = max([len(r["file"]) for r in results] + [4])
        for r in results:
            print(f"{r['file']:<{width}}  {line(r)}")
    return 1 if errors else 0


def transcribe_files(model: object, files: list[str | Path], settings: object) -> tuple[list[dict], list[str]]:
    """CTC checkpoints: ``{"file", "text", "greedy"[, "beam"]}`` per readable file, and the unreadable ones."""
    from kwslab.transcribe import decode, posteriors_of_features

    readable, feats, errors = [], [], []
    for f in files:
        try:
            feats.append(model.features(f))
            readable.append(f)
        except (WavError, OSError, ValueError) as exc:
            errors.append(str(exc) if str(f) in str(exc) else f"{f}: {exc}")  # WavError already names the file
    texts = decode(posteriors_of_features(model, feats), model.module.vocab, settings) if readable else {}
    results = [{"file": str(f), "text": texts.get("beam", texts.get("greedy"))[i],
                **{k: v[i] for k, v in texts.items()}} for i, f in enumerate(readable)]
    return results, errors


def _main_ctc(model: object, args: argparse.Namespace) -> int:
    from kwslab.transcribe_args import settings_from_args

    results, errors = transcribe_files(model, args.files, settings_from_args(args))
    return _report(results, errors, args.json, lambda r: r["text"])


def _main_stream(args: argparse.Namespace) -> int:
    from kwslab.stream.backend import onnx_backend, torch_backend

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
