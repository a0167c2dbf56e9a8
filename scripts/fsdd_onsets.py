"""Which FSDD recordings start mid-word, and where a CTC model's word errors come from.

    python scripts/fsdd_onsets.py --root ../shared/data/fsdd/recordings
    python scripts/fsdd_onsets.py --root ../shared/data/fsdd/recordings \
        --ckpt checkpoints/ctc_fsdd/<best>.ckpt --manifest data/fsdd_ctc/test.csv --lm data/fsdd_ctc/lm.arpa

The first table groups each speaker's recordings by index decade (0-9, 10-19, ...: FSDD speakers recorded in
sessions) and prints the mean clip length and the onset ratio: the RMS of a clip's first 20 ms over the RMS of the
whole clip. A clip that starts before the word has a small ratio; one that starts at full loudness (ratio near 1 or
above) was trimmed into the word and lost its first consonant (george's recordings 30-39 in FSDD).

With ``--ckpt`` and a composed-sequence manifest (``scripts/prepare_ctc_fsdd.py`` writes ``segments.jsonl`` beside
it), the second table decodes the manifest (beam 16, with ``--lm`` if given) and prints the word error rate per
decade of the source recordings, over the utterances whose hypothesis has as many words as the reference (words
are then compared position by position), plus the most frequent confusions.
"""
from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.audio import load_audio
from kwslab.data.sources.fsdd import parse_fsdd_name


def decade(path: str | Path) -> tuple[str, int]:
    """``{digit}_{speaker}_{index}.wav`` -> ``(speaker, first index of its decade)``."""
    parsed = parse_fsdd_name(Path(path).name)
    if parsed is None:
        raise ValueError(f"{path}: not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav)")
    return parsed[1], parsed[2] // 10 * 10


def onset_ratio(y: np.ndarray, sample_rate: int, head_ms: float = 20.0) -> float:
    """RMS of the first ``head_ms`` over the RMS of the whole clip (0 for a silent clip)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    head = y[: max(1, int(sample_rate * head_ms / 1000))]
    return float(np.sqrt(np.mean(np.square(head, dtype=np.float64)))) / rms if rms > 0 else 0.0


def onset_table(root: str | Path, sample_rate: int = 8000) -> list[dict[str, object]]:
    """One row per speaker and index decade: clips, mean length (s), mean onset ratio."""
    files = sorted(Path(root).glob("*.wav"))
    if not files:
        raise SystemExit(f"--root {root}: no WAV files")
    groups: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for f in files:
        y = load_audio(f, sample_rate)
        groups[decade(f)].append((y.size / sample_rate, onset_ratio(y, sample_rate)))
    return [{"speaker": spk, "indices": f"{d}-{d + 9}", "clips": len(v),
             "length_s": round(float(np.mean([x[0] for x in v])), 3),
             "onset_ratio": round(float(np.mean([x[1] for x in v])), 3)} for (spk, d), v in sorted(groups.items())]


def error_table(ckpt: str, manifest: str, lm: str | None, beam_width: int = 16, alpha: float = 0.5,
                beta: float = 0.0) -> tuple[list[dict[str, object]], list[tuple[tuple[str, str], int]]]:
    """Word error rate per (speaker, decade) of the source recordings of a composed-sequence manifest."""
    from kwslab.data.manifest import read_manifest
    from kwslab.data.sources.sequences import read_segments, word_errors_by_source
    from kwslab.decoding.settings import DecoderSettings
    from kwslab.inference import load_model
    from kwslab.inference.ctc import decode, posteriors

    try:
        segments = read_segments(manifest)
    except ValueError as exc:
        raise SystemExit(f"--manifest {exc}") from None
    model = load_model(ckpt)
    rows = read_manifest(manifest, need_transcript=True, vocab=model.module.vocab)
    missing = [r.filename for r in rows if r.path.resolve() not in segments]
    if missing:
        raise SystemExit(f"{manifest}: no segments for {missing[0]} (and {len(missing) - 1} more rows)")
    hyps = decode(posteriors(model, [r.path for r in rows]), model.module.vocab,
                  DecoderSettings(beam_width, lm, alpha, beta))["beam"]
    per_source, confusions, _ = word_errors_by_source([r.path for r in rows], hyps, segments)
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for source, (errors, words) in per_source.items():
        counts[decade(source)][0] += errors
        counts[decade(source)][1] += words
    table = [{"speaker": spk, "indices": f"{d}-{d + 9}", "words": n, "errors": e,
              "word_error_pct": round(100.0 * e / n, 1)} for (spk, d), (e, n) in sorted(counts.items())]
    return table, Counter(confusions).most_common(8)


def print_table(rows: Sequence[dict[str, object]]) -> None:
    if not rows:
        print("(nothing to show)")
        return
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "|".join(" --- " for _ in keys) + "|")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="FSDD recordings folder")
    parser.add_argument("--ckpt", help="a CTC checkpoint: also print word errors per recording decade")
    parser.add_argument("--manifest", help="composed-sequence manifest to decode (with --ckpt)")
    parser.add_argument("--lm", help="ARPA LM for the beam search (alpha 0.5, beta 0, as in the README)")
    args = parser.parse_args(argv)
    if bool(args.ckpt) != bool(args.manifest):
        parser.error("--ckpt and --manifest go together")
    print("Onsets (RMS of the first 20 ms / RMS of the clip; near 1 = the clip starts inside the word):")
    print_table(onset_table(args.root))
    if args.ckpt:
        table, confusions = error_table(args.ckpt, args.manifest, args.lm)
        print(f"\nWord errors by source recording ({args.ckpt}, beam 16{' + LM' if args.lm else ''}):")
        print_table(table)
        print("most frequent confusions (reference -> hypothesis): "
              + ", ".join(f"{a} -> {b} {n}" for (a, b), n in confusions))


if __name__ == "__main__":
    main()
