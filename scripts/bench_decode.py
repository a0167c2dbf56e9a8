"""Benchmark kwslab's CTC prefix beam search against pyctcdecode on synthetic posteriors.

Prints a markdown table: CPU ms per utterance for ours (one call per utterance, and one batched call for
all utterances of a setting), pyctcdecode (same beam_width / beam_prune_logp / token_min_logp), the
speed-up, and agreement: same best text (whitespace-normalised) and "ours at least as probable" (exact
CTC forward score of our best text >= that of pyctcdecode's). Then the cost of 500 hotwords.

Usage: .venv/bin/python scripts/bench_decode.py [--utts 20] [--flat-utts 5] [--frames 100 250 500]
Times are process CPU time (``time.process_time``), so other jobs on a shared machine distort them less.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from kwslab.decoding import Hotwords, beam_search, beam_search_batch, ctc_log_likelihood
from kwslab.decoding.synthetic import WORDS, synthetic_utterance
from kwslab.text import CharVocab


def _utterances(vocab: CharVocab, kind: str, T: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    lo, hi = max(1, T // 30), max(1, T // 20)  # about one character per 4-5 frames
    return [synthetic_utterance(rng, vocab, kind, T, n_words=(lo, hi)) for _ in range(n)]


def _cpu(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utts", type=int, default=20, help="utterances per peaky setting")
    ap.add_argument("--flat-utts", type=int, default=5, help="utterances per flat setting (pyctcdecode is slow there)")
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 250, 500])
    ap.add_argument("--beams", type=int, nargs="+", default=[10, 32, 100])
    ap.add_argument("--token-min-logp", type=float, default=-12.0)
    ap.add_argument("--beam-prune-logp", type=float, default=-10.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    import pyctcdecode  # noqa: PLC0415 (benchmark-only reference)

    vocab = CharVocab()
    decoder = pyctcdecode.build_ctcdecoder(vocab.tokens)
    prune = dict(token_min_logp=args.token_min_logp, beam_prune_logp=args.beam_prune_logp)
    print(f"token_min_logp={args.token_min_logp}, beam_prune_logp={args.beam_prune_logp}, vocab {len(vocab)}\n")
    print("| posteriors | T | beam | ours ms | ours batched ms | pyctcdecode ms | speed-up | speed-up batched "
          "| same text % | ours >= prob % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("peaky", "flat"):
        n = args.utts if kind == "peaky" else args.flat_utts
        for T in args.frames:
            utts = _utterances(vocab, kind, T, n, args.seed + T)
            lps = [x for x, _ in utts]
            for bw in args.beams:
                ours, t_ours = _cpu(lambda: [beam_search(x, vocab, bw, **prune) for x in lps])
                batched, t_batch = _cpu(lambda: beam_search_batch(lps, vocab, bw, **prune))
                theirs, t_ref = _cpu(lambda: [decoder.decode_beams(x, beam_width=bw, **prune)[0][0] for x in lps])
                assert [o[0][0] for o in ours] == [b[0][0] for b in batched]
                same = np.mean([" ".join(o[0][0].split()) == r for o, r in zip(ours, theirs)])
                geq = np.mean([ctc_log_likelihood(x, vocab.encode(o[0][0]), vocab.blank)
                               >= ctc_log_likelihood(x, vocab.encode(r), vocab.blank) - 1e-9
                               for x, o, r in zip(lps, ours, theirs)])
                ms = [1e3 * t / n for t in (t_ours, t_batch, t_ref)]
                print(f"| {kind} | {T} | {bw} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.1f} | {ms[2] / ms[0]:.1f}x "
                      f"| {ms[2] / ms[1]:.1f}x | {100 * same:.0f} | {100 * geq:.0f} |", flush=True)
    # Hotwords: 500 random words (plus the vocabulary's words) against none, T=250 peaky, beam 32.
    rng = np.random.default_rng(args.seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    many = sorted({"".join(rng.choice(letters, size=int(rng.integers(3, 9)))) for _ in range(500)} | set(WORDS[:20]))
    lps = [x for x, _ in _utterances(vocab, "peaky", 250, args.utts, args.seed + 1)]
    hot = Hotwords(many, vocab)
    _, t_none = _cpu(lambda: [beam_search(x, vocab, 32, **prune) for x in lps])
    _, t_hot = _cpu(lambda: [beam_search(x, vocab, 32, hotwords=hot, **prune) for x in lps])
    _, t_ref0 = _cpu(lambda: [decoder.decode_beams(x, beam_width=32, **prune) for x in lps])
    _, t_ref = _cpu(lambda: [decoder.decode_beams(x, beam_width=32, hotwords=many, **prune) for x in lps])
    n = len(lps)
    print(f"\nHotwords (T=250 peaky, beam 32, {len(many)} words): ours {1e3 * t_none / n:.2f} -> "
          f"{1e3 * t_hot / n:.2f} ms, pyctcdecode {1e3 * t_ref0 / n:.1f} -> {1e3 * t_ref / n:.1f} ms per utterance")


if __name__ == "__main__":
    main()
