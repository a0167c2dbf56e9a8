"""KeywordClassifier (``kwslab.models.keyword``): with mixup the training loss is the lam-weighted cross-entropy of a
mixed batch; the classifier overfits one batch."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kwslab.models import KeywordClassifier
from kwslab.models.keyword2d import KeywordClassifier2d

FEATURES = {"sample_rate": 8000, "n_fft": 256, "hop_length": 80, "n_mels": 20, "n_mfcc": 13, "num_frames": 20}


def _model(alpha: float) -> KeywordClassifier:
    torch.manual_seed(0)
    return KeywordClassifier(3, ["a", "b", "c"], FEATURES, mixup_alpha=alpha, net={
        "class_path": "kwslab.nets.KeywordCNN", "init_args": {"channels": [8, 8], "hidden": 8, "dropout": 0.0}}).train()


def test_mixup_loss_matches_the_definition_and_only_in_training() -> None:
    model = _model(0.4)
    x, y = torch.randn(6, 13, 20), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(123)
    loss = model._step((x, y), "train")["loss"]
    torch.manual_seed(123)  # the same draws, by hand
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    logits = model(lam * x + (1 - lam) * x[perm])
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert 0.0 < lam < 1.0 and not torch.equal(perm, torch.arange(6))
    plain = _model(0.0)._step((x, y), "train")["loss"]
    assert loss.item() != pytest.approx(plain.item(), rel=1e-3)  # the batch really was mixed
    model.eval()
    val = model._step((x, y), "val")["loss"]  # validation never mixes
    assert val.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)


def test_mixup_alpha_is_checked_and_reaches_the_2d_model() -> None:
    with pytest.raises(ValueError, match="mixup_alpha"):
        _model(-1.0)
    model = KeywordClassifier2d(3, ["a", "b", "c"], FEATURES, mixup_alpha=0.2)
    assert model.hparams.mixup_alpha == 0.2 and model.hparams.label_smoothing == 0.0


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
