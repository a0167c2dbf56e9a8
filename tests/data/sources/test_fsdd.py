"""FSDD preparer on a synthetic layout and on the real recordings (skipped when absent)."""

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data import read_manifest
from kwslab.data.sources import DIGIT_WORDS, prepare_fsdd
from kwslab.data.sources.fsdd import parse_fsdd_name
from kwslab.prepare import main


def _layout(rec: Path, speakers=("ann", "bob", "cyd", "dan"), n_index: int = 12) -> None:
    rng = np.random.default_rng(0)
    for d in range(10):
        for spk in speakers:
            for i in range(n_index):
                write_wav(rec / f"{d}_{spk}_{i}.wav", (0.1 * rng.standard_normal(400)).astype(np.float32), 8000)
    (rec / "README.txt").write_text("not audio")
    write_wav(rec / "notes.wav", np.zeros(10, np.float32), 8000)  # not an FSDD name


def _splits(out: Path) -> dict:
    return {s: read_manifest(out / f"{s}.csv", need_keyword=True, need_transcript=True)
            for s in ("train", "val", "test")}


def test_parse_name():
    assert parse_fsdd_name("3_george_17.wav") == (3, "george", 17)
    assert parse_fsdd_name("30_george_17.wav") is None and parse_fsdd_name("x.wav") is None


def test_official_split_by_index(tmp_path):
    _layout(tmp_path / "fsdd" / "recordings")
    res = prepare_fsdd(tmp_path / "fsdd", tmp_path / "out", split="official")  # finds recordings/ below root
    assert res.skipped == {"files not named {digit}_{speaker}_{index}.wav": 1}
    rows = _splits(tmp_path / "out")
    assert [len(rows[s]) for s in ("train", "val", "test")] == [10 * 4 * 2, 10 * 4 * 5, 10 * 4 * 5]
    for split, allowed in (("test", range(0, 5)), ("val", range(5, 10)), ("train", range(10, 12))):
        for r in rows[split]:
            digit, spk, index = parse_fsdd_name(r.path.name)
            assert index in allowed
            assert r.keyword == r.transcript == DIGIT_WORDS[digit] and r.speaker == spk


def test_speaker_split_chosen_and_default(tmp_path):
    rec = tmp_path / "rec"
    _layout(rec)
    prepare_fsdd(rec, tmp_path / "o1", test_speakers=["ann", "bob"], val_speakers=["cyd"])
    rows = _splits(tmp_path / "o1")
    assert {r.speaker for r in rows["test"]} == {"ann", "bob"}
    assert {r.speaker for r in rows["val"]} == {"cyd"} and {r.speaker for r in rows["train"]} == {"dan"}
    # default: deterministic, one speaker each for val and test, no speaker in two splits
    a = prepare_fsdd(rec, tmp_path / "o2", seed=5)
    b = prepare_fsdd(rec, tmp_path / "o3", seed=5)
    assert [r["split"] for r in a.rows] == [r["split"] for r in b.rows]
    spk = {s: {r.speaker for r in v} for s, v in _splits(tmp_path / "o2").items()}
    assert len(spk["val"]) == 1 and len(spk["test"]) == 1 and len(spk["train"]) == 2
    assert not (spk["train"] & spk["val"] or spk["train"] & spk["test"] or spk["val"] & spk["test"])
    with pytest.raises(ValueError, match="unknown speaker.*'zed'.*present"):
        prepare_fsdd(rec, tmp_path / "o4", test_speakers=["zed"])
    with pytest.raises(ValueError, match="both test and val"):
        prepare_fsdd(rec, tmp_path / "o4", test_speakers=["ann"], val_speakers=["ann"])


def test_missing_root_hints_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        prepare_fsdd(tmp_path, tmp_path / "out")


def test_real_fsdd_official_and_speaker(fsdd_recordings, tmp_path, capsys):
    n = len([p for p in fsdd_recordings.glob("*.wav") if parse_fsdd_name(p.name)])
    assert main(["fsdd", "--root", str(fsdd_recordings), "--out", str(tmp_path / "off"), "--split", "official"]) == 0
    assert "total" in capsys.readouterr().out
    rows = _splits(tmp_path / "off")
    assert len(rows["test"]) == n // 10 and len(rows["train"]) + len(rows["val"]) == n - n // 10
    if n == 2000:
        assert (len(rows["train"]) + len(rows["val"]), len(rows["test"])) == (1800, 200)
    assert all(parse_fsdd_name(r.path.name)[2] < 5 for r in rows["test"])
    assert all(parse_fsdd_name(r.path.name)[2] >= 5 for r in rows["train"] + rows["val"])
    assert all(0.1 < r.duration < 3.0 for r in rows["train"])

    assert main(["fsdd", "--root", str(fsdd_recordings), "--out", str(tmp_path / "spk"), "--split", "speaker"]) == 0
    spk = {s: {r.speaker for r in v} for s, v in _splits(tmp_path / "spk").items()}
    assert all(spk.values())
    assert not (spk["train"] & spk["val"] or spk["train"] & spk["test"] or spk["val"] & spk["test"])


def test_readme_fsdd_prepare_writes_where_cnn_fsdd_yaml_reads() -> None:
    """Issue 18: the README wrote data/fsdd/ while configs/cnn_fsdd.yaml read data/fsdd/official/."""
    import re

    import yaml

    repo = Path(__file__).resolve().parents[3]
    data = yaml.safe_load((repo / "configs" / "cnn_fsdd.yaml").read_text())["data"]["init_args"]
    folders = {str(Path(data[f"{s}_manifest"]).parent) for s in ("train", "val", "test")}
    outs = re.findall(r"python -m kwslab\.prepare fsdd .*--out (\S+)", (repo / "README.md").read_text())
    assert outs and all(folders == {o.rstrip("/")} for o in outs), (outs, folders)
