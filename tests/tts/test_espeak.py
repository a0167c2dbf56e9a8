"""The offline espeak-ng backend: voices, specs, audio quality, determinism, balanced and resumable builds."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import read_wav, wav_bytes
from kwslab.tts import BuildConfig, BuildError, VoiceSpec, build_dataset, parse_voice_spec, synthesize
from kwslab.tts.__main__ import main
from kwslab.tts.espeak import list_languages, list_variants, resolve_voices

VOICES = ["en-us+f3", "en-gb-scotland+m3"]


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def build(out: Path, **kw) -> tuple[list[dict[str, str]], object]:
    base = dict(out=str(out), keywords=["yes", "no", "seven"], voices=VOICES, per_voice=2, progress=False)
    base.update(kw)
    summary = build_dataset(BuildConfig(**base), log=lambda s: None)
    return rows_of(out), summary


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("espeak") / "ds"
    build(out)
    return out


def test_shipped_data_has_the_voices_we_offer() -> None:
    assert {"en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc"} <= set(list_languages())
    assert {"m1", "m7", "f1", "f5", "whisper", "croak", "klatt"} <= set(list_variants())
    assert len(resolve_voices(["default"])) == 64 and len(resolve_voices(["all"])) > 300
    assert resolve_voices(["EN-US+F3", "en"]) == ["en-us+f3", "en"]
    with pytest.raises(ValueError, match="unknown variant 'zz'"):
        resolve_voices(["en+zz"])
    with pytest.raises(ValueError, match="unknown language 'xx-yy'"):
        resolve_voices(["xx-yy"])


def test_voice_spec_round_trip_and_errors() -> None:
    spec = parse_voice_spec("en-us+f3;rate=162;pitch=61;range=44")
    assert spec == VoiceSpec("en-us+f3", rate=162, pitch=61, range=44)
    assert str(spec) == "en-us+f3;rate=162;pitch=61;range=44"
    assert parse_voice_spec("en") == VoiceSpec("en")
    for bad, match in [("en;rate=fast", "not an integer"), ("en;speed=3", "bad part"), ("en;pitch=101", "pitch=101"),
                       (";rate=100", "empty voice")]:
        with pytest.raises(ValueError, match=match):
            parse_voice_spec(bad)


def test_balanced_audible_plausible(built: Path) -> None:
    rows = rows_of(built)
    assert len(rows) == 12
    assert Counter((r["keyword"], r["speaker"]) for r in rows) == {(k, v): 2 for k in ("yes", "no", "seven")
                                                                   for v in VOICES}
    assert all(r["transcript"] == r["keyword"] and r["split"] == "" for r in rows)
    assert (built / "labels.txt").read_text() == "yes\nno\nseven\n"
    assert (built / "transcripts.txt").read_text() == "yes\nno\nseven\n"
    for r in rows:
        x, sr = read_wav(built / r["filename"])
        assert sr == 16000 and x.ndim == 1
        assert 0.2 <= len(x) / sr <= 2.0 and float(r["duration"]) == pytest.approx(len(x) / sr, abs=1e-4)
        assert np.sqrt(np.mean(x ** 2)) > 0.03  # audible
        assert np.max(np.abs(x)) <= 0.91  # peak-normalised to 0.9, never clipped
        spec = parse_voice_spec(r["voice"])
        assert spec.voice == r["speaker"] and 130 <= spec.rate <= 200 and 30 <= spec.pitch <= 70


def test_regenerating_from_the_recorded_spec_is_identical(built: Path) -> None:
    for r in rows_of(built)[::3]:
        x = synthesize(r["transcript"], parse_voice_spec(r["voice"]), 16000)
        assert wav_bytes(x, 16000) == (built / r["filename"]).read_bytes(), r["filename"]


def test_same_seed_same_bytes_other_seed_other_specs(built: Path, tmp_path: Path) -> None:
    rows, _ = build(tmp_path / "again")
    assert rows == rows_of(built)
    for r in rows:
        assert (tmp_path / "again" / r["filename"]).read_bytes() == (built / r["filename"]).read_bytes()
    other, _ = build(tmp_path / "seed1", seed=1)
    assert [r["filename"] for r in other] == [r["filename"] for r in rows]
    assert sum(a["voice"] != b["voice"] for a, b in zip(other, rows)) >= 10


def test_different_voices_sound_different() -> None:
    clips = [synthesize("seven", VoiceSpec(v, rate=160, pitch=50, range=50)) for v in
             ("en-us+m3", "en-us+f3", "en-gb-x-rp+m3", "en-us+whisper")]
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            a, b = clips[i], clips[j]
            n = min(len(a), len(b))
            assert len(a) != len(b) or not np.array_equal(a, b)
            # log-spectra differ clearly (not just a few samples)
            sa, sb = (np.log1p(np.abs(np.fft.rfft(c[:n], 4096))) for c in (a, b))
            assert np.mean(np.abs(sa - sb)) > 0.1


def test_rerun_skips_valid_and_remakes_missing_or_corrupt(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    rows, first = build(out)
    assert (first.generated, first.skipped) == (12, 0)
    manifest = (out / "manifest.csv").read_bytes()
    (out / rows[0]["filename"]).unlink()
    (out / rows[4]["filename"]).write_bytes(b"RIFF\x00\x00")
    (out / "wav" / "yes" / ".en-us_f3_001.wav.deadbeef.tmp").write_bytes(b"half")  # left by a killed run
    (out / "manifest.csv").unlink()
    _, second = build(out)
    assert (second.generated, second.skipped, second.failed) == (2, 10, [])
    assert (out / "manifest.csv").read_bytes() == manifest
    assert not list(out.rglob("*.tmp"))
    _, bigger = build(out, keywords=["yes", "no", "seven", "off"])  # extending a build keeps what is there
    assert (bigger.generated, bigger.skipped) == (4, 12) and len(rows_of(out)) == 16
    with pytest.raises(BuildError, match="seed: 0 -> 5"):
        build(out, seed=5)


def test_process_pool_gives_the_same_bytes_as_in_process(built: Path, tmp_path: Path) -> None:
    rows, summary = build(tmp_path / "pool", voices=VOICES + ["en-029+f2", "en-us-nyc+m1"], per_voice=4,
                          concurrency=2)
    assert summary.generated == 48 and len(rows) == 48
    for r in rows_of(built):  # same seed, same (text, voice, index) -> same spec and bytes
        assert (tmp_path / "pool" / r["filename"]).read_bytes() == (built / r["filename"]).read_bytes()


def test_cli_transcripts_yaml_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("turn the light on\n\nopen the door\nturn the light on\n")
    cfg = tmp_path / "build.yaml"
    cfg.write_text(f"out: {tmp_path / 'cli'}\nvoices: [en-us+m1]\nper_voice: 3\nseed: 4\nprogress: false\n")
    assert main(["--config", str(cfg), "--transcripts", str(lines), "--per-voice", "1"]) == 0
    assert "planned 2, generated 2" in capsys.readouterr().out
    rows = rows_of(tmp_path / "cli")
    assert [(r["keyword"], r["transcript"]) for r in rows] == [("", "turn the light on"), ("", "open the door")]
    assert all(r["filename"].startswith("wav/_sentences/") for r in rows)
    for r in rows:
        assert 0.5 < float(r["duration"]) < 4.0
    assert (tmp_path / "cli" / "labels.txt").read_text() == ""
    assert main(["--config", str(cfg), "--keywords", "yes", "--per-voice", "0"]) == 2
    assert "per_voice" in capsys.readouterr().err
    assert main(["--config", str(cfg), "--keywords", "yes", "--voices", "en+nope"]) == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--list-voices"]) == 0 and "en-gb-scotland" in capsys.readouterr().out
