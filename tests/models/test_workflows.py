"""Configs, fine-tuning, evaluate/predict, a user's own model, overfitting one batch, DDP on CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kwslab.evaluate import main as evaluate_main
from kwslab.fit import main
from kwslab.models import KeywordClassifier
from kwslab.predict import main as predict_main
from tests.support.keyword_task import make_tiny_dataset, tiny_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    cli = main(["--config", str(tiny_config(tiny_data, out, epochs=6)), "--test=false"])
    return Path(cli.trainer.checkpoint_callback.best_model_path)


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


def test_overfit_one_batch_loss_falls(tiny_data):
    from kwslab.data.datamodules import KeywordDataModule

    dm = KeywordDataModule(str(tiny_data["train"]), features={"num_frames": 51, "n_mfcc": 13, "cmvn": True},
                           batch_size=12)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))[:2]
    torch.manual_seed(0)
    model = KeywordClassifier(dm.num_outputs, dm.labels, dm.feature_config.to_dict(), net={
        "class_path": "kwslab.nets.KeywordCNN", "init_args": {"channels": [16, 16], "hidden": 16, "dropout": 0.0}})
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0] and losses[-1] < 0.05


def test_predict_and_evaluate_a_trained_model(trained, tiny_data, tmp_path, capsys):
    files = sorted((tiny_data["test"].parent / "wav" / "test").glob("*.wav"))
    assert predict_main(["--ckpt", str(trained), "--json", "--top-k", "2", *map(str, files)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == len(files) and all(len(r["top"]) == 2 for r in results)
    correct = sum(r["keyword"] == Path(r["file"]).name.split("_")[0] for r in results)
    assert correct / len(results) >= 0.9
    assert evaluate_main(["--ckpt", str(trained), "--manifest", str(tiny_data["test"]), "--json",
                          "--png", str(tmp_path / "cm.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.9 and set(report["per_class"]) == {"high", "low", "mid"}
    assert sum(map(sum, report["confusion_matrix"])) == len(files) and (tmp_path / "cm.png").is_file()


def test_evaluate_an_ensemble_of_checkpoints(trained, tiny_data, tmp_path, capsys):
    from kwslab.data.manifest import read_manifest
    from kwslab.inference import load_model
    from kwslab.metrics import confusion_matrix

    ckpt = torch.load(trained, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    noisy = {k: v + 1.0 * v.std() * torch.randn(v.shape, generator=gen) if v.is_floating_point() and v.numel() > 1
             else v for k, v in ckpt["state_dict"].items()}
    other = tmp_path / "noisy.ckpt"
    torch.save({**ckpt, "state_dict": noisy}, other)
    assert evaluate_main(["--ckpt", str(trained), str(other), "--manifest", str(tiny_data["test"]), "--json",
                          "--png", str(tmp_path / "cm.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoints"] == [str(trained), str(other)]
    models = [load_model(trained), load_model(other)]  # the rule by hand: argmax of the mean probability
    rows = read_manifest(tiny_data["test"], need_keyword=True)
    probs = sum(torch.softmax(m.logits([m.features(r.path) for r in rows]), dim=-1) for m in models)
    targets = [models[0].labels.index(r.keyword) for r in rows]
    assert report["confusion_matrix"] == confusion_matrix(targets, probs.argmax(-1).numpy(), 3).tolist()
    alone = models[0].logits([models[0].features(r.path) for r in rows]).argmax(-1)
    assert not torch.equal(alone, probs.argmax(-1))  # the second model changes some answers: both are used
    hp = dict(ckpt["hyper_parameters"])
    torch.save({**ckpt, "hyper_parameters": {**hp, "labels": list(reversed(hp["labels"]))}}, tmp_path / "rev.ckpt")
    assert evaluate_main(["--ckpt", str(trained), "--ckpt", str(tmp_path / "rev.ckpt"),
                          "--manifest", str(tiny_data["test"])]) == 2
    assert "rev.ckpt" in capsys.readouterr().err


def test_evaluate_reports_unknown_keywords_and_predict_reports_bad_files(trained, tmp_path, capsys):
    from tests.support.keyword_task import make_tiny_dataset

    other = make_tiny_dataset(tmp_path, per_class={"test": 2}, classes={"buzz": 5000.0, "low": 300.0})
    assert evaluate_main(["--ckpt", str(trained), "--manifest", str(other["test"])]) == 2
    err = capsys.readouterr().err
    assert "'buzz' (2 rows)" in err and "--skip-unknown" in err
    assert evaluate_main(["--ckpt", str(trained), "--manifest", str(other["test"]), "--skip-unknown"]) == 0
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"ID3\x03\x00" + bytes(100))
    good = next((tmp_path / "wav" / "test").glob("low_*.wav"))
    assert predict_main(["--ckpt", str(trained), str(broken), str(good)]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "MP3" in captured.err and "low" in captured.out
    assert predict_main(["--ckpt", str(tmp_path / "missing.ckpt"), str(good)]) == 2


def test_fine_tune_new_keywords_with_frozen_backbone(trained, tmp_path):
    data = make_tiny_dataset(tmp_path / "new", classes={"buzz": 5000.0, "hum": 150.0})
    source = torch.load(trained, map_location="cpu", weights_only=True)["state_dict"]
    cli = main(["--config", str(tiny_config(data, tmp_path / "ft", epochs=8)), "--test=false",
                f"--model.init_from={trained}", "--model.freeze_backbone=true"])
    tuned = cli.model.state_dict()
    assert cli.model.labels == ["buzz", "hum"]
    for name, value in tuned.items():
        if name.startswith("net.backbone."):
            assert torch.equal(value, source[name]), f"frozen {name} changed"
    assert tuned["net.head.3.weight"].shape[0] == 2  # re-initialised head for two new classes
    assert cli.trainer.callback_metrics["val/acc"].item() >= 0.9


def test_user_defined_module_trains_by_class_path(tiny_data, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
    cli = main(["--config", str(tiny_config(tiny_data, tmp_path, epochs=2)), "--test=false",
                "--model=userpkg.models.MeanPoolClassifier", "--model.lr=0.1"])
    assert type(cli.model).__name__ == "MeanPoolClassifier"
    assert cli.model.labels == ["high", "low", "mid"] and cli.model.linear.out_features == 3
    assert "val/acc" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path, epochs=4)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "kwslab.fit", "--config", str(config),
                           "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best checkpoint:" in proc.stdout
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    acc = float(proc.stdout.split("accuracy ")[1].split()[0])
    assert acc >= 0.9, proc.stdout
