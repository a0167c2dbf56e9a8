"""Input checks shared by the decoders (one clear error instead of a traceback from deep inside)."""

from __future__ import annotations

import numpy as np

from kwslab.text import CharVocab

_SUM_LO, _SUM_HI = np.exp(-1e-3), np.exp(1e-3)  # |logsumexp(row)| <= 1e-3


def check_log_probs(log_probs: object, vocab: CharVocab | None = None, *, name: str = "log_probs") -> np.ndarray:
    """Return ``log_probs`` as a float64 ``(T, V)`` array of log-probabilities, or raise ``ValueError``.

    Rows must be normalised log-probabilities (``logsumexp(row) == 0`` within 1e-3): the output of a
    ``log_softmax``, not raw logits or probabilities.
    """
    arr = np.asarray(log_probs, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a (T, V) array of log-probabilities, got shape {arr.shape}")
    if vocab is not None and arr.shape[1] != len(vocab):
        raise ValueError(
            f"{name} has {arr.shape[1]} classes but the vocabulary has {len(vocab)} tokens "
            f"(blank={vocab.blank}); use the CharVocab the model was trained with"
        )
    if not arr.shape[0]:
        return arr
    # Fast path (rows of valid log-probs are <= 0, so exp cannot overflow): every row's exp-sum is 1.
    if arr.max() <= 1e-3:  # False for NaN
        s = np.exp(arr) @ np.ones(arr.shape[1])  # (T,): a matrix-vector product sums short rows fastest
        if _SUM_LO <= s.min() and s.max() <= _SUM_HI:  # False for NaN
            return arr
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"{name} contains NaN or +inf; check the model output")
    m = arr.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = (m + np.log(np.exp(arr - m).sum(axis=1, keepdims=True)))[:, 0]
    bad = np.flatnonzero(~(np.abs(lse) <= 1e-3))
    if not bad.size:  # only rounding differed from the fast path
        return arr
    raise ValueError(
        f"{name} row {int(bad[0])} is not normalised (logsumexp={lse[bad[0]]:.4g}); pass "
        "log-probabilities, e.g. torch.log_softmax(logits, -1) or np.log(probs)"
    )
