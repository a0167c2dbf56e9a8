"""Composed connected-word sequences: transcripts match the audio, gaps and durations are right."""

import json
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import read_wav, wav_info, write_wav
from kwslab.data import read_manifest, write_manifest
from kwslab.data.sources import compose_sequences
from kwslab.data.sources.sequences import load_word_clips
from kwslab.prepare import main

SR = 16000
TONES = {"one": 500.0, "two": 1000.0, "three": 1500.0, "four": 2000.0}
SPLIT_OF = {"s0": "train", "s1": "train", "s2": "train", "s3": "train", "s4": "val", "s5": "test"}


def _tone_clip(hz: float) -> np.ndarray:
    """0.1 s silence, 0.2 s tone, 0.1 s silence."""
    t = np.arange(int(0.2 * SR)) / SR
    pad = np.zeros(int(0.1 * SR), np.float32)
    return np.concatenate([pad, 0.3 * np.sin(2 * np.pi * hz * t).astype(np.float32), pad])


def _manifest(tmp: Path, with_split: bool = True) -> Path:
    rows = []
    for spk, split in SPLIT_OF.items():
        for word, hz in TONES.items():
            path = tmp / "clips" / f"{spk}_{word}.wav"
            write_wav(path, _tone_clip(hz), SR)
            rows.append({"filename": path, "keyword": word, "transcript": word.upper(), "speaker": spk,
                         "voice": f"v-{spk}", "split": split if with_split else ""})
    silence = tmp / "clips" / "silence.wav"  # its own file: a word's file labelled _silence_ too is refused
    write_wav(silence, np.zeros(int(0.4 * SR), np.float32), SR)
    rows.append({"filename": silence, "keyword": "_silence_", "split": "train"})
    m = tmp / "words.csv"
    write_manifest(m, rows)
    return m


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x)))))])


def test_composed_audio_matches_transcript_and_timings(tmp_path):
    out = tmp_path / "seq"
    res = compose_sequences(_manifest(tmp_path), out, count=24, min_words=2, max_words=4, gap_ms=(50, 300), seed=3)
    assert res.skipped == {"input rows without a word": 1}  # the _silence_ row
    assert len(res.rows) == 24
    # 16 train clips, 4 val, 4 test -> 16/4/4 utterances
    assert [sum(r["split"] == s for r in res.rows) for s in ("train", "val", "test")] == [16, 4, 4]
    lines = [json.loads(ln) for ln in (out / "segments.jsonl").read_text().splitlines()]
    assert len(lines) == 24
    manifests = {s: {r.path: r for r in read_manifest(out / f"{s}.csv", need_transcript=True)}
                 for s in ("train", "val", "test")}
    for row, segs, line in zip(res.rows, res.segments, lines):
        path = Path(str(row["filename"]))
        y, sr = read_wav(path)
        assert sr == SR and row["duration"] == pytest.approx(len(y) / SR)
        assert manifests[str(row["split"])][path].duration == pytest.approx(wav_info(path).duration)
        words = str(row["transcript"]).split()
        assert 2 <= len(words) <= 4 and words == [s["word"] for s in segs]
        assert line["segments"] == segs and (out / line["filename"]).absolute() == path.absolute()
        # every clip from one speaker of the utterance's split
        speakers = {Path(s["source"]).name.split("_")[0] for s in segs}
        assert speakers == {row["speaker"]} and SPLIT_OF[str(row["speaker"])] == row["split"]
        assert row["voice"] == f"v-{row['speaker']}"
        bounds = [0.0] + [t for s in segs for t in (s["start"], s["end"])] + [len(y) / SR]
        for seg in segs:
            a, b = int(round(seg["start"] * SR)), int(round(seg["end"] * SR))
            assert _dominant_hz(y[a:b], SR) == pytest.approx(TONES[seg["word"]], abs=10)
            assert 0.2 <= seg["end"] - seg["start"] <= 0.2 + 0.011  # trimmed to the tone plus 5 ms pads
        gaps = np.diff(bounds)[0::2]  # lead, between words, tail
        assert np.all(gaps >= 0.05 - 1e-3) and np.all(gaps <= 0.3 + 1e-3)
        for a, b in zip(bounds[0::2], bounds[1::2]):
            assert np.max(np.abs(y[int(a * SR) + 2 : int(b * SR) - 2]), initial=0.0) < 1e-3  # gaps are silent


