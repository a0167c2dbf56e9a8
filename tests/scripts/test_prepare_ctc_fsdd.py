"""scripts/prepare_ctc_fsdd.py on a synthetic FSDD layout, with espeak-like strings from an existing word corpus."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kwslab.audio import write_wav
from kwslab.data import read_manifest
from kwslab.data.manifest import write_manifest
from kwslab.data.sources import DIGIT_WORDS
from tests.support.scripts import load_script


def _tone(rng: np.random.Generator, n: int = 1600) -> np.ndarray:
    t = np.arange(n) / 8000
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def test_speaker_held_out_and_synthetic_strings_from_a_word_corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rec = tmp_path / "recordings"
    for d in range(10):
        for spk in ("george", "jackson", "lucas"):
            for i in range(7):
                write_wav(rec / f"{d}_{spk}_{i}.wav", _tone(rng), 8000)
    words = []
    for voice in ("v1", "v2", "v3"):
        for word in DIGIT_WORDS:
            path = tmp_path / "tts" / "wav" / f"{voice}_{word}.wav"
            write_wav(path, _tone(rng), 8000)
            words.append({"filename": str(path), "keyword": word, "transcript": word, "speaker": voice})
    write_manifest(tmp_path / "tts" / "manifest.csv", words)
    out = tmp_path / "ctc"
    load_script("prepare_ctc_fsdd").main(["--root", str(rec), "--out", str(out), "--count", "60",
                                          "--synthetic", "12", "--synthetic-words", str(tmp_path / "tts" / "manifest.csv")])
    split = {s: read_manifest(out / f"{s}.csv", need_transcript=True) for s in ("train", "val", "test")}
    real = read_manifest(out / "train_fsdd.csv", need_transcript=True)
    assert {r.speaker for r in split["test"]} == {"george"}
    assert "george" not in {r.speaker for r in split["val"]} | {r.speaker for r in real}
    extra = split["train"][len(real):]
    assert len(split["train"]) == len(real) + 12 and {r.speaker for r in extra} <= {"v1", "v2", "v3"}
    assert all(2 <= len(r.transcript.split()) <= 6 and set(r.transcript.split()) <= set(DIGIT_WORDS) for r in extra)
    assert all(r.path.is_file() for r in split["train"])
    assert (out / "lm.arpa").read_text().startswith("\\data\\")
