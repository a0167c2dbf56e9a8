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


def _with_words(path, labels, **kw):
    return KeywordClassifier(num_outputs=len(labels), labels=labels, feature_config=FEATURES,
                             net={"class_path": "kwslab.nets.EmbeddingHead",
                                  "init_args": {"width": 1.0, "words": 5, **kw}},
                             init_from=str(path), freeze_backbone=True)


def test_the_head_says_silence_or_speech_the_word_classifier_which_known_keyword_the_head_the_rest(tmp_path):
    path, source = _embedding_checkpoint(tmp_path / "emb.ckpt")
    model = _with_words(path, ["_silence_", "_unknown_", "b", "e", "zz"]).eval()
    net = model.net
    assert torch.equal(net.words.weight, source.net.head[1].weight)
    assert not net.words.weight.requires_grad  # never trained on TTS
    assert net.class_word.tolist() == [-1, -1, 1, 4, -1] and net.word_is_class.tolist() == [0, 1, 0, 0, 1]
    assert net.class_is_silence.tolist() == [1, 0, 0, 0, 0]
    x = torch.randn(32, 40, 101)
    with torch.no_grad():
        log_p = torch.log_softmax(source.eval().net(x), dim=-1)  # the embedding's own 5-word classifier
        head = torch.log_softmax(net.head(net.backbone(x)), dim=-1)
        speech = torch.logsumexp(head[:, 1:], dim=-1)  # 1. the head: not silence
        other = log_p[:, [0, 2, 3]].amax(dim=-1)  # 2. the likeliest word that is not a keyword ...
        norm = torch.logsumexp(torch.stack([log_p[:, 1], log_p[:, 4], other], dim=1), dim=-1)  # ... against b, e
        rest = torch.log_softmax(net.head(net.backbone(x))[:, [1, 4]], dim=-1)  # 3. the head among the others
        expected = torch.stack([head[:, 0], speech + other - norm + rest[:, 0], speech + log_p[:, 1] - norm,
                                speech + log_p[:, 4] - norm, speech + other - norm + rest[:, 1]], dim=1)
        out = model(x)
        assert torch.allclose(out, expected, atol=1e-5)
        assert torch.allclose(out.exp().sum(dim=-1), torch.ones(32), atol=1e-5)  # log-probabilities
        # so among speech, a keyword the word classifier ranks above every other word always wins
        top, words_top = out[:, 1:].argmax(dim=-1).tolist(), log_p.argmax(dim=-1).tolist()
        assert all(t + 1 == {1: 2, 4: 3}[w] for t, w in zip(top, words_top) if w in (1, 4))
        assert {1, 4} & set(words_top)  # the case happened


def test_keywords_the_embedding_never_heard_leave_the_heads_probabilities_unchanged(tmp_path):
    path, _ = _embedding_checkpoint(tmp_path / "emb.ckpt")
    model = _with_words(path, ["_silence_", "_unknown_", "marvin"]).eval()
    assert model.net.class_word.tolist() == [-1, -1, -1]
    x = torch.randn(4, 40, 101)
    with torch.no_grad():
        head_only = torch.softmax(model.net.head(model.net.backbone(x)), dim=-1)
        assert torch.allclose(model(x).exp(), head_only, atol=1e-5)


def test_the_word_expert_survives_a_checkpoint_and_a_wrong_vocabulary_is_one_error(tmp_path):
    path, _ = _embedding_checkpoint(tmp_path / "emb.ckpt")
    model = _with_words(path, ["_silence_", "_unknown_", "a"]).eval()
    state = model.state_dict()
    again = KeywordClassifier(num_outputs=3, labels=["_silence_", "_unknown_", "a"], feature_config=FEATURES,
                              net={"class_path": "kwslab.nets.EmbeddingHead", "init_args": {"width": 1.0,
                                                                                           "words": 5}})
    again.load_state_dict(state)  # what loading a checkpoint does (init_from is never chased then)
    x = torch.randn(3, 40, 101)
    with torch.no_grad():
        assert torch.allclose(again.eval()(x), model(x))
    with pytest.raises(ValueError, match="has 5 words of dimension 48.*set words: 5"):
        _with_words(path, ["_silence_", "_unknown_", "a"], words=7)
    head_only = KeywordClassifier(num_outputs=3, labels=["_silence_", "_unknown_", "a"], feature_config=FEATURES,
                                  net={"class_path": "kwslab.nets.EmbeddingHead", "init_args": {"width": 1.0}})
    torch.save({"state_dict": head_only.state_dict(), "hyper_parameters": {
        "_class_path": "kwslab.models.KeywordClassifier", "num_outputs": 3, "labels": ["_silence_", "_unknown_", "a"],
        "feature_config": FEATURES, "net": {"class_path": "kwslab.nets.EmbeddingHead", "init_args": {"width": 1.0}}}},
               tmp_path / "head.ckpt")
    with pytest.raises(ValueError, match="has no word classifier"):  # a keyword model without one: nothing to take
        _with_words(tmp_path / "head.ckpt", ["_silence_", "_unknown_", "a"])
    with pytest.raises(ValueError, match="words >= 0"):
        EmbeddingHead(40, 3, words=-1)
