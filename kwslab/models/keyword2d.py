"""The keyword classifier with a 2-D CNN (:class:`kwslab.nets.cnn2d.KeywordCNN2d`) instead of the 1-D one.

Everything else (loss, metrics, optimiser, checkpoint contents, fine-tuning) is :class:`KeywordClassifier`'s; only
the network and the defaults of ``channels`` and ``kernel_size`` differ. Pick it in YAML with
``class_path: kwslab.models.keyword2d.KeywordClassifier2d``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kwslab.models.base import default_adamw
from kwslab.models.keyword import KeywordClassifier
from kwslab.nets.cnn2d import KeywordCNN2d


class KeywordClassifier2d(KeywordClassifier):
    """Keyword spotter with a 2-D CNN over (feature rows, frames); use log-mel features.

    Args:
        channels: conv block widths; the length is the depth. Default ``(32, 64, 128)``.
        kernel_size: square kernel size. Default 3.
        Others: as :class:`KeywordClassifier`.
    """

    def __init__(
        self,
        num_outputs: int = 2,
        labels: Sequence[str] | None = None,
        feature_config: dict[str, Any] | None = None,
        channels: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        pool: int = 2,
        hidden: int = 128,
        dropout: float = 0.2,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        optimizer: OptimizerCallable = default_adamw,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__(num_outputs, labels, feature_config, channels, kernel_size, pool, hidden, dropout,
                         label_smoothing=label_smoothing, mixup_alpha=mixup_alpha, optimizer=optimizer,
                         scheduler=scheduler, init_from=init_from, freeze_backbone=freeze_backbone)

    def build_net(self, in_features: int, num_outputs: int, channels: tuple[int, ...], kernel_size: int, pool: int,
                  hidden: int, dropout: float) -> torch.nn.Module:
        """A :class:`KeywordCNN2d`."""
        return KeywordCNN2d(in_features, num_outputs, channels, kernel_size, pool, hidden, dropout)
