"""KeywordClassifier2d (``kwslab.models.keyword2d``), kept for old configs: it builds the 2-D network and keeps the
rest of the classifier."""
from __future__ import annotations

import torch

from kwslab.models import KeywordClassifier
from kwslab.models.keyword2d import KeywordClassifier2d
from kwslab.nets.cnn import KeywordCNN
from kwslab.nets.cnn2d import KeywordCNN2d

FEATURES = {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80, "n_mels": 40,
            "kind": "log_mel", "cmvn": True, "num_frames": 100}


def test_classifier_uses_the_2d_network_and_keeps_the_rest() -> None:
    model = KeywordClassifier2d(3, labels=["a", "b", "c"], feature_config=FEATURES, channels=(8, 16), hidden=0,
                                freeze_backbone=True)
    assert isinstance(model.net, KeywordCNN2d)
    assert model.hparams["channels"] == (8, 16) and model.hparams["kernel_size"] == 3
    assert model(torch.randn(2, 40, 100)).shape == (2, 3)
    assert not any(p.requires_grad for p in model.net.backbone.parameters())
    assert all(p.requires_grad for p in model.net.head.parameters())
    assert isinstance(KeywordClassifier(3, feature_config=FEATURES).net, KeywordCNN)  # the default is unchanged
