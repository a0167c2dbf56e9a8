"""scripts/fuzz_inputs.py: a few of its cases run clean against today's commands, and its judge flags what it must
(a traceback, an echoed secret, a lost fixture, a bad input accepted)."""
from __future__ import annotations

import os
import sys

import pytest

from tests.support.scripts import load_script

REPO_ENV = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2]), "WANDB_MODE": "offline",
            "OMP_NUM_THREADS": "1", "KWSLAB_ALLOW_CLASSES": ""}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    module = load_script("fuzz_inputs")
    root = tmp_path_factory.mktemp("fuzz")
    made = module.build_fixtures(root, seed=0)
    yield module, root, made["fx"], made["secret"]
    (made["fx"] / "readonly").chmod(0o755)


def test_a_few_cases_run_clean(fuzz):
    module, root, fx, secret = fuzz
    env = {**os.environ, **REPO_ENV, "PYTHONPATH": os.pathsep.join([REPO_ENV["PYTHONPATH"], str(fx / "mod")])}
    chosen = {"predict-top-k-negative", "predict-evil-class", "export-out-is-folder", "inspect-secret"}
    rows = [module.run_case(c, fx, root / "work" / c.name, secret, env) for c in module.cases(fx) if c.name in chosen]
    assert len(rows) == len(chosen)
    assert all(not r.problems and r.code not in (0, None) for r in rows), module.format_table(rows)
    assert not (root / "IMPORTED").exists()  # the checkpoint naming fuzz_evil.Model did not get it imported
    assert secret not in module.format_table(rows)
    assert "4 cases: 4 ok, 0 with problems" in module.format_table(rows)


def test_the_judge_flags_tracebacks_secrets_lost_files_and_accepted_input(fuzz):
    module, root, fx, secret = fuzz
    victim = fx / "victim.txt"
    victim.write_text("keep")
    code = f"import os, sys; print({secret!r}); os.remove({str(victim)!r}); raise ValueError('boom')"
    row = module.run_case(module.Case("judge", [sys.executable, "-c", code]), fx, root / "work" / "judge", secret,
                          dict(os.environ))
    assert row.message.startswith("TRACEBACK") and "boom" in row.message
    assert {"traceback", "secret echoed", "lost victim.txt"} <= set(row.problems)
    ok = module.run_case(module.Case("accepts", [sys.executable, "-c", "pass"]), fx, root / "work" / "ok", secret,
                         dict(os.environ))
    assert ok.problems == ["accepted a bad input (exit 0)"]
    assert "2 cases: 0 ok, 2 with problems" in module.format_table([row, ok])
