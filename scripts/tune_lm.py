"""Grid-search the LM weight (alpha) and word bonus (beta) of beam + LM decoding on a validation manifest.

    python scripts/tune_lm.py --ckpt checkpoints/ctc/last.ckpt --manifest data/.../val.csv --lm lm.arpa \
        [--alphas 0 0.25 0.5 1 1.5] [--betas -1 0 1 2] [--beam-width 16]

Prints the greedy and no-LM beam WER, then one row per (alpha, beta), best first: a badly weighted LM makes
results worse than greedy, so tune on validation data and use the best pair on the test set.
"""
from __future__ import annotations

import argparse
import sys

from kwslab.data.manifest import read_manifest
from kwslab.decoding import tune_alpha_beta
from kwslab.decoding.lm import NGramLM
from kwslab.decoding.settings import DEFAULT_BEAM_WIDTH, DecoderSettings
from kwslab.inference import load_model
from kwslab.inference.ctc import decode, posteriors
from kwslab.metrics import error_rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--manifest", required=True, help="validation manifest with transcripts")
    parser.add_argument("--lm", required=True, help="ARPA language model")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5])
    parser.add_argument("--betas", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0])
    parser.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH)
    args = parser.parse_args(argv)
    model = load_model(args.ckpt)
    if not model.is_ctc:
        print(f"error: {args.ckpt} is not a CTC checkpoint", file=sys.stderr)
        return 2
    rows = read_manifest(args.manifest, need_transcript=True)
    vocab = model.module.vocab
    refs = [vocab.normalize(r.transcript) for r in rows]
    log_probs = posteriors(model, [r.path for r in rows])
    base = decode(log_probs, vocab, DecoderSettings(beam_width=args.beam_width))
    print(f"{len(rows)} utterances; greedy WER {error_rates(refs, base['greedy'])['wer']:.4f}, "
          f"beam {args.beam_width} (no LM) WER {error_rates(refs, base['beam'])['wer']:.4f}\n")
    grid = tune_alpha_beta(log_probs, refs, vocab, NGramLM.load_arpa(args.lm), args.alphas, args.betas,
                           args.beam_width)
    print("| alpha | beta | WER |\n|---:|---:|---:|")
    for row in grid:
        print(f"| {row['alpha']:g} | {row['beta']:g} | {row['wer']:.4f} |")
    best = grid[0]
    print(f"\nbest: --alpha {best['alpha']:g} --beta {best['beta']:g} (WER {best['wer']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
