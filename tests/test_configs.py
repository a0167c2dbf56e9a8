"""Every config under ``configs/``: the fit CLI prints it as a complete config, and its augmentation builds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwslab.fit import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_prints_a_complete_config(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), "--print_config"])
    assert exc.value.code in (0, None)
    printed = capsys.readouterr().out
    for key in ("trainer:", "model:", "data:", "class_path:", "seed_everything:"):
        assert key in printed


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_builds_its_augmentation(config, tmp_path):
    """The augmentation settings are plain dicts, so --print_config cannot catch a bad key; building them does."""
    import yaml

    from kwslab.audio import write_wav
    from kwslab.augment import build_spec_augment, build_waveform_augment

    data = yaml.safe_load(config.read_text())["data"]["init_args"]
    rate = data.get("features", {}).get("sample_rate", 16000)
    if "background_noise" in (data.get("augment") or {}):  # the corpus's noise folder is not here: a stand-in
        write_wav(tmp_path / "noise.wav", np.random.default_rng(0).standard_normal(rate).astype(np.float32) * 0.1, rate)
        data["augment"]["background_noise"]["noises"] = [str(tmp_path)]
    chain = build_waveform_augment(data.get("augment"), sample_rate=rate)
    assert chain is None or len(chain) == len(data["augment"])
    build_spec_augment(data.get("spec_augment"))
