"""Decoder settings: the one home of the decoder defaults, :class:`DecoderSettings` and their command-line flags.

Torch-free and light (the LM and hotwords load only in :meth:`DecoderSettings.load`), so ``predict --onnx`` never
imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kwslab.decoding.hotwords import DEFAULT_HOTWORD_WEIGHT, Hotwords
from kwslab.text import CharVocab

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BEAM_WIDTH", "DEFAULT_BETA", "DecoderSettings", "add_decoder_arguments",
           "settings_from_args"]

DEFAULT_BEAM_WIDTH = 16  # prefix beam width (hypotheses kept per frame)
DEFAULT_ALPHA = 0.5  # LM weight in shallow fusion
DEFAULT_BETA = 1.0  # word insertion bonus in shallow fusion


@dataclass
class DecoderSettings:
    """How to decode: ``beam_width`` 0 means greedy only; ``lm`` is an ARPA file for shallow fusion."""

    beam_width: int = DEFAULT_BEAM_WIDTH
    lm: str | None = None
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    hotwords: list[str] = field(default_factory=list)
    hotword_weight: float = DEFAULT_HOTWORD_WEIGHT

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
            hot = Hotwords(pairs, vocab, self.hotword_weight)
        return {"lm": lm, "alpha": self.alpha, "beta": self.beta, "hotwords": hot}


def add_decoder_arguments(parser: Any) -> None:
    """The decoding flags shared by ``predict`` and ``evaluate`` for CTC checkpoints."""
    g = parser.add_argument_group("decoding (CTC checkpoints)")
    g.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH,
                   help=f"prefix beam width; 0 = greedy only (default {DEFAULT_BEAM_WIDTH})")
    g.add_argument("--lm", help="ARPA language model for shallow fusion (see scripts/tune_lm.py)")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"LM weight (default {DEFAULT_ALPHA})")
    g.add_argument("--beta", type=float, default=DEFAULT_BETA, help=f"word insertion bonus (default {DEFAULT_BETA})")
    g.add_argument("--hotwords", nargs="+", default=[], metavar="WORD[:WEIGHT]", help="words to boost")


def settings_from_args(args: Any) -> DecoderSettings:
    """:class:`DecoderSettings` from the parsed :func:`add_decoder_arguments` flags."""
    return DecoderSettings(args.beam_width, args.lm, args.alpha, args.beta, list(args.hotwords))
