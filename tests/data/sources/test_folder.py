"""Folder-per-label preparer (``kwslab.data.sources.folder``), through ``python -m kwslab.prepare folder`` too."""

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data import read_manifest
from kwslab.data.sources import prepare_folder
from kwslab.prepare import main

SR = 8000
SPK_RX = r"^(?P<speaker>[0-9a-f]+)_nohash_"


def _wav(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    write_wav(path, (0.1 * rng.standard_normal(SR // 10)).astype(np.float32), SR)


def _layout(root: Path, n_speakers: int = 12, per_speaker: int = 2) -> None:
    seed = 0
    for label in ("yes", "no"):
        for s in range(n_speakers):
            for i in range(per_speaker):
                seed += 1
                _wav(root / label / f"{s:08x}_nohash_{i}.wav", seed)
    for i in range(5):
        _wav(root / "_silence_" / f"noise{i}.wav", 100 + i)
    _wav(root / "_background_noise_" / "white.wav", 200)
    (root / "no" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")


def test_folder_speaker_disjoint_and_labels(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    _layout(root)
    res = prepare_folder(root, out, speaker_regex=SPK_RX, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert res.skipped == {"unreadable audio files": 1}
    rows = {s: read_manifest(out / f"{s}.csv") for s in ("train", "val", "test")}
    assert sum(len(v) for v in rows.values()) == 2 * 12 * 2 + 5
    assert {r.keyword for v in rows.values() for r in v} == {"yes", "no", "_silence_"}
    speakers = {s: {r.speaker for r in v if r.speaker} for s, v in rows.items()}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    for v in rows.values():
        for r in v:
            assert r.transcript == ("" if r.keyword == "_silence_" else r.keyword)
            assert r.duration == pytest.approx(0.1)
    # deterministic under the seed, different under another seed
    again = prepare_folder(root, tmp_path / "again", speaker_regex=SPK_RX, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert [(r["filename"], r["split"]) for r in again.rows] == [(r["filename"], r["split"]) for r in res.rows]
    other = prepare_folder(root, tmp_path / "other", speaker_regex=SPK_RX, val_fraction=0.2, test_fraction=0.2, seed=4)
    assert [r["split"] for r in other.rows] != [r["split"] for r in res.rows]


def test_adding_files_does_not_reshuffle(tmp_path):
    root = tmp_path / "root"
    _layout(root, n_speakers=6)
    first = {r["filename"]: r["split"] for r in prepare_folder(root, tmp_path / "a", seed=1).rows}
    for i in range(20):
        _wav(root / "yes" / f"new{i}.wav", 500 + i)
    second = {r["filename"]: r["split"] for r in prepare_folder(root, tmp_path / "b", seed=1).rows}
    assert len(second) == len(first) + 20
    assert all(second[f] == s for f, s in first.items())


def test_cli_prints_summary(tmp_path, capsys):
    root = tmp_path / "root"
    _layout(root, n_speakers=4, per_speaker=1)
    assert main(["folder", "--root", str(root), "--out", str(tmp_path / "out"), "--speaker-regex", SPK_RX]) == 0
    out = capsys.readouterr().out
    assert "keyword" in out and "total" in out and "skipped 1: unreadable audio files" in out
    total_line = [ln for ln in out.splitlines() if ln.startswith("total")][0]
    assert total_line.split()[-1] == str(2 * 4 + 5)
    assert main(["folder", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- issue 18: bad-input audit


def test_zero_sample_and_nan_files_are_left_out_and_named_so_the_manifests_read_back(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    for i in range(4):
        _wav(root / "yes" / f"good{i}.wav", i)
    write_wav(root / "yes" / "empty.wav", np.zeros(0, np.float32), SR)  # used to be a duration 0.0 row
    write_wav(root / "yes" / "nan.wav", np.full(SR // 10, 0.1, np.float32), SR, float_format=True)
    data = bytearray((root / "yes" / "nan.wav").read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()
    (root / "yes" / "nan.wav").write_bytes(bytes(data))
    res = prepare_folder(root, out, val_fraction=0.0, test_fraction=0.0)
    assert res.skipped == {"empty or corrupt audio files (0 samples, NaN/Inf)": 2}
    notes = "\n".join(res.notes)
    assert "empty.wav: the audio is empty (0 samples)" in notes and "nan.wav: 1 non-finite float samples" in notes
    rows = read_manifest(out / "train.csv")  # refused the 0.0-duration row before the fix
    assert sorted(r.path.name for r in rows) == [f"good{i}.wav" for i in range(4)]
    assert all(r.duration and r.duration > 0 for r in rows)


def test_bad_speaker_regex_is_one_line_naming_the_flag(tmp_path, capsys):
    root = tmp_path / "root"
    _layout(root, n_speakers=2, per_speaker=1)
    with pytest.raises(SystemExit) as exit_info:
        main(["folder", "--root", str(root), "--out", str(tmp_path / "out"), "--speaker-regex", "(["])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --speaker-regex: '([' is not a valid regular expression" in err and "Traceback" not in err
    with pytest.raises(ValueError, match=r"^--speaker-regex '\(\[' is not a valid regular expression"):
        prepare_folder(root, tmp_path / "out2", speaker_regex="([")
