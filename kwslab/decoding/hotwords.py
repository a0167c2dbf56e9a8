"""Hotwords: words that get a score bonus in beam search, looked up through prefix hashes.

A completed hotword ``w`` (space emitted or end of utterance) earns ``weight(w)``. While a word is being
spelled, a partial word ``p`` that starts some hotword earns ``max_w weight(w) * len(p) / len(w)`` over
the hotwords it starts, so a hotword survives pruning before it is finished; the partial bonus is taken
back when the word ends (the net bonus of a finished non-hotword is zero). Every prefix of every hotword
goes into one sorted table of 64-bit prefix hashes (the same rolling hash the beam search keeps per
beam), so a look-up costs the same for 5 or 5,000 hotwords: one ``np.searchsorted`` per frame.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from kwslab.text import CharVocab

__all__ = ["DEFAULT_HOTWORD_WEIGHT", "Hotwords", "HashTable", "word_hash", "word_hashes"]

DEFAULT_HOTWORD_WEIGHT = 5.0  # bonus of a completed hotword given without its own weight (natural-log units)

_MUL = 0x9E3779B97F4A7C15  # must equal the beam search's prefix-hash multiplier
_MASK = (1 << 64) - 1


def word_hashes(ids: Iterable[int]) -> list[int]:
    """Rolling hashes (from 0) of every prefix of a token-id sequence, the last one being the word's.

    The beam search keeps the same hash for each beam's partial word (uint64 arithmetic mod 2**64).
    """
    h, out = 0, []
    for i in ids:
        h = (h * _MUL + int(i) + 1) & _MASK
        out.append(h)
    return out


def word_hash(ids: Iterable[int]) -> int:
    """Rolling hash of a whole token-id sequence (0 for the empty one)."""
    hs = word_hashes(ids)
    return hs[-1] if hs else 0


class HashTable:
    """Sorted uint64 keys -> float values with a vectorised look-up (``default`` for missing keys)."""

    def __init__(self, items: Mapping[int, float], default: float = 0.0) -> None:
        keys = np.fromiter((int(k) for k in items), dtype=np.uint64, count=len(items))
        vals = np.fromiter(items.values(), dtype=np.float64, count=len(items))
        order = np.argsort(keys)
        self.keys, self.values, self.default = keys[order], vals[order], float(default)

    def __len__(self) -> int:
        return self.keys.size

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Values for an array of hashes (same shape)."""
        if not self.keys.size:
            return np.full(np.shape(hashes), self.default)
        pos = np.minimum(np.searchsorted(self.keys, hashes), self.keys.size - 1)
        return np.where(self.keys[pos] == hashes, self.values[pos], self.default)


class Hotwords:
    """A set of single-word hotwords with weights.

    Args:
        words: ``["word", ...]``, ``{"word": weight}`` or ``[("word", weight), ...]``; words are normalised
            with ``vocab.normalize``.
        vocab: The decoder's vocabulary.
        weight: Weight of words given without one (default :data:`DEFAULT_HOTWORD_WEIGHT`, 5.0; natural-log
            units).

    Raises:
        ValueError: for an empty word, a word with a space, a character outside the vocabulary, or a
            weight that is not a finite number.
    """

    def __init__(self, words: object, vocab: CharVocab, weight: float = DEFAULT_HOTWORD_WEIGHT) -> None:
        if isinstance(words, Mapping):
            pairs = list(words.items())
        else:
            pairs = [(w, weight) if isinstance(w, str) else tuple(w) for w in words]  # type: ignore[union-attr]
        self.weights: dict[str, float] = {}
        for k, (raw, wt) in enumerate(pairs):
            word = vocab.normalize(str(raw))
            if not word or " " in word:
                raise ValueError(f"hotword #{k} {raw!r}: give one non-empty word (phrases: boost each word)")
            bad = vocab.invalid_chars(word)
            if bad:
                raise ValueError(f"hotword #{k} {raw!r} has characters outside the vocabulary: {sorted(bad)}")
            if not np.isfinite(float(wt)):
                raise ValueError(f"hotword #{k} {raw!r}: weight must be a finite number, got {wt!r}")
            self.weights[word] = max(float(wt), self.weights.get(word, float("-inf")))
        full: dict[int, float] = {}
        partial: dict[int, float] = {}
        for word, wt in self.weights.items():
            hs = word_hashes(vocab.encode(word))
            for n, h in enumerate(hs, start=1):
                partial[h] = max(partial.get(h, float("-inf")), wt * n / len(hs))
            full[hs[-1]] = wt
        self.full = HashTable(full)
        self.partial = HashTable(partial)

    def __len__(self) -> int:
        return len(self.weights)

    def __repr__(self) -> str:
        return f"Hotwords({len(self)} words)"
