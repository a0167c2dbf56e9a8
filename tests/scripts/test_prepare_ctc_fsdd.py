"""scripts/prepare_ctc_fsdd.py on a synthetic FSDD layout, with espeak-like strings from an existing word corpus."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data import read_manifest
from kwslab.data.manifest import write_manifest
from kwslab.data.sources import DIGIT_WORDS
from tests.support.scripts import load_script


def _tone(rng: np.random.Generator, n: int = 1600) -> np.ndarray:
    t = np.arange(n) / 8000
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def _fsdd(rec: Path, rng: np.random.Generator) -> Path:
    """Three speakers x ten digits x seven recordings, named like FSDD's."""
    for d in range(10):
        for spk in ("george", "jackson", "lucas"):
            for i in range(7):
                write_wav(rec / f"{d}_{spk}_{i}.wav", _tone(rng), 8000)
    return rec


def test_speaker_held_out_and_synthetic_strings_from_a_word_corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rec = _fsdd(tmp_path / "recordings", rng)
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


def test_real_speakers_of_another_corpus_join_training_at_their_own_rate(tmp_path: Path) -> None:
    """Speech Commands digit speakers (16 kHz) beside FSDD (8 kHz): strings of one speaker each, in training only."""
    from kwslab.audio import wav_info

    rng = np.random.default_rng(1)
    rec = _fsdd(tmp_path / "recordings", rng)
    rows = []
    for s, spk in enumerate(("0a1b2c3d", "4e5f6a7b", "8c9d0e1f")):
        for word in DIGIT_WORDS:
            path = tmp_path / "sc" / word / f"{spk}_nohash_0.wav"
            write_wav(path, np.repeat(_tone(rng), 2), 16000)
            rows.append({"filename": str(path), "keyword": word, "transcript": word, "speaker": spk,
                         "split": ("train", "val", "test")[s]})
    bird = tmp_path / "sc" / "bird" / "0a1b2c3d_nohash_0.wav"  # another word: left out
    write_wav(bird, np.repeat(_tone(rng), 2), 16000)
    rows.append({"filename": str(bird), "keyword": "bird", "transcript": "bird", "speaker": "0a1b2c3d",
                 "split": "train"})
    write_manifest(tmp_path / "sc35.csv", rows)
    out = tmp_path / "ctc"
    script = load_script("prepare_ctc_fsdd")
    script.main(["--root", str(rec), "--out", str(out), "--count", "60", "--real", "9", "--real-words",
                 str(tmp_path / "sc35.csv")])
    train = read_manifest(out / "train.csv", need_transcript=True)
    fsdd = read_manifest(out / "train_fsdd.csv", need_transcript=True)
    extra = train[len(fsdd):]
    assert len(extra) == 9 and {r.speaker for r in extra} <= {"0a1b2c3d", "4e5f6a7b", "8c9d0e1f"}
    assert all(set(r.transcript.split()) <= set(DIGIT_WORDS) for r in extra)  # no "bird"
    assert {wav_info(r.path).sample_rate for r in extra} == {16000}
    assert {wav_info(r.path).sample_rate for r in fsdd} == {8000}
    assert {r.speaker for r in read_manifest(out / "test.csv")} == {"george"}
    # the LM is the FSDD training text only, as before
    assert (out / "lm.arpa").is_file()
    with pytest.raises(SystemExit):
        script.main(["--root", str(rec), "--out", str(out), "--real", "9"])
