"""Speech Commands preparer on a small, partial copy of the corpus layout."""

import math
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import read_wav, write_wav
from kwslab.data import read_manifest
from kwslab.data.sources import prepare_speech_commands

SR = 16000
WORDS = ("yes", "no", "up", "bed", "bird", "cat")  # three command words, three others
SPEAKERS = [f"{0xabc000 + i:08x}" for i in range(8)]  # 0-5 train, 6 val, 7 test


def _layout(root: Path, lists: bool = True, noise: bool = True) -> None:
    rng = np.random.default_rng(0)
    val, test = [], []
    for w in WORDS:
        for si, spk in enumerate(SPEAKERS):
            for n in range(2):
                rel = f"{w}/{spk}_nohash_{n}.wav"
                write_wav(root / rel, (0.1 * rng.standard_normal(SR // 20)).astype(np.float32), SR)
                (val if si == 6 else test if si == 7 else []).append(rel)
    write_wav(root / "yes" / "badname.wav", np.zeros(10, np.float32), SR)
    if lists:
        # the lists also name files that this partial copy lacks: 2 + 1 entries
        absent = ["go/deadbeef_nohash_0.wav", "yes/ffff_nohash_9.wav"]
        (root / "validation_list.txt").write_text("\n".join(val + absent) + "\n")
        (root / "testing_list.txt").write_text("\n".join(test + ["stop/0000_nohash_0.wav"]) + "\n")
    if noise:
        # 12 s of noise: 100 Hz in the first 80 % (train region), 1 kHz next 10 % (val), 3 kHz last 10 % (test)
        t = np.arange(12 * SR) / SR
        f = np.where(t < 9.6, 100.0, np.where(t < 10.8, 1000.0, 3000.0))
        write_wav(root / "_background_noise_" / "tones.wav", (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), SR)


def _rows(out: Path) -> dict:
    return {s: read_manifest(out / f"{s}.csv", need_keyword=True) for s in ("train", "val", "test")}


def _dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


def test_task12_partial_copy(tmp_path):
    root, out = tmp_path / "sc", tmp_path / "out"
    _layout(root)
    res = prepare_speech_commands(root, out, task=12, unknown_fraction=0.5, silence_fraction=0.25, seed=1)
    assert res.skipped["list entries naming files that are not present"] == 3
    assert res.skipped["files not named <speaker>_nohash_<n>.wav"] == 1
    rows = _rows(out)
    for split, spk in (("train", set(SPEAKERS[:6])), ("val", {SPEAKERS[6]}), ("test", {SPEAKERS[7]})):
        r = rows[split]
        known = [x for x in r if x.keyword in ("yes", "no", "up")]
        unknown = [x for x in r if x.keyword == "_unknown_"]
        silence = [x for x in r if x.keyword == "_silence_"]
        assert len(known) == 3 * len(spk) * 2
        assert len(unknown) == min(3 * len(spk) * 2, math.ceil(0.5 * len(known)))
        assert len(silence) == math.ceil(0.25 * len(known))
        assert {x.speaker for x in known + unknown} <= spk
        assert all(x.transcript in ("bed", "bird", "cat") and x.path.parent.name == x.transcript for x in unknown)
        assert len({x.path for x in unknown}) == len(unknown)  # sampled without replacement
        want_hz = {"train": 100.0, "val": 1000.0, "test": 3000.0}[split]
        for x in silence:
            assert x.path.is_relative_to(out / "_silence_") and x.transcript == ""
            y, sr = read_wav(x.path)
            assert sr == SR and len(y) == SR and x.duration == 1.0
            assert abs(_dominant_hz(y) - want_hz) < 20  # cut from this split's region of the noise file only
    again = prepare_speech_commands(root, tmp_path / "again", task=12, unknown_fraction=0.5, silence_fraction=0.25,
                                    seed=1)
    assert [(r["keyword"], Path(str(r["filename"])).name) for r in again.rows] == \
           [(r["keyword"], Path(str(r["filename"])).name) for r in res.rows]
    # a rerun with fewer silence clips removes the extra files
    prepare_speech_commands(root, out, task=12, silence_fraction=0.0)
    assert not list((out / "_silence_").glob("*.wav"))


def test_task35_without_lists_or_noise(tmp_path):
    root, out = tmp_path / "sc", tmp_path / "out"
    _layout(root, lists=False, noise=False)
    res = prepare_speech_commands(root, out, task=35, val_fraction=0.2, test_fraction=0.2)
    rows = _rows(out)
    assert {x.keyword for v in rows.values() for x in v} == set(WORDS)
    assert sum(len(v) for v in rows.values()) == len(WORDS) * len(SPEAKERS) * 2
    spk = {s: {x.speaker for x in v} for s, v in rows.items()}
    assert all(spk.values())
    assert not (spk["train"] & spk["val"] or spk["train"] & spk["test"] or spk["val"] & spk["test"])
    assert any("speaker-disjointly" in n for n in res.notes)
    # task 12 without _background_noise_: synthetic noise at -60..-20 dBFS
    prepare_speech_commands(root, tmp_path / "o12", task=12, silence_fraction=1.0, seed=2)
    sil = [x for v in _rows(tmp_path / "o12").values() for x in v if x.keyword == "_silence_"]
    assert sil
    levels = [20 * np.log10(np.sqrt(np.mean(read_wav(x.path)[0] ** 2))) for x in sil]
    assert all(-61 < lv < -19 for lv in levels) and np.std(levels) > 1.0


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="task must be 12 or 35"):
        prepare_speech_commands(tmp_path, tmp_path / "o", task=10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="--download"):
        prepare_speech_commands(tmp_path / "empty", tmp_path / "o")


def test_temp_files_left_by_a_killed_run_are_removed_on_the_next_run(tmp_path):
    import os
    import time

    root, out = tmp_path / "sc", tmp_path / "out"
    _layout(root, lists=False, noise=False)
    left = [root / "yes" / ".abc000_nohash_0.wav.k3j9x2ab.tmp",  # a member being extracted at kill -9
            out / "_silence_" / ".train_00000.wav.1f2e3d4c.tmp",  # a _silence_ clip being written
            out / ".train.csv.q8w7e6r5.tmp"]  # a manifest being written
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        old = time.time() - 3600
        os.utime(path, (old, old))
    fresh = out / ".val.csv.zzzzzzzz.tmp"  # just written: may belong to a run still going
    fresh.write_bytes(b"partial")
    keep = root / "speech_commands_v0.02.tar.gz.part"  # a download to resume, not a temp file
    keep.write_bytes(b"partial")
    res = prepare_speech_commands(root, out, task=35, seed=1)
    assert not any(p.exists() for p in left)
    assert fresh.exists() and keep.exists()
    assert any("removed 3 temp file(s) left by an interrupted run" in n for n in res.notes)


def test_excluded_words_leave_every_split_and_move_no_other_clip(tmp_path):
    """A word kept from a model (the embedding's held-out words) is dropped after the speaker split, so every other
    clip lands in the split it had without the exclusion."""
    root = tmp_path / "sc"
    _layout(root, lists=False, noise=False)
    word = sorted(WORDS)[0]
    prepare_speech_commands(root, tmp_path / "all", task=35, val_fraction=0.2, test_fraction=0.2)
    res = prepare_speech_commands(root, tmp_path / "less", task=35, val_fraction=0.2, test_fraction=0.2,
                                  exclude_words=[word])
    full, less = _rows(tmp_path / "all"), _rows(tmp_path / "less")
    for split in full:
        assert {x.filename for x in less[split]} == {x.filename for x in full[split] if x.keyword != word}
    assert not any(x.keyword == word for v in less.values() for x in v)
    assert res.skipped[f"clips of excluded words ({word})"] == sum(x.keyword == word for v in full.values() for x in v)
    with pytest.raises(ValueError, match="are not words of"):
        prepare_speech_commands(root, tmp_path / "x", task=35, exclude_words=["zebra"])
