"""Words that sound like a keyword but are not it: the hard negatives a detector trained from TTS needs.

Made from the spelling, since espeak-ng reads any letter string aloud: the onset swapped for other onsets
("marvin" -> "harvin", "starvin"), one vowel letter swapped ("mervin", "marvan"), and the word's first and last
parts on their own ("marv", "arvin"). Deterministic for a seed; never the keyword itself or another keyword.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["near_words"]

ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "ch", "sh", "st", "tr", "bl")
VOWELS = "aeiou"


def _candidates(word: str) -> list[str]:
    out: list[str] = []
    m = re.match(r"^(y?[^aeiouy]*)(.*)$", word)  # a leading y is a consonant
    onset, rest = (m.group(1), m.group(2)) if m else ("", word)
    if rest:
        out += [o + rest for o in ONSETS if o != onset]
    for i, c in enumerate(word):
        if c in VOWELS:
            out += [word[:i] + v + word[i + 1:] for v in VOWELS if v != c]
    if len(word) >= 5:
        out += [word[:k] for k in range(3, len(word) - 1)] + [word[k:] for k in range(2, len(word) - 2)]
    return out


def near_words(keywords: Sequence[str], per_keyword: int, seed: int = 0) -> list[str]:
    """Up to ``per_keyword`` distinct near misses of each keyword (fewer for very short words), in a seeded order.

    Args:
        keywords: the words to imitate (lower-case letters; anything else in a word is left as it is).
        per_keyword: how many to draw per keyword (0: none).
        seed: the draw's seed.
    """
    if per_keyword < 0:
        raise ValueError(f"per_keyword must be >= 0, got {per_keyword}")
    taken = {k.lower() for k in keywords}
    out: list[str] = []
    for i, word in enumerate(keywords):
        pool = sorted({c for c in _candidates(word.lower()) if len(c) >= 2 and c not in taken})
        rng = np.random.default_rng([seed, i])
        picks = [pool[j] for j in rng.permutation(len(pool))[:per_keyword]]
        out += picks
        taken.update(picks)
    return out
