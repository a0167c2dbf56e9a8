"""A 1-D CNN keyword classifier over feature frames (MFCC or log-mel).

Input ``(B, F, T)``: batch, features per frame, frames. Convolutions slide over time with the features as
channels. Each block is Conv1d -> BatchNorm -> ReLU -> MaxPool(2) -> Dropout (the seed's two blocks by default;
depth and width come from ``channels``). The head pools over time (mean and max, so it does not care about the
exact frame count) and classifies with a small fully-connected layer.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv -> BatchNorm -> ReLU -> MaxPool(pool) -> Dropout over ``dims`` (1 or 2) axes.

    ``dims=1``: ``(B, C_in, T) -> (B, C_out, T // pool)``; ``dims=2``: ``(B, C_in, F, T) -> (B, C_out, F/p, T/p)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool: int, dropout: float,
                 dims: int = 1) -> None:
        super().__init__()
        conv, norm, max_pool = {1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d),
                                2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)}[dims]
        self.net = nn.Sequential(
            conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            norm(out_channels),
            nn.ReLU(inplace=True),
            max_pool(pool) if pool > 1 else nn.Identity(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def classifier_head(width: int, hidden: int, num_classes: int, dropout: float) -> nn.Module:
    """Linear -> ReLU -> Dropout -> Linear (or one Linear when ``hidden`` is 0): pooled embedding to logits."""
    if hidden <= 0:
        return nn.Linear(width, num_classes)
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


class KeywordCNN(nn.Module):
    """1-D CNN: conv blocks over time, mean+max pooling over time, then a fully-connected head.

    Args:
        in_features: features per frame (``FeatureConfig.num_features``).
        num_classes: number of output classes.
        channels: output channels of each conv block; its length is the depth. Default ``(64, 128)``.
        kernel_size: temporal kernel of every conv (odd). Default 5.
        pool: max-pool factor after each block. Default 2.
        hidden: width of the hidden fully-connected layer (0 for a single linear head). Default 128.
        dropout: dropout after each block and in the head. Default 0.2.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        channels: Sequence[int] = (64, 128),
        kernel_size: int = 5,
        pool: int = 2,
        hidden: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or not channels:
            raise ValueError(f"KeywordCNN needs in_features, num_classes >= 1 and channels; got "
                             f"{in_features}, {num_classes}, {list(channels)}")
        blocks, c_in = [], in_features
        for c_out in channels:
            blocks.append(ConvBlock(c_in, c_out, kernel_size, pool, dropout))
            c_in = c_out
        self.backbone = nn.Sequential(*blocks)
        self.head = classifier_head(2 * c_in, hidden, num_classes, dropout)  # mean and max over time

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, 2 * channels[-1])`` pooled embedding."""
        h = self.backbone(x)  # (B, C, T')
        return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