def test_deterministic_resampled_untrimmed(tmp_path):
    m = _manifest(tmp_path)
    a = compose_sequences(m, tmp_path / "a", count=6, seed=1)
    b = compose_sequences(m, tmp_path / "b", count=6, seed=1)
    c = compose_sequences(m, tmp_path / "c", count=6, seed=2)
    wav = lambda res: [Path(str(r["filename"])).read_bytes() for r in res.rows]  # noqa: E731
    assert wav(a) == wav(b) and wav(a) != wav(c)
    d = compose_sequences(m, tmp_path / "d", count=4, sample_rate=8000, trim=False, seed=1)
    for row, segs in zip(d.rows, d.segments):
        y, sr = read_wav(Path(str(row["filename"])))
        assert sr == 8000
        for seg in segs:
            assert seg["end"] - seg["start"] == pytest.approx(0.4, abs=1e-3)  # silence kept
            x = y[int(seg["start"] * sr) : int(seg["end"] * sr)]
            assert _dominant_hz(x, sr) == pytest.approx(TONES[seg["word"]], abs=10)


def test_noise_at_requested_snr(tmp_path):
    m = _manifest(tmp_path)
    clean = compose_sequences(m, tmp_path / "clean", count=3, seed=4)
    noisy = compose_sequences(m, tmp_path / "noisy", count=3, seed=4, noise_snr=10.0)
    for rc, rn, segs in zip(clean.rows, noisy.rows, clean.segments):
        yc, _ = read_wav(Path(str(rc["filename"])))
        yn, _ = read_wav(Path(str(rn["filename"])))
        speech = np.concatenate([yc[int(s["start"] * SR) : int(s["end"] * SR)] for s in segs])
        noise = yn - yc
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
        assert snr == pytest.approx(10.0, abs=0.3)


