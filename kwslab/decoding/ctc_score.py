"""Exact CTC scores: the forward algorithm (sum over all alignments) in log space."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ctc_log_likelihood(log_probs: np.ndarray, ids: Sequence[int], blank: int) -> float:
    """Natural-log probability of a labelling under CTC: ``log sum_{paths -> ids} prod_t p_t(path_t)``.

    The standard forward algorithm over the blank-interleaved sequence ``[b, y1, b, y2, ..., yU, b]``
    (length ``2U + 1``), vectorised over states, one step per frame.

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        ids: The labelling (no blanks), e.g. ``vocab.encode(text)``.
        blank: Index of the CTC blank.

    Returns:
        The log-likelihood; ``-inf`` when no alignment exists (too few frames for the labelling).

    Raises:
        ValueError: if ``ids`` contains the blank or an index outside ``[0, V)``.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {lp.shape}")
    T, V = lp.shape
    y = np.asarray(list(ids), dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= V or (y == blank).any()):
        raise ValueError(f"ids must be non-blank token ids in [0, {V}) (blank={blank}), got {y.tolist()}")
    U = y.size
    if T == 0:
        return 0.0 if U == 0 else float("-inf")
    ext = np.full(2 * U + 1, blank, dtype=np.int64)
    ext[1::2] = y
    S = ext.size
    # A label state may be entered from two states back unless it repeats the label before it.
    skip = np.zeros(S, dtype=bool)
    if U > 1:
        skip[3::2] = y[1:] != y[:-1]
    alpha = np.full(S, -np.inf)
    alpha[0] = lp[0, blank]
    if U:
        alpha[1] = lp[0, y[0]]
    emit = lp[:, ext]  # (T, S)
    prev1 = np.full(S, -np.inf)
    prev2 = np.full(S, -np.inf)
    for t in range(1, T):
        prev1[1:] = alpha[:-1]
        prev2[2:] = np.where(skip[2:], alpha[:-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, prev1), prev2) + emit[t]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if U else alpha[-1])
