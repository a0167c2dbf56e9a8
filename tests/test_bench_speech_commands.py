"""The Speech Commands recipes (configs/sc12_*.yaml) and scripts/bench_speech_commands.py, on a tiny fake corpus laid
out like Speech Commands (``<word>/<speaker>_nohash_<n>.wav`` and ``_background_noise_/``): no ``../shared`` needed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from kwslab.audio import write_wav

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("sc12_*.yaml"))
FULL_CORPUS = REPO / "configs" / "overlays" / "sc12_full_corpus.yaml"
SHARED_NOISE = "../shared/data/speech_commands/_background_noise_"
NETS = {"kwslab.nets.BCResNet", "kwslab.nets.MatchboxNet", "kwslab.nets.TCResNet", "kwslab.nets.DSCNN",
        "kwslab.nets.KeywordCNN"}
SR = 16000
WORDS = {"yes": 300.0, "no": 600.0, "up": 1200.0, "bed": 2000.0, "cat": 3000.0}  # 3 commands, 2 unknown words


def _bench():
    spec = importlib.util.spec_from_file_location("bench_speech_commands",
                                                  REPO / "scripts" / "bench_speech_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 50-clip Speech Commands lookalike (a tone per word, 10 speakers) prepared by ``kwslab.prepare``."""
    from kwslab.prepare import main as prepare

    tmp = tmp_path_factory.mktemp("sc")
    root, rng, t = tmp / "speech_commands", np.random.default_rng(0), np.arange(SR) / SR
    for word, hz in WORDS.items():
        for s in range(10):
            y = 0.3 * np.sin(2 * np.pi * hz * (1 + 0.02 * s) * t) + 0.01 * rng.standard_normal(SR)
            write_wav(root / word / f"{0xfeed00 + s:08x}_nohash_0.wav", y.astype(np.float32), SR)
    write_wav(root / "_background_noise_" / "noise.wav", (0.1 * rng.standard_normal(5 * SR)).astype(np.float32), SR)
    data = tmp / "sc12"
    assert prepare(["speech-commands", "--root", str(root), "--task", "12", "--out", str(data)]) == 0
    return {"root": root, "data": data, "noise": root / "_background_noise_",
            "manifests": {s: data / f"{s}.csv" for s in ("train", "val", "test")}}


