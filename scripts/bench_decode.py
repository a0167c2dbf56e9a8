"""Benchmark kwslab's CTC prefix beam search against pyctcdecode on synthetic posteriors.

Prints a markdown table: wall-clock ms per utterance for ours (one call per utterance, and one batched
call for all utterances of a setting), pyctcdecode (same beam_width / beam_prune_logp / token_min_logp),
the speed-ups, and agreement: same best text (whitespace-normalised) and "ours at least as probable"
(exact CTC forward score of our best labelling >= that of pyctcdecode's text). Then the cost of 500 hotwords.

Times are medians of ``--repeats`` passes (``time.perf_counter``, or ``--clock process``); each pass runs ours, ours batched and
pyctcdecode in turn, so load on a shared machine hits all three alike (the ratios are what count).
pyctcdecode gets fewer passes where one pass takes longer than ``--ref-budget`` seconds.

Usage: .venv/bin/python scripts/bench_decode.py [--utts 20] [--flat-utts 5] [--frames 100 250 500]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np

from kwslab.decoding import Hotwords, beam_search, beam_search_batch, ctc_log_likelihood
from kwslab.decoding.synthetic import WORDS, synthetic_utterance
from kwslab.text import CharVocab


def _utterances(vocab: CharVocab, kind: str, T: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    lo, hi = max(1, T // 30), max(1, T // 20)  # about one character per 4-5 frames
    return [synthetic_utterance(rng, vocab, kind, T, n_words=(lo, hi)) for _ in range(n)]


CLOCK = time.perf_counter  # --clock process: time.process_time (CPU time of this process)


def _timed(fn):
    t0 = CLOCK()
    out = fn()
    return out, CLOCK() - t0


def _medians(fns: list, repeats: int, budget: float) -> tuple[list, list[float]]:
    """Run ``fns`` in turn ``repeats`` times (a function slower than ``budget`` s fewer times).

    Returns the first pass's outputs and each function's median seconds.
    """
    outs, times = [], [[] for _ in fns]
    for r in range(repeats):
        for k, fn in enumerate(fns):
            if r and sum(times[k]) > budget:
                continue
            out, dt = _timed(fn)
            times[k].append(dt)
            if not r:
                outs.append(out)
    return outs, [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utts", type=int, default=20, help="utterances per peaky setting")
    ap.add_argument("--flat-utts", type=int, default=5, help="utterances per flat setting (pyctcdecode is slow there)")
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 250, 500])
    ap.add_argument("--beams", type=int, nargs="+", default=[10, 32, 100])
    ap.add_argument("--kinds", nargs="+", default=["peaky", "flat"], choices=["peaky", "flat"])
    ap.add_argument("--repeats", type=int, default=5, help="timed passes per setting (median reported)")
    ap.add_argument("--ref-budget", type=float, default=3.0, help="seconds after which a method stops repeating")
    ap.add_argument("--token-min-logp", type=float, default=-12.0)
    ap.add_argument("--beam-prune-logp", type=float, default=-10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hotwords", action="store_true", help="skip the hotword timing")
    ap.add_argument("--clock", choices=["perf", "process"], default="perf",
                    help="wall clock (perf_counter) or this process's CPU time (process_time)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "perf" else time.process_time
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    import pyctcdecode  # noqa: PLC0415 (benchmark-only reference)

    vocab = CharVocab()
    decoder = pyctcdecode.build_ctcdecoder(vocab.tokens)
    index = {c: i for i, c in enumerate(vocab.tokens) if i != vocab.blank}
    prune = dict(token_min_logp=args.token_min_logp, beam_prune_logp=args.beam_prune_logp)
    print(f"token_min_logp={args.token_min_logp}, beam_prune_logp={args.beam_prune_logp}, vocab {len(vocab)}, "
          f"median of {args.repeats} passes ({CLOCK.__name__})\n")
    print("| posteriors | T | beam | utts | ours ms | ours batched ms | pyctcdecode ms | speed-up | speed-up batched "
          "| same text % | ours >= prob % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = {}
    for kind in args.kinds:
        n = args.utts if kind == "peaky" else args.flat_utts
        for T in args.frames:
            lps = [x for x, _ in _utterances(vocab, kind, T, n, args.seed + T)]
            for bw in args.beams:
                (ours, batched, theirs), (t_ours, t_batch, t_ref) = _medians([
                    lambda: [beam_search(x, vocab, bw, **prune) for x in lps],
                    lambda: beam_search_batch(lps, vocab, bw, **prune),
                    lambda: [decoder.decode_beams(x, beam_width=bw, **prune)[0][0] for x in lps],
                ], args.repeats, args.ref_budget)
                assert [o[0][0] for o in ours] == [b[0][0] for b in batched]
                same = np.mean([" ".join(o[0][0].split()) == r for o, r in zip(ours, theirs)])
                # Our text is the exact labelling (it may hold extra spaces); pyctcdecode's is normalised.
                geq = np.mean([ctc_log_likelihood(x, [index[c] for c in o[0][0]], vocab.blank)
                               >= ctc_log_likelihood(x, vocab.encode(r), vocab.blank) - 1e-9
                               for x, o, r in zip(lps, ours, theirs)])
                ms = [1e3 * t / n for t in (t_ours, t_batch, t_ref)]
                worst[(kind, T, bw)] = min(ms[2] / ms[0], ms[2] / ms[1])
                print(f"| {kind} | {T} | {bw} | {n} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.1f} | {ms[2] / ms[0]:.1f}x "
                      f"| {ms[2] / ms[1]:.1f}x | {100 * same:.0f} | {100 * geq:.0f} |", flush=True)
    if worst:
        key = min(worst, key=worst.get)
        print(f"\nslowest relative setting: {key} at {worst[key]:.1f}x")
    if args.no_hotwords:
        return
    # Hotwords: 500 random words (plus the vocabulary's words) against none, T=250 peaky, beam 32.
    rng = np.random.default_rng(args.seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    many = sorted({"".join(rng.choice(letters, size=int(rng.integers(3, 9)))) for _ in range(500)} | set(WORDS[:20]))
    lps = [x for x, _ in _utterances(vocab, "peaky", 250, args.utts, args.seed + 1)]
    hot = Hotwords(many, vocab)
    _, (t_none, t_hot) = _medians([lambda: [beam_search(x, vocab, 32, **prune) for x in lps],
                                   lambda: [beam_search(x, vocab, 32, hotwords=hot, **prune) for x in lps]],
                                  args.repeats, args.ref_budget)
    _, (t_ref0, t_ref) = _medians([
        lambda: [decoder.decode_beams(x, beam_width=32, **prune) for x in lps],
        lambda: [decoder.decode_beams(x, beam_width=32, hotwords=many, **prune) for x in lps],
    ], 1, 0.0)
    n = len(lps)
    print(f"\nHotwords (T=250 peaky, beam 32, {len(many)} words): ours {1e3 * t_none / n:.2f} -> "
          f"{1e3 * t_hot / n:.2f} ms, pyctcdecode {1e3 * t_ref0 / n:.1f} -> {1e3 * t_ref / n:.1f} ms per utterance")


if __name__ == "__main__":
    main()
