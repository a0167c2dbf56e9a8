"""EmbeddingHead: shapes, a backbone named like TC-ResNet's (so a pretrained embedding's weights load into it), and
a keyword classifier started from an embedding checkpoint with its backbone frozen."""
from __future__ import annotations

import pytest
import torch

from kwslab.dsp import FeatureConfig
from kwslab.models import KeywordClassifier
from kwslab.nets import EmbeddingHead, TCResNet

FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, win_length=480, hop_length=160, n_mels=40, n_mfcc=40,
                         kind="mfcc", cmvn=True, num_frames=101).to_dict()


def test_shapes_and_a_backbone_named_like_tcresnets():
    head = EmbeddingHead(40, 3, width=1.0, hidden=16)
    x = torch.randn(4, 40, 101, requires_grad=True)
    out = head(x)
    assert out.shape == (4, 3)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert head.eval()(torch.randn(1, 40, 30)).shape == (1, 3)  # any clip length: the head pools over time
    tc = TCResNet(40, 31, width=1.0)
    ours = {k: v.shape for k, v in head.state_dict().items() if k.startswith("backbone.")}
    theirs = {k: v.shape for k, v in tc.state_dict().items() if k.startswith("backbone.")}
    assert ours == theirs
    with pytest.raises(ValueError, match="hidden"):
        EmbeddingHead(40, 3, hidden=0)


def _embedding_checkpoint(path, features=FEATURES):
    torch.manual_seed(0)
    hp = {"num_outputs": 5, "labels": ["a", "b", "c", "d", "e"], "feature_config": features,
          "net": {"class_path": "kwslab.nets.TCResNet", "init_args": {"width": 1.0}}}
    model = KeywordClassifier(**hp)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {"_class_path":
                "kwslab.models.KeywordClassifier", **hp}}, path)
    return path, model


def test_a_keyword_head_starts_from_the_embedding_and_keeps_it_frozen(tmp_path):
    path, source = _embedding_checkpoint(tmp_path / "emb.ckpt")
    model = KeywordClassifier(num_outputs=3, labels=["_silence_", "_unknown_", "marvin"], feature_config=FEATURES,
                              net={"class_path": "kwslab.nets.EmbeddingHead", "init_args": {"width": 1.0}},
                              init_from=str(path), freeze_backbone=True)
    for k, v in source.net.backbone.state_dict().items():
        assert torch.equal(model.net.backbone.state_dict()[k], v)
    assert not any(p.requires_grad for p in model.net.backbone.parameters())
    assert all(p.requires_grad for p in model.net.head.parameters())
    model.train()
    assert not model.net.backbone.training and model.net.head.training  # frozen BatchNorm statistics too
    before = {k: v.clone() for k, v in model.net.backbone.state_dict().items()}
    model(torch.randn(8, 40, 101))
    assert all(torch.equal(before[k], v) for k, v in model.net.backbone.state_dict().items())


def test_init_from_refuses_weights_trained_on_other_features(tmp_path):
    other = dict(FEATURES, n_mfcc=20, num_frames=50)
    path, _ = _embedding_checkpoint(tmp_path / "emb20.ckpt", other)
    with pytest.raises(ValueError) as err:
        KeywordClassifier(num_outputs=3, labels=["_silence_", "_unknown_", "x"], feature_config=FEATURES,
                          net={"class_path": "kwslab.nets.EmbeddingHead", "init_args": {"width": 1.0}},
                          init_from=str(path))
    message = str(err.value)
    assert "n_mfcc: 20 there, 40 here" in message and "num_frames" not in message and "features" in message
