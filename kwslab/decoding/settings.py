"""Decoder settings: the one home of the decoder defaults, :class:`DecoderSettings` and their command-line flags.

Torch-free and light (the LM and hotwords load only in :meth:`DecoderSettings.load`), so ``predict --onnx`` never
imports torch.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from kwslab.decoding.hotwords import DEFAULT_HOTWORD_WEIGHT, Hotwords
from kwslab.text import CharVocab

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BEAM_WIDTH", "DEFAULT_BETA", "DecoderSettings", "DecoderSettingsError",
           "add_decoder_arguments",
           "finite_float", "hotword", "non_negative_int", "positive_float", "positive_int", "settings_from_args"]

DEFAULT_BEAM_WIDTH = 16  # prefix beam width (hypotheses kept per frame)
DEFAULT_ALPHA = 0.5  # LM weight in shallow fusion
DEFAULT_BETA = 1.0  # word insertion bonus in shallow fusion


# -- argparse types: a bad value is one line from the parser ("argument --top-k: ..."), never a traceback later -----
def _number(kind: Callable[[str], Any], what: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, "an integer >= 1", lambda v: v >= 1)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
finite_float = _number(float, "a finite number", math.isfinite)
positive_float = _number(float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def hotword(text: str) -> str:
    """argparse type of ``--hotwords``: ``WORD`` or ``WORD:WEIGHT`` with a finite WEIGHT."""
    word, sep, weight = text.partition(":")
    if not word.strip():
        raise argparse.ArgumentTypeError(f"expected WORD[:WEIGHT], got {text[:40]!r} (no word)")
    if sep:
        finite = _number(float, "WORD:WEIGHT with a finite number as WEIGHT", math.isfinite)
        try:
            finite(weight)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected WORD:WEIGHT with a finite number as WEIGHT, got "
                                             f"{text[:40]!r}") from None
    return text


class DecoderSettingsError(ValueError):
    """Decoder settings that cannot be used with this model (e.g. a hotword with characters outside its vocabulary);
    a malformed ``--lm`` file is a :class:`kwslab.decoding.lm.ArpaError`."""


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
            try:
                hot = Hotwords(pairs, vocab, self.hotword_weight)
            except ValueError as exc:
                raise DecoderSettingsError(f"--hotwords: {exc}") from None
        return {"lm": lm, "alpha": self.alpha, "beta": self.beta, "hotwords": hot}


def add_decoder_arguments(parser: Any) -> None:
    """The decoding flags shared by ``predict`` and ``evaluate`` for CTC checkpoints."""
    g = parser.add_argument_group("decoding (CTC checkpoints)")
    g.add_argument("--beam-width", type=non_negative_int, default=DEFAULT_BEAM_WIDTH,
                   help=f"prefix beam width; 0 = greedy only (default {DEFAULT_BEAM_WIDTH})")
    g.add_argument("--lm", help="ARPA language model for shallow fusion (see scripts/tune_lm.py)")
    g.add_argument("--alpha", type=_non_negative_float, default=DEFAULT_ALPHA,
                   help=f"LM weight, >= 0 (default {DEFAULT_ALPHA})")
    g.add_argument("--beta", type=finite_float, default=DEFAULT_BETA,
                   help=f"word insertion bonus (default {DEFAULT_BETA})")
    g.add_argument("--hotwords", nargs="+", type=hotword, default=[], metavar="WORD[:WEIGHT]",
                   help="words to boost (WEIGHT: a number)")


def settings_from_args(args: Any) -> DecoderSettings:
    """:class:`DecoderSettings` from the parsed :func:`add_decoder_arguments` flags."""
    return DecoderSettings(args.beam_width, args.lm, args.alpha, args.beta, list(args.hotwords))
