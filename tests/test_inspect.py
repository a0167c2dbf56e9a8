"""`python -m kwslab.inspect`, run as a subprocess on good and broken files: table, --json, stderr, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import write_wav
from tests.audio.wavbuild import PCM, chunk, fmt, riff


def run_inspect(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwslab.inspect", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inspect")
    t = np.arange(16000) / 16000
    write_wav(d / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)  # RMS -9.03 dBFS, nothing clipped
    (d / "loud_u8.wav").write_bytes(riff(fmt(PCM, 1, 8000, 8), chunk(b"data", bytes([0, 1, 128, 254, 255, 128]))))
    stereo = np.stack([np.full(4800, 1.2), np.zeros(4800)], axis=1)  # one channel over full scale
    write_wav(d / "stereo_f32.wav", stereo, 48000, float_format=True)
    (d / "streamed.wav").write_bytes(riff(fmt(PCM, 1, 24000, 16), b"data\xff\xff\xff\xff" + b"\x00" * 9,
                                          riff_size=0xFFFFFFFF))
    (d / "error.wav").write_text('{"error": {"message": "You exceeded your current quota"}}')
    (d / "song.wav").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\x00" * 64)
    return {p.stem: p for p in d.iterdir()}


def test_table_for_good_and_broken_files(files: dict[str, Path]) -> None:
    names = ["tone", "error", "loud_u8", "stereo_f32", "missing", "streamed", "song"]
    paths = [files[n].name if n in files else "missing.wav" for n in names]
    res = run_inspect(*paths, cwd=files["tone"].parent)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["file", "rate", "ch", "encoding", "duration", "min", "max", "rms_dbfs", "clipped",
                                "notes"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == ["tone.wav", "loud_u8.wav", "stereo_f32.wav", "streamed.wav"]  # given order, good only
    assert rows["tone.wav"][1:9] == ["16000", "1", "pcm_s16", "1.000", "-0.5000", "0.5000", "-9.0", "0"]
    assert rows["loud_u8.wav"][1:9] == ["8000", "1", "pcm_u8", "0.001", "-1.0000", "0.9922", "-1.8", "2"]
    assert rows["stereo_f32.wav"][1:9] == ["48000", "2", "float32", "0.100", "0.0000", "1.0000", "-3.0", "4800"]
    assert rows["streamed.wav"][3:9] == ["pcm_s16", "0.000", "0.0000", "0.0000", "-inf", "0"]
    assert "streamed header" in lines[-1]
    err = res.stderr.splitlines()
    assert len(err) == 3
    assert err[0].startswith("error: error.wav: ") and "JSON" in err[0]
    assert "exceeded your current quota" not in err[0]  # described, never quoted (issue 18: bodies can hold keys)
    assert err[1] == "error: missing.wav: no such file"
    assert err[2].startswith("error: song.wav: ") and "MP3 (ID3 tag)" in err[2]


def test_columns_are_aligned(files: dict[str, Path]) -> None:
    res = run_inspect(str(files["tone"]), str(files["loud_u8"]), str(files["stereo_f32"]), cwd=files["tone"].parent)
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert len(lines) == 4 and "notes" not in lines[0]
    assert len({len(line) for line in lines}) == 1  # right-aligned last column: every line equally long
    for col in ["rate", "duration", "rms_dbfs"]:  # numbers right-aligned under their header
        end = lines[0].index(col) + len(col)
        assert all(line[end - 1] != " " and (end == len(line) or line[end] == " ") for line in lines)


def test_json_output(files: dict[str, Path]) -> None:
    res = run_inspect("--json", str(files["tone"]), str(files["loud_u8"]), str(files["error"]),
                      str(files["streamed"]), cwd=files["tone"].parent)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "error.wav" in res.stderr
    rows = json.loads(res.stdout)
    assert [Path(r["file"]).name for r in rows] == ["tone.wav", "loud_u8.wav", "streamed.wav"]
    tone, u8, streamed = rows
    assert (tone["sample_rate"], tone["channels"], tone["encoding"], tone["frames"]) == (16000, 1, "pcm_s16", 16000)
    assert tone["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert tone["max"] == pytest.approx(0.5, abs=1e-4) and tone["clipped"] == 0 and tone["notes"] == []
    assert u8["clipped"] == 2 and u8["min"] == -1.0 and u8["max"] == 127 / 128 and u8["sample_width"] == 1
    rms = np.sqrt(np.mean(np.array([-128, -127, 0, 126, 127, 0]) ** 2.0) / 128**2)
    assert u8["rms_dbfs"] == pytest.approx(20 * np.log10(rms))
    assert streamed["rms_dbfs"] is None and streamed["frames"] == 4 and streamed["notes"]


def test_all_good_exits_zero_and_help(files: dict[str, Path]) -> None:
    assert run_inspect(str(files["tone"]), cwd=files["tone"].parent).returncode == 0
    res = run_inspect("--help", cwd=files["tone"].parent)
    assert res.returncode == 0 and "--json" in res.stdout and "rms_dbfs" in res.stdout and "exit status" in res.stdout
    res = run_inspect(cwd=files["tone"].parent)
    assert res.returncode == 2 and "FILE" in res.stderr
