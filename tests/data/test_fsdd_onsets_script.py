"""scripts/fsdd_onsets.py: clips trimmed into the word are flagged by their onset ratio, per index decade."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from tests.support.scripts import load_script


def word(rng: np.random.Generator, lead_s: float) -> np.ndarray:
    """A 300-ms vowel-like burst after ``lead_s`` of faint noise (0: the clip starts at full loudness)."""
    t = np.arange(int(0.3 * 8000)) / 8000
    burst = 0.4 * np.sin(2 * np.pi * rng.uniform(150, 250) * t) * np.minimum(1.0, 20 * (0.3 - t))
    lead = 0.002 * rng.standard_normal(int(lead_s * 8000))
    return np.concatenate([lead, burst]).astype(np.float32)


def test_onset_table_flags_the_decade_that_starts_inside_the_word(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(20):  # indices 10-19 were trimmed into the word, 0-9 were not
        write_wav(tmp_path / f"{i % 10}_amy_{i}.wav", word(rng, 0.0 if i >= 10 else 0.05), 8000)
    write_wav(tmp_path / "3_bob_0.wav", word(rng, 0.05), 8000)
    script = load_script("fsdd_onsets")
    rows = script.onset_table(tmp_path)
    assert [(r["speaker"], r["indices"], r["clips"]) for r in rows] == [("amy", "0-9", 10), ("amy", "10-19", 10),
                                                                       ("bob", "0-9", 1)]
    assert rows[0]["onset_ratio"] < 0.05 and rows[1]["onset_ratio"] > 0.9
    assert rows[0]["length_s"] == pytest.approx(0.35, abs=0.001)
    assert rows[1]["length_s"] == pytest.approx(0.3, abs=0.001)
    assert script.decade("7_george_34.wav") == ("george", 30)
    with pytest.raises(ValueError, match="not an FSDD file name"):
        script.decade("noise.wav")
    with pytest.raises(SystemExit, match="no WAV files"):
        script.onset_table(tmp_path / "empty")