def test_splits_assigned_when_missing_and_cli(tmp_path, capsys):
    m = _manifest(tmp_path, with_split=False)
    entries, skipped = load_word_clips(m, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert skipped == 1 and {s for _, _, s in entries} == {"train", "val", "test"}
    by_speaker: dict = {}
    for r, word, split in entries:
        assert word == r.keyword  # transcript "ONE" normalised to "one"
        by_speaker.setdefault(r.speaker, set()).add(split)
    assert all(len(s) == 1 for s in by_speaker.values())  # speaker-disjoint
    out = tmp_path / "cli"
    assert main(["sequences", "--manifest", str(m), "--out", str(out), "--count", "5", "--min-words", "3",
                 "--max-words", "3", "--gap-ms", "100,100"]) == 0
    text = capsys.readouterr().out
    assert "3 words" in text and "total" in text
    rows = [r for s in ("train", "val", "test") for r in read_manifest(out / f"{s}.csv")]
    assert len(rows) == 5 and all(len(r.transcript.split()) == 3 for r in rows)
    assert main(["sequences", "--manifest", str(m), "--out", str(out), "--count", "5", "--min-words", "4",
                 "--max-words", "2"]) == 2
    assert "min_words <= max_words" in capsys.readouterr().err


# --- Speech Commands connected commands: a tiny corpus laid out like the real one ------------------------------------

SC_WORDS = {"yes": 600.0, "no": 900.0, "stop": 1300.0, "go": 1700.0, "bird": 2200.0}


def _speech_commands(root: Path, speakers: int = 10, per_word: int = 2) -> Path:
    """``<word>/<speaker>_nohash_<n>.wav``: a 0.3 s tone padded to 1 s with room noise 20 dB under the tone (too
    loud for a 40 dB trim), plus ``_background_noise_``."""
    rng = np.random.default_rng(0)
    for s in range(speakers):
        for word, hz in SC_WORDS.items():
            for n in range(per_word):
                y = 0.01 * rng.standard_normal(SR).astype(np.float32)
                t = np.arange(int(0.3 * SR)) / SR
                y[int(0.35 * SR):int(0.35 * SR) + t.size] += 0.3 * np.sin(2 * np.pi * hz * t).astype(np.float32)
                write_wav(root / word / f"{0xabc000 + s:08x}_nohash_{n}.wav", y, SR)
    write_wav(root / "_background_noise_" / "white_noise.wav", 0.1 * rng.standard_normal(3 * SR).astype(np.float32),
              SR)
    return root


def _compose_cli(tmp_path, capsys, *extra: str) -> Path:
    corpus = _speech_commands(tmp_path / "sc")
    assert main(["speech-commands", "--root", str(corpus), "--task", "35", "--out", str(tmp_path / "sc35"),
                 "--val-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    out = tmp_path / "strings"
    assert main(["sequences", "--manifest", str(tmp_path / "sc35"), "--out", str(out), "--count", "40",
                 "--min-words", "2", "--max-words", "4", "--words", "yes,no,stop,go", "--distinct",
                 "--trim-floor-db", "10", "--noise-dir", str(corpus / "_background_noise_"), "--noise-snr", "20,30",
                 "--lm-order", "2", *extra]) == 0
    capsys.readouterr()
    return out


def test_speech_commands_strings_one_speaker_each_and_speaker_disjoint(tmp_path, capsys):
    out = _compose_cli(tmp_path, capsys)
    rows = {s: read_manifest(out / f"{s}.csv", need_transcript=True) for s in ("train", "val", "test")}
    assert all(rows.values())
    segments = [json.loads(ln) for ln in (out / "segments.jsonl").read_text().splitlines()]
    by_file = {(out / s["filename"]).resolve(): s["segments"] for s in segments}
    speakers_of = {s: {r.speaker for r in rs} for s, rs in rows.items()}
    assert not (speakers_of["train"] & speakers_of["val"] or speakers_of["train"] & speakers_of["test"]
                or speakers_of["val"] & speakers_of["test"])
    for split, rs in rows.items():
        for r in rs:
            segs = by_file[r.path.resolve()]
            assert r.transcript.split() == [s["word"] for s in segs]
            assert set(r.transcript.split()) <= {"yes", "no", "stop", "go"}  # --words: no "bird"
            sources = [Path(s["source"]) for s in segs]
            assert {p.name.split("_nohash_")[0] for p in sources} == {r.speaker}  # one speaker's own clips
            assert len(set(sources)) == len(sources)  # --distinct: no recording twice in a string
            y, sr = read_wav(r.path)
            for s in segs:  # the segment holds the tone, trimmed of the 1-s padding despite the room noise
                assert 0.3 <= s["end"] - s["start"] <= 0.3 + 0.03
                x = y[int(round(s["start"] * sr)):int(round(s["end"] * sr))]
                assert _dominant_hz(x, sr) == pytest.approx(SC_WORDS[s["word"]], abs=10)
    lm = (out / "lm.arpa").read_text()
    assert "\\2-grams:" in lm and " stop" in lm


def test_holdout_word_is_never_in_training_strings_nor_their_lm(tmp_path, capsys):
    out = _compose_cli(tmp_path, capsys, "--holdout-words", "stop")
    train = read_manifest(out / "train.csv", need_transcript=True)
    held = [r for s in ("val", "test") for r in read_manifest(out / f"{s}.csv", need_transcript=True)]
    assert train and not any("stop" in r.transcript.split() for r in train)
    assert any("stop" in r.transcript.split() for r in held)
    assert "stop" not in (out / "lm.arpa").read_text().split()
    # a word the input does not have is refused with the input's words
    assert main(["sequences", "--manifest", str(tmp_path / "sc35"), "--out", str(tmp_path / "bad"), "--count", "4",
                 "--words", "yes,marvin"]) == 2
    err = capsys.readouterr().err
    assert "no input clip says marvin" in err and "bird" in err and "Traceback" not in err
