"""Shared fixtures, and the layout of the test suite.

Layout: ``tests/`` mirrors ``kwslab/``. The tests of ``kwslab/<package>/<module>.py`` are in
``tests/<package>/test_<module>.py``; the tests of a top-level module ``kwslab/<module>.py`` -- a command (``fit``,
``predict``, ``evaluate``, ``export``, ``adapt``, ``inspect``, ``prepare``, ``demo``) or a library (``callbacks``,
``checkpoint``, ``averaging``, ``metrics``, ``augment``, ``text``) -- are in ``tests/test_<module>.py``.

- A test lives with the module whose behaviour it asserts. A test that drives a command end to end (``main([...])``
  or ``python -m kwslab.<command>``) lives with that command; one that drives several lives with the first its name
  says (``test_predict_and_evaluate_...`` is in ``test_predict.py``).
- A module with many tests may have more files, named ``test_<module>_<topic>.py`` (``audio/test_io_broken.py``).
  One file may cover sibling modules that it checks all the same way (``nets/test_zoo.py``).
- ``prepare`` only dispatches to ``kwslab/data/sources``: each source's tests, through the CLI too, are in
  ``tests/data/sources/test_<source>.py``.
- Files outside ``kwslab/`` mirror their folder as well: ``scripts/<name>.py`` -> ``tests/scripts/test_<name>.py``,
  ``configs/*.yaml`` -> ``tests/test_configs.py``. ``tests/test_architecture.py`` checks the whole package.

Helpers: fixtures are here (shared by several test packages) or in a package's own ``conftest.py``; plain helper
functions shared by several test packages (data builders, configs, checkpoints written directly) are in
``tests/support/``. A helper that one test package uses stays beside its tests (``tests/decoding/_brute.py``).
``tests/fixtures_pkg/userpkg`` is a stand-in for a user's own package, put on ``sys.path`` by the tests that need it.

Slow tests: a test that trains a model (a CLI fit, or a fixture below that trains one) is marked
``@pytest.mark.slow``; ``-m "not slow"`` leaves them out, ``make test`` (and ``.ci/run``) runs them.
``test_fit.py::test_fit_trains_tests_and_summarises`` is the one training left in the fast suite (about 2 s).
The training fixtures below are session-scoped, so each model is trained once per run, and a test that uses one
must be marked slow (checked at collection).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as kwslab.fit does: no spinning threads on shared cores

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# Fixtures that train a model: every test that uses one (directly or through another fixture) is slow. All but the
# last are below; user_net_checkpoint is in models/test_keyword_net.py.
TRAINING_FIXTURES = {"trained_keyword", "trained_ctc", "tone_model", "user_net_checkpoint"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow")]
    if unmarked:
        raise pytest.UsageError("these tests train a model through a fixture but are not marked "
                                "@pytest.mark.slow: " + ", ".join(unmarked))


def fsdd_dir() -> Path | None:
    """The real FSDD recordings: $KWSLAB_FSDD, else ../shared/data/fsdd/recordings beside the repo."""
    env = os.environ.get("KWSLAB_FSDD")
    path = Path(env) if env else REPO.parent / "shared" / "data" / "fsdd" / "recordings"
    return path if path.is_dir() and any(path.glob("*.wav")) else None


@pytest.fixture
def fsdd_recordings() -> Path:
    """Path to real FSDD recordings; skips the test on machines without ../shared."""
    path = fsdd_dir()
    if path is None:
        pytest.skip("FSDD recordings not found (set KWSLAB_FSDD or provide ../shared/data/fsdd/recordings)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every test sees the same numbers."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may talk to a W&B server."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


# --- data (read-only: a test that changes files writes its own copy under tmp_path) ---------------------------

@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three learnable tone classes (train/val/test manifests) that the CLI trains on in seconds."""
    from tests.support.keyword_task import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tone_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """High and low tones plus noise-only ``_silence_``, so a detector stays quiet between bursts."""
    from tests.support.keyword_task import make_tone_dataset

    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="session")
def ctc_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny CTC task: spelled strings of 2-4 tone-burst letters (train/val/test manifests)."""
    from tests.support.ctc_task import make_tiny_ctc_dataset

    return make_tiny_ctc_dataset(tmp_path_factory.mktemp("ctc"))


# --- checkpoints -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An untrained keyword checkpoint carrying a stream calibration, and its ONNX export (through the CLI)."""
    from kwslab.export import main as export_main
    from tests.support.checkpoints import CALIBRATION, keyword_checkpoint

    d = tmp_path_factory.mktemp("export")
    ckpt = keyword_checkpoint(d / "kw.ckpt", kwslab_threshold=CALIBRATION)
    assert export_main(["--ckpt", str(ckpt), "--out", str(d / "kw.onnx")]) == 0
    return ckpt, d / "kw.onnx"


@pytest.fixture(scope="session")
def trained_keyword(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a 6-epoch CLI fit on ``tiny_data`` (slow)."""
    from kwslab.fit import main
    from tests.support.keyword_task import tiny_config

    out = tmp_path_factory.mktemp("trained")
    cli = main(["--config", str(tiny_config(tiny_data, out, epochs=6)), "--test=false"])
    return Path(cli.trainer.checkpoint_callback.best_model_path)


@pytest.fixture(scope="session")
def tone_model(tone_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a 6-epoch CLI fit on ``tone_data``: a detector for streams (slow)."""
    from kwslab.fit import main
    from tests.support.keyword_task import FEATURES, tiny_config

    out = tmp_path_factory.mktemp("tone_model")
    config = tiny_config(tone_data, out, epochs=6)
    cli = main(["--config", str(config), "--test=false", f"--data.features={json.dumps(FEATURES)}"])
    return Path(cli.trainer.checkpoint_callback.best_model_path)


@pytest.fixture(scope="session")
def trained_ctc(ctc_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """A 25-epoch CLI fit (and test) of the CTC recogniser on ``ctc_data``: ``(cli, output folder)`` (slow)."""
    from kwslab.fit import main
    from tests.support.ctc_task import tiny_ctc_config

    out = tmp_path_factory.mktemp("ctc_fit")
    return main(["--config", str(tiny_ctc_config(ctc_data, out, epochs=25))]), out
