"""Manifest schema: validation messages, round trips, atomic writes."""

from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from kwslab.data import MANIFEST_COLUMNS, ManifestError, ManifestRow, read_manifest, write_manifest
from kwslab.text import CharVocab

SR = 8000


def _wav(path: Path, seconds: float = 0.25, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    write_wav(path, (0.1 * rng.standard_normal(int(SR * seconds))).astype(np.float32), SR)
    return path


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_roundtrip_relative_absolute_and_duration_from_header(tmp_path):
    _wav(tmp_path / "a" / "x.wav", 0.5)
    outside = _wav(tmp_path / "elsewhere" / "y.wav", 0.25)
    m = tmp_path / "a" / "m.csv"
    write_manifest(m, [
        {"filename": tmp_path / "a" / "x.wav", "keyword": "yes", "transcript": "yes", "split": "train"},
        {"filename": str(outside), "keyword": "no", "speaker": "s1", "duration": 0.25},
    ])
    lines = m.read_text().splitlines()
    assert lines[0] == ",".join(MANIFEST_COLUMNS)
    assert lines[1].startswith("x.wav,yes,yes,,,,train")  # under the folder -> relative
    assert lines[2].startswith(str(outside))  # outside -> absolute
    rows = read_manifest(m)
    assert [r.filename for r in rows] == ["x.wav", str(outside)]
    assert rows[0].path == (tmp_path / "a" / "x.wav").absolute()
    assert rows[0].duration == pytest.approx(0.5)  # filled from the WAV header
    assert rows[1].duration == 0.25 and rows[1].speaker == "s1" and rows[1].split == ""
    # ManifestRows move between folders: written from their absolute path.
    m2 = tmp_path / "other" / "m2.csv"
    write_manifest(m2, rows)
    assert [r.path for r in read_manifest(m2)] == [r.path for r in rows]


def test_every_problem_listed_with_row_numbers(tmp_path):
    _wav(tmp_path / "ok.wav")
    _wav(tmp_path / "quiet.wav")  # row 11's own file: ok.wav labelled a second way would be a problem too
    (tmp_path / "broken.wav").write_bytes(b"this is not a wav file at all" * 4)
    m = _csv(tmp_path / "m.csv", "\n".join([
        "filename,keyword,transcript,duration,split",
        "ok.wav,yes,yes,0.25,train",          # row 1: fine
        "missing.wav,yes,yes,,train",         # row 2: missing file
        "broken.wav,yes,yes,,train",          # row 3: not a WAV
        "ok.wav,no,,,train",                  # row 4: empty transcript
        "ok.wav,go,go 42,,train",             # row 5: digits outside vocab
        "ok.wav,up,up,-1,train",              # row 6: negative
        "ok.wav,up,up,0,train",               # row 7: zero
        "ok.wav,up,up,abc,train",             # row 8: non-numeric
        "ok.wav,up,up,16000,train",           # row 9: > 1 hour
        "ok.wav,up,up,,training",             # row 10: bad split
        "quiet.wav,_silence_,,,test",         # row 11: silence may have no transcript
        "ok.wav,up",                          # row 12: too few fields
    ]) + "\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m, need_transcript=True, vocab=CharVocab())
    err = info.value
    text = str(err)
    assert len(err.problems) == 10, err.problems
    for n, needle in [(2, "not found"), (3, "not a readable WAV"), (4, "transcript is empty"),
                      (5, "outside the vocabulary: '24'"), (6, "must be > 0"), (7, "must be > 0"),
                      (8, "not a number"), (9, "over 3600"), (10, "did you mean 'train'"), (12, "has 2 fields")]:
        assert any(p.startswith(f"row {n} ") and needle in p for p in err.problems), (n, needle, text)
    assert "row 1 " not in text and "row 11 " not in text
    assert str(m) in text


def test_listing_is_capped(tmp_path):
    m = _csv(tmp_path / "m.csv", "filename\n" + "".join(f"nope{i}.wav\n" for i in range(63)))
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    assert len(info.value.problems) == 63
    assert "... and 13 more" in str(info.value)
    assert "nope49.wav" in str(info.value) and "nope50.wav" not in str(info.value)


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "file not found"),
        ("", "file is empty"),
        ("  \n\n", "file is empty"),
        ("a.wav,yes\nb.wav,no\n", "no header row"),
        ("filename,keyword,keyword\n", "'keyword' appears more than once"),
        ("filename,label\n", "unknown column 'label'"),
        ("filname,keyword\n", "did you mean 'filename'"),
        ("Keyword,filename\n", "did you mean 'keyword'"),
        ("keyword,transcript\n", "required column 'filename' is missing"),
    ],
)
def test_file_level_errors(tmp_path, content, needle):
    m = tmp_path / "m.csv"
    if content is not None:
        m.write_text(content)
    with pytest.raises(ManifestError, match=needle):
        read_manifest(m)


def test_needed_columns_and_keywords(tmp_path):
    _wav(tmp_path / "a.wav")
    m = _csv(tmp_path / "m.csv", "filename\na.wav\n")
    assert [r.keyword for r in read_manifest(m)] == [""]
    with pytest.raises(ManifestError, match="'keyword' is needed"):
        read_manifest(m, need_keyword=True)
    with pytest.raises(ManifestError, match="'transcript' is needed"):
        read_manifest(m, need_transcript=True)
    m2 = _csv(tmp_path / "m2.csv", "filename,keyword\na.wav,\na.wav,yes\n")
    with pytest.raises(ManifestError, match=r"row 1 .*keyword is empty"):
        read_manifest(m2, need_keyword=True)


