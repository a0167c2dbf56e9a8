"""The OpenAI backend end to end: the real ``openai`` client against a local fake server (tests/tts/fake_openai.py)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kwslab.audio import read_wav
from kwslab.tts import BuildConfig, BuildError, build_dataset
from tests.tts.fake_openai import FakeOpenAI, tone_hz

KEY = "sk-test-KWSLAB-7f3a9c2e51d04b86"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeOpenAI(KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


class Sleeps(list):
    """Records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def config(out: Path, **kw) -> BuildConfig:
    base = dict(out=str(out), backend="openai", keywords=["yes", "no", "stop"], voices=["coral", "onyx", "sage"],
                per_voice=2, concurrency=4, progress=False, env_file=None)
    base.update(kw)
    return BuildConfig(**base)


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def dominant_hz(path: Path) -> float:
    x, sr = read_wav(path)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    return float(np.argmax(spectrum) * sr / (8 * len(x)))


def check_complete(out: Path, instructions: list[str] | None = None) -> list[dict[str, str]]:
    """Manifest complete, no duplicates, every file valid and holding the tone of its own row."""
    rows = rows_of(out)
    assert len(rows) == 18 and len({r["filename"] for r in rows}) == 18
    assert Counter((r["keyword"], r["speaker"]) for r in rows) == {(k, v): 2 for k in ("yes", "no", "stop")
                                                                   for v in ("coral", "onyx", "sage")}
    for r in rows:
        x, sr = read_wav(out / r["filename"])
        assert sr == 16000 and x.ndim == 1
        assert abs(len(x) / sr - float(r["duration"])) < 1e-3
        assert 0.45 < float(r["duration"]) < 0.6  # 0.5 s tone, silence trimmed to 20 ms each side
        instr = None
        if instructions:
            assert r["voice"].startswith(r["speaker"] + ";instr=")
            instr = instructions[int(r["voice"].split("=")[1])]
        assert abs(dominant_hz(out / r["filename"]) - tone_hz(r["transcript"], r["speaker"], instr)) < 5
    assert not list(out.rglob("*.tmp"))
    return rows


def assert_key_nowhere(out: Path, *texts: str) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert KEY not in text


def test_build_complete_correct_under_concurrency_and_faults(fake: FakeOpenAI, tmp_path: Path) -> None:
    instructions = ["Say it cheerfully.", "Whisper it.", "Sound bored."]
    cfg = config(tmp_path / "out", instructions=instructions)
    # which instruction each (text, voice, index) gets is seeded; find the texts and script faults by text
    fake.faults = {"yes": ["429", "500", "mp3"], "no": ["429ms"]}
    sleeps = Sleeps()
    summary = build_dataset(cfg, sleep=sleeps)
    assert (summary.generated, summary.skipped, summary.failed) == (18, 0, [])
    assert summary.requests == fake.count() == 18 + 4
    rows = check_complete(tmp_path / "out", instructions)
    assert 7.0 in sleeps and 1.5 in sleeps  # Retry-After and retry-after-ms honoured (ms wins over seconds)
    assert 9.0 not in sleeps
    assert len(sleeps) == 4 and all(0 < s <= 7.0 for s in sleeps)
    assert {r[2] for r in fake.requests} == set(instructions)  # instructions reach the server
    assert (tmp_path / "out" / "labels.txt").read_text() == "yes\nno\nstop\n"
    assert "Whisper it." in (tmp_path / "out" / "instructions.json").read_text()
    assert_key_nowhere(tmp_path / "out", repr(cfg), repr(summary))
    # a second run makes zero requests and changes nothing
    before = (tmp_path / "out" / "manifest.csv").read_bytes()
    again = build_dataset(cfg, sleep=sleeps)
    assert (again.generated, again.skipped, again.requests, fake.count()) == (0, 18, 0, 22)
    assert (tmp_path / "out" / "manifest.csv").read_bytes() == before
    # a corrupt file is found by reading it and made again, with exactly one request
    victim = tmp_path / "out" / rows[5]["filename"]
    victim.write_bytes(victim.read_bytes()[:30])
    third = build_dataset(cfg, sleep=sleeps)
    assert (third.generated, third.skipped, fake.count()) == (1, 17, 23)
    check_complete(tmp_path / "out", instructions)


