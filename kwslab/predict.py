"""``python -m kwslab.predict --ckpt C FILE... [--json] [--top-k K]``: the keyword (and confidence) per file.

Files may be any sample rate and any encoding the WAV reader accepts. Unreadable files are reported one line each
on stderr and make the exit status 1; the others are still predicted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from kwslab.audio import WavError
from kwslab.checkpoint import CheckpointError
from kwslab.inference import load_model


def predict_files(ckpt: str | Path, files: list[str | Path], top_k: int = 1) -> tuple[list[dict], list[str]]:
    """Returns (results, errors): per readable file ``{"file", "keyword", "confidence", "top": [[label, p], ...]}``."""
    model = load_model(ckpt)
    k = max(1, min(top_k, len(model.labels)))
    results, errors = [], []
    for f in files:
        try:
            feats = model.features(f)
        except (WavError, OSError, ValueError) as exc:
            errors.append(f"{f}: {exc}")
            continue
        probs = torch.softmax(model.logits([feats])[0], dim=-1)
        p, idx = probs.topk(k)
        top = [[model.labels[i], round(float(q), 6)] for q, i in zip(p.tolist(), idx.tolist())]
        results.append({"file": str(f), "keyword": top[0][0], "confidence": top[0][1], "top": top})
    return results, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by python -m kwslab.fit")
    parser.add_argument("files", nargs="+", metavar="FILE", help="WAV files")
    parser.add_argument("--top-k", type=int, default=1, help="also list the K most likely keywords (default 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    args = parser.parse_args(argv)
    try:
        results, errors = predict_files(args.ckpt, args.files, args.top_k)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        width = max([len(r["file"]) for r in results] + [4])
        for r in results:
            extra = "  " + ", ".join(f"{lab} {p:.3f}" for lab, p in r["top"][1:]) if len(r["top"]) > 1 else ""
            print(f"{r['file']:<{width}}  {r['keyword']:<12} {r['confidence']:.3f}{extra}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