def test_header_only_bom_blank_lines_and_no_audio_check(tmp_path):
    assert read_manifest(_csv(tmp_path / "h.csv", "filename,keyword\n")) == []
    m = tmp_path / "bom.csv"
    m.write_bytes("\ufefffilename,transcript\n\nghost.wav,\"hello, world\"\n\n".encode("utf-8"))
    rows = read_manifest(m, check_audio=False)
    assert len(rows) == 1 and rows[0].transcript == "hello, world" and rows[0].duration is None


def test_write_manifest_rejects_unknown_keys_and_is_atomic(tmp_path):
    m = tmp_path / "m.csv"
    write_manifest(m, [{"filename": "a.wav", "keyword": "yes"}])
    before = m.read_text()
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['labl'\]"):
        write_manifest(m, [{"filename": "b.wav", "labl": "x"}])

    def rows():
        yield {"filename": "c.wav"}
        raise RuntimeError("crash while producing rows")

    with pytest.raises(RuntimeError):
        write_manifest(m, rows())
    assert m.read_text() == before  # the old file survives both failures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no temp files left
    with pytest.raises(ValueError, match="no filename"):
        write_manifest(m, [{"keyword": "yes"}])


def test_manifest_row_fields_match_columns():
    row = ManifestRow(filename="a.wav", keyword="yes", duration=1.0)
    assert tuple(row.to_dict()) == MANIFEST_COLUMNS


# ------------------------------------------------------------------------------------- issue 18: bad-input audit


def _float_wav_with(path: Path, bad: float) -> Path:
    y = np.full(SR // 4, 0.1, np.float32)
    write_wav(path, y, SR, float_format=True)
    data = bytearray(path.read_bytes())
    data[-40:-36] = np.float32(bad).tobytes()  # a sample near the end, after the header was written
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_float_wav_holding_nan_or_inf_is_refused_up_front_naming_row_and_file(tmp_path, bad):
    _wav(tmp_path / "ok.wav")
    _float_wav_with(tmp_path / "corrupt.wav", bad)
    m = _csv(tmp_path / "m.csv", "filename,keyword\nok.wav,yes\ncorrupt.wav,no\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m, need_keyword=True)
    (problem,) = info.value.problems
    assert problem.startswith("row 2 (line 3) 'corrupt.wav': ") and "non-finite float samples (NaN/Inf)" in problem
    assert str(tmp_path / "corrupt.wav") in problem


def test_ctc_row_with_a_zero_sample_clip_is_refused_naming_row_and_file(tmp_path):
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), SR)
    _wav(tmp_path / "ok.wav")
    m = _csv(tmp_path / "m.csv", "filename,transcript\nok.wav,yes\nempty.wav,no\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m, need_transcript=True)
    (problem,) = info.value.problems
    assert problem.startswith("row 2 (line 3) 'empty.wav': ") and "the audio is empty (0 samples)" in problem


def test_a_secret_file_as_a_manifest_row_or_as_the_manifest_is_described_never_quoted(tmp_path):
    (tmp_path / "secrets.env").write_text("OPENAI_API_KEY=sk-secret123\n")
    m = _csv(tmp_path / "m.csv", "filename,keyword\nsecrets.env,yes\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    message = str(info.value)
    assert "secrets.env" in message and "text" in message and "sk-secret123" not in message
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path / "secrets.env")  # the .env given as the manifest: its "header" is not echoed
    assert "sk-secret123" not in str(info.value) and "OPENAI" not in str(info.value)
    assert "required column 'filename' is missing" in str(info.value)


def test_a_directory_row_says_directory_and_a_fifo_row_is_refused_without_opening_it(tmp_path):
    import os

    (tmp_path / "folder.wav").mkdir()
    os.mkfifo(tmp_path / "pipe.wav")
    m = _csv(tmp_path / "m.csv", "filename\nfolder.wav\npipe.wav\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m)  # opening the FIFO would block here forever
    first, second = info.value.problems
    assert first.startswith("row 1 (line 2) 'folder.wav': ") and "is a directory" in first and "not found" not in first
    assert second.startswith("row 2 (line 3) 'pipe.wav': ") and "is a named pipe (FIFO)" in second


def test_exact_duplicate_rows_warn_naming_both_rows(tmp_path):
    from kwslab.data.manifest import ManifestWarning

    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav", seed=1)
    m = _csv(tmp_path / "m.csv", "filename,keyword\na.wav,yes\nb.wav,no\na.wav,yes\n")
    with pytest.warns(ManifestWarning, match=r"1 duplicate row\(s\).*row 3 \(line 4\) repeats row 1 \(line 2\) "
                                             r"\('a\.wav'\)"):
        rows = read_manifest(m)
    assert len(rows) == 3


def test_one_file_labelled_two_ways_is_refused_naming_both_rows(tmp_path):
    _wav(tmp_path / "a.wav")
    m = _csv(tmp_path / "m.csv", "filename,keyword\na.wav,yes\n./a.wav,no\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    (problem,) = info.value.problems
    assert problem.startswith("row 2 (line 3) './a.wav': the same audio file as row 1 (line 2)")
    assert "keyword 'yes' vs 'no'" in problem
