"""Decoding settings and their command-line flags (torch-free, so ``predict --onnx`` never imports torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kwslab.text import CharVocab


@dataclass
class DecoderSettings:
    """How to decode: ``beam_width`` 0 means greedy only; ``lm`` is an ARPA file for shallow fusion."""

    beam_width: int = 16
    lm: str | None = None
    alpha: float = 0.5
    beta: float = 1.0
    hotwords: list[str] = field(default_factory=list)
    hotword_weight: float = 5.0

    def load(self, vocab: CharVocab) -> dict[str, Any]:
        """Keyword arguments for :func:`kwslab.decoding.beam_search_batch` (LM and hotwords loaded)."""
        lm = None
        if self.lm:
            from kwslab.decoding.lm import NGramLM

            lm = NGramLM.load_arpa(self.lm)
        hot = None
        if self.hotwords:
            pairs = []
            for item in self.hotwords:
                word, _, weight = item.partition(":")
                pairs.append((word, float(weight) if weight else self.hotword_weight))
            from kwslab.decoding import Hotwords

            hot = Hotwords(pairs, vocab, self.hotword_weight)
        return {"lm": lm, "alpha": self.alpha, "beta": self.beta, "hotwords": hot}

def add_decoder_arguments(parser: Any) -> None:
    """The decoding flags shared by ``predict`` and ``evaluate`` for CTC checkpoints."""
    g = parser.add_argument_group("decoding (CTC checkpoints)")
    g.add_argument("--beam-width", type=int, default=16, help="prefix beam width; 0 = greedy only (default 16)")
    g.add_argument("--lm", help="ARPA language model for shallow fusion (see scripts/tune_lm.py)")
    g.add_argument("--alpha", type=float, default=0.5, help="LM weight (default 0.5)")
    g.add_argument("--beta", type=float, default=1.0, help="word insertion bonus (default 1.0)")
    g.add_argument("--hotwords", nargs="+", default=[], metavar="WORD[:WEIGHT]", help="words to boost")


def settings_from_args(args: Any) -> DecoderSettings:
    """:class:`DecoderSettings` from the parsed :func:`add_decoder_arguments` flags."""
    return DecoderSettings(args.beam_width, args.lm, args.alpha, args.beta, list(args.hotwords))
