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


def _header_text(config: Path) -> str:
    """The config's header comment as one string, continuation lines joined (how a shell reads them)."""
    lines = []
    for line in config.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines).replace("\\ ", "")


def _prepares_itself(config: Path) -> bool:
    import importlib

    from lightning import LightningDataModule

    from kwslab.data.datamodules import KeywordDataModule

    module, _, name = yaml_data(config)["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls.prepare_data not in (LightningDataModule.prepare_data, KeywordDataModule.prepare_data)


def yaml_data(config: Path) -> dict:
    import yaml

    return yaml.safe_load(config.read_text())["data"]


# what the newcomer needed and did not get: the exact command, verbatim from the config's header
PINNED = {
    "ctc_fsdd.yaml": "python scripts/prepare_ctc_fsdd.py --root ../shared/data/fsdd/recordings --out data/fsdd_ctc "
                     "--synthetic 2000 --synthetic-words data/tts_digits/manifest.csv",
    "cnn_fsdd.yaml": "python -m kwslab.prepare fsdd --root ../shared/data/fsdd/recordings --out data/fsdd/official "
                     "--split official",
    "cnn_speech_commands.yaml": "python -m kwslab.prepare speech-commands --root data/speech_commands_v2 --download "
                                "--version 2 --task 12 --out data/speech_commands",
}


def _clean_checkout_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_from_a_clean_checkout_names_its_manifest_and_prepare_command(config, tmp_path, monkeypatch,
                                                                                   capsys):
    """No data/ in the working directory: a config either builds its data itself (cnn.yaml, ctc.yaml: their
    datamodules' prepare_data, not run here: the espeak build is slow) or stops before anything is built with one
    line naming the missing manifest and the prepare commands of its header, verbatim."""
    if _prepares_itself(config):
        assert "manifest" not in " ".join(yaml_data(config)["init_args"])  # a root it builds, no manifests to name
        return
    monkeypatch.chdir(tmp_path)
    line = _clean_checkout_error(["--config", str(config)], capsys)
    train = yaml_data(config)["init_args"]["train_manifest"]
    train = train[0] if isinstance(train, list) else train
    assert f"manifest {train} not found (data.init_args.train_manifest" in line
    assert "run this again: " in line
    commands = line.split("run this again: ", 1)[1].split(" && ")
    header = _header_text(config)
    for command in commands:
        assert command.startswith(("python -m kwslab.prepare", "python -m kwslab.tts", "python scripts/")), command
        assert command in header, f"{command!r} is not in the header of {config.name}"
    if config.name in PINNED:
        assert commands == [PINNED[config.name]]
    assert list(tmp_path.iterdir()) == []  # stopped before any run folder, log or checkpoint was made


def test_an_overlay_that_moves_the_manifests_names_its_own_prepare_command(tmp_path, monkeypatch, capsys):
    """sc12_*.yaml with the full-corpus overlay: the overlay set the manifests, so its header's command is the one
    (not the subset's, which the base config's header lists first)."""
    monkeypatch.chdir(tmp_path)
    base = next(c for c in CONFIGS if c.name.startswith("sc12_"))
    overlay = REPO / "configs" / "overlays" / "sc12_full_corpus.yaml"
    line = _clean_checkout_error(["--config", str(base), "--config", str(overlay)], capsys)
    assert "manifest data/sc12_full/train.csv not found" in line and str(overlay) in line
    assert line.endswith("--task 12 --out data/sc12_full")


def test_header_commands_join_continuations_and_drop_comments(tmp_path):
    from kwslab.recipes import header_commands, header_recipes

    config = tmp_path / "c.yaml"
    config.write_text("# Intro, mentioning python in prose.\n"
                      "#   python -m kwslab.prepare fsdd --root a \\\n"
                      "#       --out data/x    # makes data/x\n"
                      "#   python -m kwslab.fit --config configs/c.yaml --config configs/o.yaml\n"
                      "#   python scripts/other.py --out data/y\n"
                      "seed_everything: 0\n"
                      "#   python -m kwslab.prepare never --read\n")
    assert header_commands(config) == ["python -m kwslab.prepare fsdd --root a --out data/x",
                                       "python -m kwslab.fit --config configs/c.yaml --config configs/o.yaml",
                                       "python scripts/other.py --out data/y"]
    assert header_recipes(config) == [(["python -m kwslab.prepare fsdd --root a --out data/x"], ["c.yaml", "o.yaml"]),
                                      (["python scripts/other.py --out data/y"], [])]


def test_a_config_without_prepare_commands_says_how_to_make_a_manifest(tmp_path, monkeypatch, capsys):
    import yaml

    config = yaml.safe_load((REPO / "configs" / "cnn_fsdd.yaml").read_text())
    config["data"]["init_args"].update(train_manifest="mine/train.csv", val_manifest="mine/val.csv",
                                       test_manifest=None)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    line = _clean_checkout_error(["--config", "mine.yaml", "--test=false"], capsys)
    assert "manifest mine/train.csv not found (data.init_args.train_manifest; missing too: mine/val.csv)" in line
    assert "python -m kwslab.prepare" in line and "fix the path" in line
