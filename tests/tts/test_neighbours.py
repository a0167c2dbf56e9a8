"""Spelling neighbours of a keyword: the hard negatives of a detector trained from TTS."""
from __future__ import annotations

import pytest

from kwslab.tts.neighbours import near_words


def test_near_words_are_distinct_seeded_and_never_a_keyword():
    words = near_words(["marvin", "sheila"], 10, seed=0)
    assert len(words) == 20 and len(set(words)) == 20
    assert not {"marvin", "sheila"} & set(words)
    assert words == near_words(["marvin", "sheila"], 10, seed=0) and words != near_words(["marvin", "sheila"], 10, 1)
    marvin = words[:10]
    assert all(w.endswith("arvin") or w.startswith("mar") or w.startswith("m") or w.endswith("vin") for w in marvin)
    yes = near_words(["yes"], 50)
    assert "yis" in yes and "bes" in yes and all(w != "yes" for w in yes)  # a leading y is an onset
    assert near_words(["go"], 0) == []
    with pytest.raises(ValueError, match=">= 0"):
        near_words(["go"], -1)
