"""Peaky posteriors of a sentence where one character is acoustically ambiguous."""

from __future__ import annotations

import numpy as np

from kwslab.decoding.synthetic import align, posteriors
from kwslab.text import CharVocab


def ambiguous(vocab: CharVocab, text: str, pos: int, rival: str, p_rival: float = 0.55, seed: int = 0) -> np.ndarray:
    """Log-probs of ``text`` whose character at ``pos`` is emitted as ``rival`` with ``p_rival``."""
    rng = np.random.default_rng(seed)
    ids = vocab.encode(text)
    path = align(rng, ids, vocab.blank)
    lp = posteriors(rng, path, len(vocab), "peaky", confusion_rate=0.0, blank=vocab.blank)
    starts = [t for t in range(len(path)) if path[t] != vocab.blank and (t == 0 or path[t - 1] != path[t])]
    t = starts[pos]
    probs = np.full(len(vocab), 1e-6)
    probs[vocab.encode(rival)[0]] = p_rival
    probs[ids[pos]] = 1.0 - p_rival - 1e-6 * (len(vocab) - 2)
    while t < len(path) and path[t] == ids[pos]:
        lp[t] = np.log(probs)
        t += 1
    return lp
