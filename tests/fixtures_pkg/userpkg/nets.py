"""A user's own network, in a package kwslab knows nothing about: chosen by ``class_path`` as a keyword
classifier's ``net``, it trains, exports, streams and adapts with no change to kwslab."""
from __future__ import annotations

import torch
from torch import nn


class DilatedTCN(nn.Module):
    """Dilated temporal convolutions over feature frames, BatchNorm, mean pooling, a linear head.

    ``(B, F, T)`` -> ``(B, num_classes)``. Its attribute names differ from kwslab's CNNs on purpose (``stem``,
    ``blocks``): only ``head`` is conventional.
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 12, dilations: tuple[int, ...] = (1, 2)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_features, width, 1, bias=False), nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(width, width, 3, padding=d, dilation=d, bias=False), nn.BatchNorm1d(width),
                          nn.ReLU()) for d in dilations)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)  # (B, W, T)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h.mean(dim=-1))
