"""Greedy (best-path) CTC decoding."""

from __future__ import annotations

import numpy as np

from kwslab.decoding._checks import check_log_probs
from kwslab.text import CharVocab


def greedy_ids(log_probs: np.ndarray, blank: int) -> list[int]:
    """Best-path label ids: per-frame argmax, repeats collapsed, blanks dropped.

    Args:
        log_probs: ``(T, V)`` log-probabilities (or any scores: only the argmax matters).
        blank: Index of the CTC blank.
    """
    best = np.asarray(log_probs).argmax(axis=1)
    if best.size == 0:
        return []
    keep = np.ones(best.shape, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != blank
    return best[keep].tolist()


def greedy(log_probs: np.ndarray, vocab: CharVocab) -> str:
    """Greedy CTC decoding: argmax per frame, collapse repeats, drop blanks (``vocab.blank``).

    Args:
        log_probs: ``(T, V)`` log-probabilities with ``V == len(vocab)``.
        vocab: The model's vocabulary.

    Returns:
        The decoded text (exactly the labelling: no whitespace normalisation).
    """
    arr = check_log_probs(log_probs, vocab)
    return vocab.decode(greedy_ids(arr, vocab.blank))
