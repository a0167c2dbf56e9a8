"""CTC prefix beam search in log space (NumPy and plain Python).

Every hypothesis is a *prefix* (a labelling so far) with two scores: ``pb``, the log-probability of all
alignments of the prefix whose last frame is a blank, and ``pnb``, those ending in the prefix's last
token. Per frame ``t`` with log-probabilities ``lp`` (one shot for all beams and candidate tokens):

* blank stay:   ``pb'  = logaddexp(pb, pnb) + lp[blank]``
* repeat stay:  ``pnb' = pnb + lp[last]``  (the last token repeated collapses into the same prefix)
* extension by ``c``: ``pnb'(prefix + c) = (pb if c == last else logaddexp(pb, pnb)) + lp[c]``

An extension that equals a prefix already in the beam (``prefix_j == prefix_i + c``) is merged into
``prefix_j``'s repeat stay with ``logaddexp``. Prefixes are identified by 64-bit hashes (with the
parent's hash stored beside them, so finding merges is a hash comparison) and their text is kept as
per-step back-pointers or trie nodes, read back once at the end. The loop itself lives in
:mod:`kwslab.decoding._prefix_search`: with LM/hotwords, or on flat posteriors with narrow beams, it
decodes a whole batch at once (beams of all utterances in one set of arrays, amortising NumPy's
per-call overhead); otherwise utterance by utterance.

Pruning (the same knobs as pyctcdecode): at each frame a token (the blank included, as pyctcdecode
does) is tried only when its log-prob is at least ``token_min_logp``; the frame's argmax always is.
Without LM/hotwords a token is also skipped when it is more than ``-beam_prune_logp + log 2`` below the
frame's best token: it cannot start a hypothesis that survives beam pruning (its contribution to an
existing prefix, below ``exp(beam_prune_logp) / 2`` of the best hypothesis, is dropped). ``top_k``
keeps only the best tokens per frame; then the ``beam_width`` best prefixes are kept and any more than
``-beam_prune_logp`` below the best are dropped.

Skipped frames (:mod:`kwslab.decoding._plan`): a frame whose only tried token is the blank, or the same
character as the frame before's only tried token, changes no prefix's text, so runs of such frames are
applied as score shifts in one step. On peaky CTC output this leaves about a quarter of the frames
to search; small frames run as plain-Python dict merges, large ones vectorised.

Flat posteriors: when more than a few tokens are tried per frame, the beams keep only part of each
text's alignments and their scores can misorder the texts; then the final hypotheses (up to 128) are
rescored with the exact forward algorithm (their scores become
:func:`~kwslab.decoding.ctc_score.ctc_log_likelihood`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kwslab.decoding._checks import check_log_probs
from kwslab.decoding._prefix_search import prefix_search
from kwslab.decoding.hotwords import DEFAULT_HOTWORD_WEIGHT
from kwslab.decoding.settings import DEFAULT_ALPHA, DEFAULT_BEAM_WIDTH, DEFAULT_BETA
from kwslab.text import CharVocab

__all__ = ["beam_search", "beam_search_batch", "LOG_FLOOR"]

LOG_FLOOR = -1e5  # log-probs are floored here so impossible tokens stay finite (no inf - inf)


def beam_search(
    log_probs: np.ndarray,
    vocab: CharVocab,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    lm: object | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    hotwords: object | None = None,
    *,
    hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
    token_min_logp: float = -12.0,
    top_k: int | None = None,
    beam_prune_logp: float = -10.0,
    unk_score_offset: float = -10.0,
    n_best: int | None = None,
) -> list[tuple[str, float]]:
    """Decode ``(T, V)`` CTC log-probabilities with a prefix beam search, optionally with LM and hotwords.

    Args:
        log_probs: ``(T, V)`` log-probabilities, ``V == len(vocab)``; blank is ``vocab.blank``.
        vocab: The model's vocabulary.
        beam_width: Hypotheses (prefixes) kept per frame (default :data:`~kwslab.decoding.settings.DEFAULT_BEAM_WIDTH`,
            16).
        lm: Optional :class:`~kwslab.decoding.lm.NGramLM` (``unit="word"`` or ``"char"``) for shallow fusion.
        alpha: LM weight on the natural-log LM probability (only with ``lm``; default 0.5).
        beta: Word insertion bonus per completed word (only with ``lm``; default 1.0).
        hotwords: Optional words to boost: ``["word", ...]``, ``{"word": weight}``, ``[("word", w), ...]``
            or a :class:`~kwslab.decoding.hotwords.Hotwords`.
        hotword_weight: Bonus for a completed hotword given without its own weight (default 5.0).
        token_min_logp: Tokens (blank included) below this log-prob are not tried at a frame (the argmax
            always is).
        top_k: Also try at most this many tokens per frame (``None``: no limit).
        beam_prune_logp: Drop hypotheses scoring more than this below the best (a negative number).
        unk_score_offset: Added (with a word ``lm``) while the partial word is not a prefix of any LM word.
        n_best: Return at most this many hypotheses (``None``: all surviving beams).

    Returns:
        ``[(text, score), ...]`` best first. ``text`` is the exact labelling (blanks removed, repeats
        collapsed; no whitespace clean-up). Without ``lm``/``hotwords``, ``score`` is the natural-log
        CTC probability of the prefix summed over the alignments the search kept (a lower bound of
        :func:`~kwslab.decoding.ctc_score.ctc_log_likelihood`, equal to it for the hypotheses rescored
        on flat posteriors); with them it adds the fusion terms.
    """
    return beam_search_batch(
        [log_probs], vocab, beam_width, lm, alpha, beta, hotwords, hotword_weight=hotword_weight,
        token_min_logp=token_min_logp, top_k=top_k, beam_prune_logp=beam_prune_logp,
        unk_score_offset=unk_score_offset, n_best=n_best,
    )[0]


def beam_search_batch(
    log_probs: Sequence[np.ndarray],
    vocab: CharVocab,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    lm: object | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    hotwords: object | None = None,
    *,
    hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
    token_min_logp: float = -12.0,
    top_k: int | None = None,
    beam_prune_logp: float = -10.0,
    unk_score_offset: float = -10.0,
    n_best: int | None = None,
) -> list[list[tuple[str, float]]]:
    """:func:`beam_search` for several utterances at once (same results, less overhead per utterance).

    Args:
        log_probs: ``N`` arrays of shape ``(T_n, V)`` (lengths may differ), or one ``(N, T, V)`` array.
        Others: as :func:`beam_search`.

    Returns:
        One ``[(text, score), ...]`` list per utterance, best first.
    """
    lps = [np.maximum(check_log_probs(x, vocab, name=f"log_probs[{n}]"), LOG_FLOOR)
           for n, x in enumerate(log_probs)]
    if int(beam_width) < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    if beam_prune_logp > 0:
        raise ValueError(f"beam_prune_logp must be <= 0 (relative to the best beam), got {beam_prune_logp}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if n_best is not None and int(n_best) < 1:
        raise ValueError(f"n_best must be >= 1 or None, got {n_best}")
    if not lps:
        return []
    fusion = None
    if lm is not None or hotwords is not None:
        from kwslab.decoding.fusion import Fusion  # noqa: PLC0415 (plain search stays import-light)

        fusion = Fusion(vocab, lm=lm, alpha=alpha, beta=beta, hotwords=hotwords,
                        hotword_weight=hotword_weight, unk_score_offset=unk_score_offset)
    return prefix_search(lps, vocab, int(beam_width), float(token_min_logp), top_k,
                         float(beam_prune_logp), fusion, n_best)
