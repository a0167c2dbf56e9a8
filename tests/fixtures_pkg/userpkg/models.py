"""A user's own LightningModule, in a package kwslab knows nothing about (trained by class_path alone)."""
from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class MeanPoolClassifier(L.LightningModule):
    """Mean over time, then a linear layer: the smallest model the kwslab CLI can train."""

    def __init__(self, num_outputs: int = 2, labels: Sequence[str] | None = None,
                 feature_config: dict[str, Any] | None = None, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.labels = list(labels or [])
        in_features = int((feature_config or {}).get("n_mfcc", 13))
        self.linear = nn.Linear(in_features, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=-1))

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        acc = (self(batch[0]).argmax(-1) == batch[1]).float().mean()
        self.log("val/acc", acc)

    def test_step(self, batch, batch_idx):
        acc = (self(batch[0]).argmax(-1) == batch[1]).float().mean()
        self.log("test/acc", acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