def _printed_config(path: Path, capsys: pytest.CaptureFixture) -> dict:
    from kwslab.fit import main as fit

    with pytest.raises(SystemExit) as exit_:
        fit(["--config", str(path), "--print_config"])
    assert exit_.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_there_is_a_recipe_per_zoo_model():
    assert {p.stem for p in CONFIGS} >= {"sc12_bcresnet1", "sc12_bcresnet8", "sc12_matchboxnet", "sc12_tcresnet8",
                                         "sc12_dscnn"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_prints_a_complete_config_and_builds(path: Path, corpus: dict, capsys: pytest.CaptureFixture):
    from kwslab.augment import (
        BackgroundNoise,
        build_spec_augment,
        build_waveform_augment,
    )
    from kwslab.dsp import FeatureConfig, FeatureExtractor
    from kwslab.models import KeywordClassifier

    cfg = _printed_config(path, capsys)
    trainer, model, data = cfg["trainer"], cfg["model"]["init_args"], cfg["data"]["init_args"]
    header = path.read_text().split("seed_everything")[0]
    assert "--root ../shared/data/speech_commands --task 12 --out data/sc12" in header
    assert "--download" in header and FULL_CORPUS.name in header and f"--config configs/{path.name}" in header
    # Runs unchanged on any dataset size and machine: nothing sized in optimizer steps.
    assert trainer["accelerator"] == "auto" and str(trainer["precision"]) in ("32", "32-true")
    assert data["num_workers"] <= 2
    assert model["scheduler"]["class_path"] == "kwslab.models.schedules.WarmupCosine"
    ema = [cb for cb in trainer["callbacks"] if cb["class_path"].endswith("EMA")]
    assert all(cb["init_args"]["half_life_epochs"] for cb in ema)
    assert model["net"]["class_path"] in NETS
    assert [data[f"{s}_manifest"] for s in ("train", "val", "test")] == [f"data/sc12/{s}.csv"
                                                                         for s in ("train", "val", "test")]
    assert data["augment"]["background_noise"]["noises"] == [SHARED_NOISE]
    # The augmentation builds (with the fixture's noise in place of the shared folder) and keeps the clip's length.
    features = FeatureConfig(**data["features"])
    augment = build_waveform_augment({**data["augment"], "background_noise": {
        **data["augment"]["background_noise"], "noises": [str(corpus["noise"])], "p": 1.0}}, features.sample_rate)
    assert any(isinstance(t, BackgroundNoise) for t in augment.transforms)
    y = 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y_aug = augment(y, np.random.default_rng(1))
    assert y_aug.shape == y.shape and np.isfinite(y_aug).all() and not np.allclose(y_aug, y)
    feats = FeatureExtractor(features)(y_aug)
    masked = build_spec_augment(data["spec_augment"])(feats, np.random.default_rng(2))
    assert masked.shape == feats.shape
    # The network accepts these features.
    net = KeywordClassifier(num_outputs=12, feature_config=features.to_dict(), net=model["net"]).eval()
    assert net(torch.from_numpy(np.stack([feats, masked]))).shape == (2, 12)
    # The full-corpus overlay repeats this augmentation with only the noise folder changed (it replaces the block).
    overlay = yaml.safe_load(FULL_CORPUS.read_text())["data"]["init_args"]["augment"]
    assert {**overlay, "background_noise": {**overlay["background_noise"], "noises": [SHARED_NOISE]}} == \
        data["augment"]


def test_count_macs_by_hand():
    bench = _bench()
    net = nn.Sequential(nn.Conv1d(4, 8, 3, padding=1, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(80, 5))
    # conv: 8 x 10 outputs x (4 / 2 inputs x 3 taps) = 480; linear: 5 x 80 = 400
    assert bench.count_macs(net, torch.zeros(1, 4, 10)) == 880
    assert bench.count_macs(net, torch.zeros(3, 4, 10)) == 880  # per clip, whatever the batch
    conv2d = nn.Conv2d(1, 6, (5, 3), stride=(2, 1), padding=(2, 1), bias=False)
    assert bench.count_macs(conv2d, torch.zeros(2, 1, 40, 7)) == 6 * 20 * 7 * 15


def test_missing_data_names_the_prepare_command(tmp_path: Path):
    bench = _bench()
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--data", str(tmp_path / "sc12"), "--corpus", str(tmp_path / "absent"), "--skip-train"])
    assert "python -m kwslab.prepare speech-commands --root ../shared/data/speech_commands --task 12" in \
        str(exit_.value.code)


def test_tiny_fit_of_a_zoo_recipe_and_the_table(corpus: dict, tmp_path: Path, capsys: pytest.CaptureFixture):
    from kwslab.fit import main as fit
    from kwslab.inference import load_model
    from kwslab.nets import BCResNet

    bench = _bench()
    config = REPO / "configs" / "sc12_bcresnet1.yaml"
    runs = tmp_path / "runs"
    run_dir = runs / config.stem / "seed0"
    manifests = {f"{k}_manifest": str(v) for k, v in corpus["manifests"].items()}
    overlay = bench.write_overlay(config, run_dir, 0, 1, manifests)
    cmd = bench.fit_command(config, overlay, corpus["noise"])
    fit([*cmd[cmd.index("--config"):], "--data.init_args.batch_size", "8", "--data.init_args.num_workers", "0",
         "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"])
    best = bench.best_checkpoint(run_dir)
    model = load_model(best)
    assert isinstance(model.module.net, BCResNet)
    assert model.checkpoint["hyper_parameters"]["net"]["class_path"].endswith(".BCResNet")
    assert model.labels == ["_silence_", "_unknown_", "no", "up", "yes"]
    assert (run_dir / "csv" / "version_0" / "metrics.csv").is_file()

    result = bench.score_run(run_dir, corpus["manifests"]["test"])
    assert 0.0 <= result["test_acc"] <= 1.0 and result["best_ckpt"] == str(best)
    (run_dir / "result.json").write_text(json.dumps({**result, "seed": 0, "train_seconds": 1.0}))
    out = tmp_path / "bench.json"
    assert bench.main(["--configs", str(config), "--seeds", "0", "--skip-train", "--data", str(corpus["data"]),
                       "--runs", str(runs), "--out", str(out), "--latency-clips", "2"]) == 0
    table = capsys.readouterr().out
    assert "| sc12_bcresnet1 |" in table and "96.9% (v2" in table
    costs = json.loads(out.read_text())["rows"][0]["costs"]
    assert costs["parameters"] == sum(p.numel() for p in model.module.net.parameters())
    assert costs["macs"] > 0 and costs["latency_ms"] > 0 and costs["features"] == [40, 101]
