"""DS-CNN: depthwise-separable CNN from "Hello Edge" (Zhang, Suda, Lai & Chandra 2017, arXiv:1711.07128).

Input ``(B, F, T)`` treated as a one-channel image ``(B, 1, F, T)``; the paper feeds 10 MFCC x 49 frames (40 ms
windows, 20 ms hop). DS-CNN-S (the authors' ``train_commands.txt``, model_size_info ``5 64 10 4 2 2 64 3 3 1 1
...``):

    conv 10x4 (time x frequency), 64 channels, stride 2x2, BN, ReLU         (49 x 10 -> 25 x 5)
    4 x [depthwise 3x3, BN, ReLU, pointwise 1x1 to 64 channels, BN, ReLU]
    average pool over time and frequency, fully connected to the classes
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def same_padding(kernel: Sequence[int]) -> nn.ZeroPad2d:
    """Zero padding for a (F, T) conv with stride 1 or 2 that gives TensorFlow's "SAME" lengths, ``ceil(n / s)``.

    ``kernel`` is ``(k_F, k_T)``: ``(k - 1) // 2`` before and the rest after. The windows are TensorFlow's for
    stride 1, and for stride 2 with an even kernel (the paper's 10x4) whatever the input's parity; with an odd
    kernel, stride 2 and an even input, TensorFlow's windows start one sample later.
    """
    k_f, k_t = kernel
    return nn.ZeroPad2d(((k_t - 1) // 2, k_t - 1 - (k_t - 1) // 2, (k_f - 1) // 2, k_f - 1 - (k_f - 1) // 2))


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv, BN, ReLU, pointwise 1x1 conv, BN, ReLU: ``(B, C_in, F, T) -> (B, C_out, F, T)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels,
                      bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DSCNN(nn.Module):
    """DS-CNN-S: a strided conv, then depthwise-separable layers, average pooling and a linear classifier.

    Args:
        in_features: feature rows per frame (10 MFCC in the paper; any count >= 1 works).
        num_classes: number of output classes.
        channels: channels of every layer. Default 64.
        layers: depthwise-separable layers after the first conv. Default 4.
        first_kernel: the first conv's kernel as ``(frames, features)``. Default ``(10, 4)``.
        first_stride: the first conv's stride as ``(frames, features)``. Default ``(2, 2)``.
        dropout: dropout before the classifier; not in the paper, so 0 by default.

    Shapes: ``forward`` ``(B, F, T) -> (B, num_classes)``, ``embed`` ``(B, F, T) -> (B, channels)``; any
    ``T >= 1``.

    ``backbone`` is the convolutions: ``(B, 1, F, T) -> (B, channels, ceil(F/2), ceil(T/2))``. ``head`` is
    dropout then the final ``Linear``.

    Departures from the paper: convs have no bias and every BatchNorm has a scale and a shift, where the authors'
    code gives convs a bias and BatchNorm only a shift; the parameter count is the same (23,180 for 12
    classes) and a bias before BatchNorm does nothing.
    """

    def __init__(self, in_features: int, num_classes: int, channels: int = 64, layers: int = 4,
                 first_kernel: Sequence[int] = (10, 4), first_stride: Sequence[int] = (2, 2),
                 dropout: float = 0.0) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or channels < 1 or layers < 0:
            raise ValueError(f"DSCNN needs in_features, num_classes, channels >= 1 and layers >= 0; got "
                             f"{in_features}, {num_classes}, {channels}, {layers}")
        k_t, k_f = first_kernel
        s_t, s_f = first_stride
        if max(s_t, s_f) > 2 or min(s_t, s_f) < 1:
            raise ValueError(f"DSCNN: first_stride entries must be 1 or 2 (TensorFlow 'SAME' padding); got "
                             f"{list(first_stride)}")
        blocks: list[nn.Module] = [
            same_padding((k_f, k_t)),
            nn.Conv2d(1, channels, (k_f, k_t), stride=(s_f, s_t), bias=False),  # image rows are features
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        blocks += [DepthwiseSeparable(channels, channels) for _ in range(layers)]
        self.backbone = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, channels)`` embedding averaged over frequency and time."""
        return self.backbone(x.unsqueeze(1)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
