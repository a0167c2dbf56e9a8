"""Pieces of the OpenAI backend that need no server: key handling, Retry-After, backoff, cost, CLI dry run."""

from __future__ import annotations

import email.utils
import pickle
import random

import pytest

from kwslab.tts import BuildConfig, Secret, estimate_cost, make_plan
from kwslab.tts.__main__ import main
from kwslab.tts.openai_tts import RetryPolicy, read_env_file, resolve_credentials, retry_after_seconds


def test_secret_never_shows_itself() -> None:
    s = Secret("sk-live-abcdef")
    for shown in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"key": s})):
        assert "abcdef" not in shown
    assert s.get() == "sk-live-abcdef"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_env_file_parsing_and_precedence(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text('# comment\nexport OPENAI_API_KEY="sk-from-file"\nOPENAI_BASE_URL=http://h:1/v1 # note\n'
                   "EMPTY=\nbroken line\n")
    assert read_env_file(env) == {"OPENAI_API_KEY": "sk-from-file", "OPENAI_BASE_URL": "http://h:1/v1", "EMPTY": ""}
    assert read_env_file(tmp_path / "absent.env") == {}
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    key, url = resolve_credentials(env)
    assert key.get() == "sk-from-file" and url == "http://h:1/v1"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment")
    assert resolve_credentials(env)[0].get() == "sk-from-environment"  # the environment wins
    monkeypatch.delenv("OPENAI_API_KEY")
    assert resolve_credentials(tmp_path / "absent.env") == (None, None)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "2.5", "retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000) == pytest.approx(30.0)
    assert retry_after_seconds({"retry-after": date}, now=2_000_000) == 0.0


def test_backoff_grows_with_jitter_and_caps() -> None:
    policy, rng = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=60.0), random.Random(3)
    for attempt, top in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        d = policy.delay(attempt, rng)
        assert top / 2 <= d <= top
    assert policy.delay(0, rng, retry_after=12.0) == 12.0
    assert policy.delay(0, rng, retry_after=600.0) == 60.0


def test_estimate_cost_counts_characters_and_minimum_audio() -> None:
    est = estimate_cost(["yes", "no", "x" * 2000], price_per_million=15.0)
    assert est["characters"] == 2005 and est["requests"] == 3
    assert est["usd_by_characters"] == pytest.approx(2005 * 15 / 1e6)
    assert est["audio_minutes"] == pytest.approx((1 + 1 + 120) / 60)  # 1 s floor; 1,000 characters a minute


def test_openai_plan_assigns_seeded_instructions_and_default_voices() -> None:
    cfg = BuildConfig(backend="openai", keywords=["yes", "no"], instructions=["a", "b", "c"], per_voice=4)
    plan = make_plan(cfg)
    assert len(plan) == 2 * 11 * 4 and plan[0].voice == "alloy"
    assert {p.instruction for p in plan} == {0, 1, 2}
    assert all(p.spec == f"{p.voice};instr={p.instruction}" for p in plan)
    assert plan == make_plan(cfg) and plan != make_plan(BuildConfig(**{**cfg.to_dict(), "seed": 1}))


def test_cli_dry_run_prints_cost_without_key(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = ["--backend", "openai", "--keywords", "yes", "no", "--voices", "coral", "onyx", "--per-voice", "5",
            "--out", "ds", "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "20 clips" in out and "50 characters" in out and "$0.0008 at $15 per 1M characters" in out
    assert "wav/yes/coral_000.wav" in out and not (tmp_path / "ds").exists()
    assert main(argv[:-1]) == 2 and "no OpenAI API key" in capsys.readouterr().err
    assert main(argv + ["--print-config"]) == 0 and "backend: openai" in capsys.readouterr().out
