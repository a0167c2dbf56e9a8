"""Shared test fixtures: real FSDD recordings when present (skip otherwise), seeded generators."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as kwslab.fit does: no spinning threads on shared cores

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three learnable tone classes (train/val/test manifests) that the CLI trains on in seconds."""
    from tests.support.keyword_task import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every test sees the same numbers."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may talk to a W&B server."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
