"""scripts/train_embedding.py: the exported embedding describes itself and refuses data with a held-out word; a
custom keyword trained from TTS on top of it, end to end (configs/keyword_from_tts.yaml)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kwslab.audio import write_wav
from kwslab.checkpoint import load_checkpoint
from kwslab.data.manifest import write_manifest
from kwslab.dsp import FeatureConfig
from tests.support.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, win_length=480, hop_length=160, n_mels=40, n_mfcc=40,
                         kind="mfcc", cmvn=True, num_frames=101).to_dict()


def _trained_like(path: Path, labels: list[str]) -> Path:
    """A checkpoint as kwslab.fit writes one for configs/embedding.yaml (TC-ResNet, untrained weights)."""
    from kwslab.models import KeywordClassifier

    torch.manual_seed(0)
    hp = {"num_outputs": len(labels), "labels": labels, "feature_config": FEATURES,
          "net": {"class_path": "kwslab.nets.TCResNet", "init_args": {"width": 1.5, "dropout": 0.3}}}
    model = KeywordClassifier(**hp)
    torch.save({"state_dict": model.state_dict(), "epoch": 7, "pytorch-lightning_version": "2.6.6",
                "optimizer_states": [{"state": {}}],
                "hyper_parameters": {"_class_path": "kwslab.models.KeywordClassifier", **hp}}, path)
    return path


def _manifest(path: Path, words: list[str]) -> Path:
    write_manifest(path, [{"filename": str(path.parent / f"{w}.wav"), "keyword": w} for w in words])
    return path


def test_export_writes_a_slim_self_describing_embedding(tmp_path: Path):
    script = load_script("train_embedding")
    words = ["five", "go", "no", "yes"]
    ckpt = _trained_like(tmp_path / "best.ckpt", words)
    manifests = [_manifest(tmp_path / "a" / "train.csv", ["yes", "no", "go"]), _manifest(tmp_path / "b.csv", ["five"])]
    out = script.export(ckpt, tmp_path / "emb.ckpt", manifests)
    slim = load_checkpoint(out)
    assert "optimizer_states" not in slim and slim["epoch"] == 7
    record = slim["kwslab_pretrained"]
    assert record["words"] == words and record["held_out_words"] == ["marvin", "sheila", "house", "wow"]
    assert record["manifest_sha256"] == script.manifest_digest(manifests) != script.manifest_digest(manifests[::-1])
    from kwslab.inference import load_model

    model = load_model(out)
    assert model.labels == words and type(model.module.net).__name__ == "TCResNet"
    # a held-out word in the training data (or among the labels) stops the export before anything is written
    leaky = [_manifest(tmp_path / "c.csv", ["yes", "marvin"])]
    with pytest.raises(SystemExit) as err:
        script.export(ckpt, tmp_path / "leak.ckpt", leaky)
    assert "marvin must never be heard" in str(err.value.code) and not (tmp_path / "leak.ckpt").exists()


def test_the_recipe_keeps_the_held_out_words_out_of_its_data():
    import yaml

    header = (REPO / "configs" / "embedding.yaml").read_text().split("seed_everything")[0]
    assert "--exclude-words marvin,sheila,house,wow --out data/sc35_kws" in header
    train = yaml.safe_load((REPO / "configs" / "embedding.yaml").read_text())["data"]["init_args"]["train_manifest"]
    assert "data/sc35_kws/train.csv" in train and not any("sc35_kws_all" in m for m in train)


@pytest.mark.slow
def test_a_custom_keyword_from_tts_trains_end_to_end_on_the_embedding(tmp_path: Path, monkeypatch, capsys):
    """configs/keyword_from_tts.yaml for a new word: espeak positives, near words and others as negatives, the
    embedding's backbone frozen, a working keyword model at the end."""
    from kwslab.fit import main as fit
    from kwslab.inference import load_model

    script = load_script("train_embedding")
    emb = script.export(_trained_like(tmp_path / "best.ckpt", ["go", "no", "yes"]), tmp_path / "emb.ckpt",
                        [_manifest(tmp_path / "train.csv", ["go", "no", "yes"])])
    monkeypatch.chdir(tmp_path)
    fit(["--config", str(REPO / "configs" / "keyword_from_tts.yaml"), "--data.init_args.keywords", "[lumos]",
         "--data.init_args.voices", "[en-us, en-gb-x-rp]", "--data.init_args.per_voice", "3",
         "--data.init_args.near_words", "3", "--model.init_args.init_from", str(emb),
         "--model.init_args.net.init_args.words", "3", "--trainer.max_epochs", "1",
         "--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.enable_checkpointing", "true",
         "--test", "false"])
    corpus = tmp_path / "data" / "tts_keywords" / "lumos"
    assert (corpus / "train.csv").is_file()
    ckpts = sorted(tmp_path.rglob("*.ckpt"))
    ckpts = [c for c in ckpts if c.name not in ("best.ckpt", "emb.ckpt")]
    assert ckpts, "no checkpoint written"
    model = load_model(ckpts[-1])
    assert model.labels == ["_silence_", "_unknown_", "lumos"] and type(model.module.net).__name__ == "EmbeddingHead"
    assert model.module.net.class_word.tolist() == [-1, -1, -1]  # a word the embedding never heard: the head decides
    source = load_checkpoint(emb)["state_dict"]
    for k, v in model.module.net.backbone.state_dict().items():
        assert torch.equal(v, source[f"net.backbone.{k}"])  # frozen: still the embedding's weights
    rng = np.random.default_rng(0)
    write_wav(tmp_path / "x.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    assert model.module(torch.from_numpy(model.features(tmp_path / "x.wav"))[None]).shape == (1, 3)
