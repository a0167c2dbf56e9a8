"""A small keyword head on a TC-ResNet backbone: the network of keyword models trained on top of a pretrained speech
embedding (``kwslab/pretrained/speech_embedding.ckpt``, recipe ``configs/embedding.yaml``).

``backbone`` is built exactly as :class:`~kwslab.nets.TCResNet`'s (same arguments, same parameter names), so a
keyword classifier started from the embedding (``init_from: builtin:speech_embedding``) copies its weights, and
``freeze_backbone: true`` keeps them and their BatchNorm statistics fixed. ``head`` sees the backbone's whole
sequence of frame embeddings ``(B, C, T / 8)``: a 3-tap temporal conv, then the mean and the maximum over time
(the maximum finds a short word anywhere in the window), dropout and a linear layer.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kwslab.nets.tcresnet import TCResNet


class _MeanMaxPool(nn.Module):
    """``(B, C, T) -> (B, 2C)``: the mean and the maximum over time, side by side."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


class EmbeddingHead(nn.Module):
    """TC-ResNet backbone + a small temporal head.

    Args:
        in_features, num_classes: feature rows per frame; output classes (filled in from the data).
        width, channels, kernel_size, first_kernel: the backbone, as in :class:`~kwslab.nets.TCResNet` (they must
            match the pretrained embedding's for its weights to load; ``configs/keyword_from_tts.yaml`` has them).
        hidden: channels of the head's conv. Default 64.
        dropout: before the final linear layer. Default 0.3.

    Shapes: ``(B, F, T) -> (B, num_classes)``.
    """

    def __init__(self, in_features: int, num_classes: int, width: float = 1.5,
                 channels: Sequence[int] = (16, 24, 32, 48), kernel_size: int = 9, first_kernel: int = 3,
                 hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"EmbeddingHead needs hidden >= 1, got {hidden}")
        self.backbone = TCResNet(in_features, 1, width, channels, kernel_size, first_kernel).backbone
        dim = int(channels[-1] * width)
        self.head = nn.Sequential(nn.Conv1d(dim, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), _MeanMaxPool(), nn.Dropout(dropout),
                                  nn.Linear(2 * hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.backbone(x))
