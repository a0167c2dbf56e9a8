"""Cross-fold measurement of CTC self-training (``python -m kwslab.adapt --method self-train``) on composed strings.

    python scripts/ctc_self_train_fsdd.py --ckpt checkpoints/ctc_fsdd/<best>.ckpt \
        --manifest data/fsdd_ctc/test.csv --lm data/fsdd_ctc/lm.arpa

The test strings of ``scripts/prepare_ctc_fsdd.py`` are composed from the held-out speaker's isolated recordings,
each recording used in several strings, so adapting on some strings and scoring others would score words the
model was adapted on. Instead the source recordings (from ``segments.jsonl``) are dealt into ``--folds`` folds.
For each fold, a copy of the model is self-trained on the *other* folds' recordings (unlabelled: their
pseudo-labels come from the model's own beam + LM transcripts), then decodes every test string, and only the words
whose recording lies in the held-out fold are scored. So no word is ever scored by a model adapted on its
recording. Words are compared position by position in strings whose hypothesis has as many words as the reference
(as in ``scripts/fsdd_onsets.py``); the unadapted model is scored the same way.

Prints per fold: adaptation clips, pseudo-labels kept, their accuracy (FSDD file names carry the digit), and the
word error rate before and after; then the same per recording decade.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.adaptation import AdaptationError, self_train
from kwslab.data.manifest import read_manifest
from kwslab.data.sources.fsdd import parse_fsdd_name
from kwslab.data.sources.sequences import read_segments, word_errors_by_source
from kwslab.decoding.settings import DecoderSettings
from kwslab.inference import load_model
from kwslab.inference.ctc import decode, posteriors

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script's FSDD session and table helpers
from fsdd_onsets import decade, print_table  # noqa: E402

DIGITS = "zero one two three four five six seven eight nine".split()


def word_errors(ckpt: str | Path, paths: Sequence[Path], segments: dict, settings: DecoderSettings) -> dict:
    """``{source clip: [errors, words]}`` for a checkpoint's beam (+ LM) transcripts of ``paths``."""
    model = load_model(ckpt)
    hyps = decode(posteriors(model, paths), model.module.vocab, settings)["beam"]
    return word_errors_by_source(paths, hyps, segments)[0]


def digit_of(path: str) -> str | None:
    parsed = parse_fsdd_name(Path(path).name)
    return DIGITS[parsed[0]] if parsed else None


def group_key(source: str) -> str:
    """``"george 30-39"`` for an FSDD recording (its speaker and recording session), ``"other"`` otherwise."""
    try:
        speaker, first = decade(source)
    except ValueError:
        return "other"
    return f"{speaker} {first}-{first + 9}"


def cross_fold(ckpt: str, manifest: str, settings: DecoderSettings, out_dir: Path, folds: int = 2, seed: int = 0,
               replay: list[str] | None = None, **train_args) -> dict:
    segments = read_segments(manifest)
    rows = read_manifest(manifest, need_transcript=True)
    paths = [r.path for r in rows]
    sources = sorted({str(s["source"]) for p in paths for s in segments.get(p.resolve(), [])})
    if not sources:
        raise AdaptationError(f"{manifest}: its rows have no word segments in segments.jsonl")
    fold_of = {src: i % folds for i, src in enumerate(np.random.default_rng(seed).permutation(sources))}
    base = word_errors(ckpt, paths, segments, settings)
    report = {"folds": [], "base": base, "adapted": {}}
    for k in range(folds):
        train_on = [Path(src) for src in sources if fold_of[src] != k]
        result = self_train(ckpt, out_dir / f"fold{k}.ckpt", train_on, settings, replay=replay, seed=seed,
                            **train_args)
        kept = [lab for lab in result["labels"] if lab["kept"]]
        known = [lab for lab in kept if digit_of(lab["path"]) is not None]
        adapted = word_errors(result["out"], paths, segments, settings)
        held = {src: counts for src, counts in adapted.items() if fold_of[src] == k}
        report["adapted"].update(held)
        report["folds"].append({
            "fold": k, "adaptation_clips": len(train_on), "kept": len(kept),
            "pseudo_label_accuracy_pct": (round(100.0 * sum(lab["text"] == digit_of(lab["path"]) for lab in known)
                                                / len(known), 1) if known else None),
            "words": sum(n for _, n in held.values()),
            "base_word_error_pct": _rate(base, held), "adapted_word_error_pct": _rate(held, held)})
    return report


def _rate(counts: dict, keys) -> float:
    e = sum(counts.get(k, [0, 0])[0] for k in keys)
    n = sum(counts.get(k, [0, 0])[1] for k in keys)
    return round(100.0 * e / n, 2) if n else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="CTC checkpoint")
    parser.add_argument("--manifest", required=True, help="composed test manifest with segments.jsonl beside it")
    parser.add_argument("--lm", help="ARPA LM for pseudo-labels and scoring (alpha 0.5, beta 0, as in the README)")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", nargs="+", help="labelled manifests to mix in (default: the checkpoint's own)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--min-margin", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out-dir", default="runs/self_train", help="where the fold checkpoints go")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    settings = DecoderSettings(16, args.lm, 0.5, 0.0)
    try:
        report = cross_fold(args.ckpt, args.manifest, settings, Path(args.out_dir), args.folds, args.seed,
                            args.replay, epochs=args.epochs, lr=args.lr, repeats=args.repeats,
                            min_margin=args.min_margin, rounds=args.rounds)
    except (AdaptationError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base, adapted = report["base"], report["adapted"]
    total = {"fold": "all", "adaptation_clips": "", "kept": "", "pseudo_label_accuracy_pct": "",
             "words": sum(n for _, n in adapted.values()), "base_word_error_pct": _rate(base, adapted),
             "adapted_word_error_pct": _rate(adapted, adapted)}
    print(f"Self-training, {args.folds}-fold by source recording ({args.ckpt}; beam 16{' + LM' if args.lm else ''}):")
    print_table(report["folds"] + [total])
    groups = defaultdict(list)
    for src in adapted:
        groups[group_key(src)].append(src)
    print("\nBy recording group:")
    print_table([{"recordings": g, "words": sum(adapted[s][1] for s in srcs), "base_word_error_pct": _rate(base, srcs),
                  "adapted_word_error_pct": _rate(adapted, srcs)} for g, srcs in sorted(groups.items())])
    return 0


if __name__ == "__main__":
    sys.exit(main())
