"""Exact CTC scores: the forward algorithm (sum over all alignments) in log space."""

from __future__ import annotations

from typing import Sequence

import numpy as np

UNDERFLOW_LOG, RESCALE_EVERY = -600.0, 64  # see ctc_log_likelihoods


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

    Runs in linear space with all labellings' states in one vector, rescaled only when needed, so most frames
    cost four NumPy calls: a state can always stay, so per frame each labelling's best state falls by at most
    the frame's smallest token probability (and grows by at most 3x). The states are divided by their best
    (its log kept) once the frames since the last rescale could have taken it below ``exp(UNDERFLOW_LOG)``,
    or after ``RESCALE_EVERY`` frames. Alignment states far below their labelling's best state are lost (a
    relative error far below float precision for any labelling that is not itself that improbable against
    its own prefixes). The beam search uses this to rescore its final hypotheses exactly.

    Args:
        log_probs: ``(T, V)`` log-probabilities.
        labellings: ``R`` label sequences (no blanks).
        blank: Index of the CTC blank.

    Returns:
        ``(R,)`` log-likelihoods (``-inf`` where a labelling does not fit in ``T`` frames).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    labellings = [list(y) for y in labellings]
    T = lp.shape[0]
    lens = np.array([len(y) for y in labellings], dtype=np.int64)
    if T == 0 or not lens.size:
        return np.where(lens == 0, 0.0, -np.inf)
    # One contiguous vector of states: labelling r's block is two zero separators then its 2U + 1 states
    # (blank-interleaved labels), padded to the longest; separators and padding have emission 0, so they
    # stay 0 and every state's s - 1 / s - 2 neighbours are the vector shifted by one / two.
    R, W = lens.size, 2 * int(lens.max()) + 3
    V = lp.shape[1]
    cls = np.full((R, W), V, dtype=np.int64)  # the class emitted by each slot; V: none (probability 0)
    for r, y in enumerate(labellings):
        cls[r, 2: 2 * len(y) + 3] = blank
        cls[r, 3: 2 * len(y) + 2: 2] = y
    skip = np.zeros((R, W))  # 1 where a label state may be entered from two states back (a new label)
    skip[:, 5::2] = (cls[:, 5::2] != cls[:, 3:-2:2]) & (cls[:, 5::2] != V)
    P = np.zeros((T, V + 1))
    np.exp(lp, out=P[:, :V])
    cls, skip = cls.ravel(), skip.ravel()
    A = np.zeros(R * W + 2)
    alpha, prev1, prev2 = A[2:], A[1:-1], A[:-2]  # views: slot p, p - 1, p - 2
    blocks = alpha.reshape(R, W)
    blocks[:, 2:4] = P[0, cls].reshape(R, W)[:, 2:4]
    # Frames run in chunks with a rescale before each (but the first): a chunk ends before the frame that
    # could take the best state below exp(UNDERFLOW_LOG), or after RESCALE_EVERY frames.
    starts, low = [1], lp.min(axis=1).tolist()
    since = low[0]  # log lower bound of the best state's fall since the last rescale
    for t in range(1, T):
        if since + low[t] < UNDERFLOW_LOG or t - starts[-1] >= RESCALE_EVERY:
            starts.append(t)
            since = 0.0
        since += low[t]
    log_scale = np.zeros(R)
    buf, buf2 = np.empty(R * W), np.empty(R * W)
    for t0, t1 in zip(starts, starts[1:] + [T]):
        if t0 > 1:
            best = np.maximum(blocks.max(axis=1), 1e-300)
            blocks /= best[:, None]
            log_scale += np.log(best)
        for emit in P[t0:t1][:, cls]:  # (t1 - t0, R * W): the chunk's emission probabilities
            np.add(alpha, prev1, out=buf)
            np.multiply(prev2, skip, out=buf2)
            buf += buf2
            np.multiply(buf, emit, out=alpha)
    r = np.arange(R)
    end = blocks[r, 2 * lens + 2] + np.where(lens > 0, blocks[r, 2 * lens + 1], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(end) + log_scale
