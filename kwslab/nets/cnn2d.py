"""A 2-D CNN keyword classifier over feature maps (log-mel works best: its rows are ordered in frequency).

Input ``(B, F, T)`` is treated as a one-channel image ``(B, 1, F, T)``. Each block is Conv2d(3x3) -> BatchNorm ->
ReLU -> MaxPool(2) -> Dropout. Unlike :class:`kwslab.nets.KeywordCNN` (features as channels, so every filter sees
the whole spectrum at once), the filters here slide over frequency too: a formant pattern shifted up or down the
mel axis by another voice still meets the same filters, which helps most when there are few training speakers.
The head pools over frequency and time (mean and max) and classifies with a small fully-connected layer.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kwslab.nets.cnn import ConvBlock, classifier_head


class KeywordCNN2d(nn.Module):
    """2-D CNN: conv blocks over (frequency, time), mean+max pooling over both, then a fully-connected head.

    Args:
        in_features: features per frame (rows of the input); at least ``pool ** (len(channels) - 1)``.
        num_classes: number of output classes.
        channels: output channels of each block; its length is the depth. Default ``(32, 64, 128)``.
        kernel_size: square kernel of every conv (odd). Default 3.
        pool: max-pool factor (both axes) after each block but the last. Default 2.
        hidden: width of the hidden fully-connected layer (0 for a single linear head). Default 128.
        dropout: dropout after each block and in the head. Default 0.2.
    """

    def __init__(self, in_features: int, num_classes: int, channels: Sequence[int] = (32, 64, 128),
                 kernel_size: int = 3, pool: int = 2, hidden: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or not channels:
            raise ValueError(f"KeywordCNN2d needs in_features, num_classes >= 1 and channels; got "
                             f"{in_features}, {num_classes}, {list(channels)}")
        if in_features < pool ** (len(channels) - 1):
            raise ValueError(f"KeywordCNN2d: {in_features} feature rows are too few for {len(channels)} blocks "
                             f"pooling by {pool}; use fewer channels entries or more features")
        blocks, c_in = [], 1
        for i, c_out in enumerate(channels):
            last = i == len(channels) - 1
            blocks.append(ConvBlock(c_in, c_out, kernel_size, 1 if last else pool, dropout, dims=2))
            c_in = c_out
        self.backbone = nn.Sequential(*blocks)
        self.head = classifier_head(2 * c_in, hidden, num_classes, dropout)  # mean and max over (F, T)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, 2 * channels[-1])`` pooled embedding."""
        h = self.backbone(x.unsqueeze(1)).flatten(2)  # (B, C, F' * T')
        return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
