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
