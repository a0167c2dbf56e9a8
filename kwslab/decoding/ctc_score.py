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


def ctc_log_likelihoods(log_probs: np.ndarray, labellings: Sequence[Sequence[int]], blank: int) -> np.ndarray:
    """:func:`ctc_log_likelihood` of several labellings of the same frames at once (one pass over time).

    Runs in linear space, rescaling each labelling's states every frame, so alignment states below
    ``1e-300`` of that frame's best state are lost (a relative error far below float precision for
    any labelling that is not itself that improbable against its own prefixes).

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        labellings: ``R`` label sequences (no blanks).
        blank: Index of the CTC blank.

    Returns:
        ``(R,)`` log-likelihoods (``-inf`` where a labelling does not fit in ``T`` frames).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    T = lp.shape[0]
    R = len(labellings)
    lens = np.array([len(y) for y in labellings], dtype=np.int64)
    if T == 0 or R == 0:
        return np.where(lens == 0, 0.0, -np.inf)
    S = 2 * int(lens.max()) + 1
    ext = np.full((R, S), blank, dtype=np.int64)  # blank-interleaved labels; states past 2U + 1 never feed back
    for r, y in enumerate(labellings):
        ext[r, 1: 2 * len(y): 2] = y
    # Linear-space forward with the states rescaled every frame (products instead of logaddexp):
    # alpha_t = scale_t * A_t, log(scale_t) accumulated in ``log_scale``.
    skip = np.zeros((R, S))  # 1 where a label state may be entered from two states back
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    P = np.exp(lp)
    emit = P[:, ext] if T * R * S <= 1 << 22 else None  # (T, R, S), gathered at once when small
    A = np.zeros((R, S + 2))  # alpha behind two zero columns: A[:, 1:-1] / A[:, :-2] are states s-1 / s-2
    alpha = A[:, 2:]
    alpha[:, 0] = P[0, blank]
    if S > 1:
        alpha[:, 1] = np.where(lens > 0, P[0, ext[:, 1]], 0.0)
    log_scale = np.zeros(R)
    scale = np.empty((R, 1))
    for t in range(1, T):
        tmp = alpha + A[:, 1:-1]
        tmp += A[:, :-2] * skip
        np.multiply(tmp, emit[t] if emit is not None else P[t][ext], out=alpha)
        np.maximum(alpha.max(axis=1, keepdims=True), 1e-300, out=scale)
        alpha /= scale
        log_scale += np.log(scale[:, 0])
    r = np.arange(R)
    end = alpha[r, 2 * lens] + np.where(lens > 0, alpha[r, np.maximum(2 * lens - 1, 0)], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(end) + log_scale