def test_401_aborts_the_run_with_a_clear_message(fake: FakeOpenAI, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    with pytest.raises(BuildError, match="401.*check OPENAI_API_KEY"):
        build_dataset(config(tmp_path / "out", concurrency=2), sleep=Sleeps())
    assert 1 <= fake.count(401) <= 2  # the threads stop: no request after the first 401 answers
    assert rows_of(tmp_path / "out") == [] and not list((tmp_path / "out").rglob("*.wav"))


def test_400_fails_at_once_and_mp3_is_never_saved(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.faults = {"no": ["400"], "stop": ["mp3"] * 100}
    sleeps = Sleeps()
    summary = build_dataset(config(tmp_path / "out", keywords=["yes", "no", "stop"], voices=["coral"], per_voice=1,
                                   max_retries=3), sleep=sleeps)
    assert summary.generated == 1
    reasons = dict(summary.failed)
    assert "HTTP 400" in reasons["wav/no/coral_000.wav"]
    assert "not a WAV" in reasons["wav/stop/coral_000.wav"] and "4 attempts" in reasons["wav/stop/coral_000.wav"]
    assert Counter(r[0] for r in fake.requests) == {"yes": 1, "no": 1, "stop": 4}
    assert len(sleeps) == 3 and all(0.5 <= s <= 4.0 for s in sleeps)  # backoff 1, 2, 4 s x jitter [0.5, 1]
    assert [r["keyword"] for r in rows_of(tmp_path / "out")] == ["yes"]
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.wav")) == ["coral_000.wav"]
    assert "failed 2" in summary.format() and "HTTP 400" in summary.format()


def test_dry_run_needs_no_key_and_sends_nothing(fake: FakeOpenAI, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    lines: list[str] = []
    summary = build_dataset(config(tmp_path / "out", dry_run=True, keywords=["yes", "seven"], price_per_million=20),
                            log=lines.append)
    assert fake.count() == 0 and not (tmp_path / "out").exists()
    assert summary.estimate["requests"] == 12 and summary.estimate["characters"] == 6 * (3 + 5)
    assert summary.estimate["usd_by_characters"] == pytest.approx(48 * 20 / 1e6)
    assert summary.estimate["usd_by_minutes"] == pytest.approx(12 / 60 * 0.015)  # >= 1 s per request
    text = "\n".join(lines)
    assert "12 to make" in text and "$0.0010 at $20 per 1M characters" in text
    with pytest.raises(BuildError, match="no OpenAI API key"):  # without --dry-run the missing key is an error
        build_dataset(config(tmp_path / "out"))


def test_key_from_env_file(fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    env = tmp_path / ".env"
    env.write_text(f"# test\nexport OPENAI_API_KEY='{KEY}'\nOPENAI_BASE_URL={fake.base_url}  # local\n")
    summary = build_dataset(config(tmp_path / "out", env_file=str(env), voices=["ash"], per_voice=1))
    assert summary.generated == 3 and fake.count(200) == 3
    assert_key_nowhere(tmp_path / "out")


def test_killed_run_resumes_without_loss_or_duplicates(fake: FakeOpenAI, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fake.hang_after = 7  # answer 7 requests, then hold every further one open: the build cannot finish
    cmd = [sys.executable, "-m", "kwslab.tts", "--backend", "openai", "--keywords", "yes", "no", "stop",
           "--voices", "coral", "onyx", "sage", "--per-voice", "2", "--concurrency", "2", "--out", str(out),
           "--env-file", str(tmp_path / "none.env")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60  # kill once both workers are stuck on a held request: 7 answered, none left
    while fake.held < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert fake.count(200) == 7 and proc.returncode == -signal.SIGKILL, proc.stderr.read()
    made_before = len(list(out.rglob("*.wav")))
    assert 5 <= made_before <= 7
    if (out / "manifest.csv").exists():  # whatever manifest the killed run left is whole and consistent
        assert all((out / r["filename"]).is_file() for r in rows_of(out))
    first_requests = fake.count()
    fake.hang_after = None
    fake.release()
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"generated {18 - made_before}, skipped {made_before}" in done.stdout
    check_complete(out)
    assert fake.count() - first_requests == 18 - made_before  # nothing finished is asked for again
    assert_key_nowhere(out, done.stdout, done.stderr)
