"""CTC decoding in NumPy: greedy, prefix beam search (LM fusion, hotwords), exact CTC scores, keyword search.

All decoders take ``(T, V)`` log-probabilities and a :class:`kwslab.text.CharVocab` (the blank is
``vocab.blank``, never assumed to be 0).
"""

from kwslab.decoding.beam import beam_search, beam_search_batch
from kwslab.decoding.ctc_score import ctc_log_likelihood
from kwslab.decoding.greedy import greedy, greedy_ids
from kwslab.decoding.hotwords import Hotwords
from kwslab.decoding.keyword_search import Detection, FrameDetection, keyword_search
from kwslab.decoding.settings import DEFAULT_BEAM_WIDTH, DecoderSettings

__all__ = [
    "ArpaError", "DEFAULT_BEAM_WIDTH", "DecoderSettings", "Detection", "FrameDetection", "Hotwords", "NGramLM",
    "beam_search", "beam_search_batch", "ctc_log_likelihood", "greedy", "greedy_ids", "keyword_search",
    "tune_alpha_beta",
]

# The LM names load on first use, so ``python -m kwslab.decoding.lm`` runs without a double import.
_LAZY = {"ArpaError": "kwslab.decoding.lm", "NGramLM": "kwslab.decoding.lm", "tune_alpha_beta": "kwslab.decoding.tune"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kwslab.decoding' has no attribute {name!r}")
