"""TC-ResNet: temporal convolution ResNet (Choi, Seo, Shin, Byun, Kersner, Kim & Kim, Interspeech 2019,
arXiv:1904.03814).

Input ``(B, F, T)`` with the feature rows as channels (40 MFCC in the paper), so every convolution is 1-D over
time and sees the whole spectrum at once. TC-ResNet8 (the paper's figure of the network and the authors'
TensorFlow code):

    conv 3, 16*k channels, BN, ReLU
    3 residual blocks, 24*k, 32*k, 48*k channels: conv 9 (stride 2), BN, ReLU, conv 9, BN, plus a shortcut, ReLU;
        the shortcut is a 1x1 conv (stride 2), BN, ReLU where the channel count changes, identity otherwise
    average pool over time, dropout, fully connected to the classes

``k`` is the width multiplier (TC-ResNet8-1.5 has ``k = 1.5``). TC-ResNet14 is ``channels=(16, 24, 24, 32, 32,
48, 48)``: a block that keeps its channel count has stride 1 and an identity shortcut.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv1d ("same" padding, no bias) -> BatchNorm -> ReLU (optional): ``(B, C_in, T) -> (B, C_out, ceil(T/s))``."""
    layers: list[nn.Module] = [
        nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm1d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class TCResBlock(nn.Module):
    """``(B, C_in, T) -> (B, C_out, T')``: ``T' = ceil(T / 2)`` when the channel count changes, else ``T``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9) -> None:
        super().__init__()
        stride = 1 if in_channels == out_channels else 2
        self.body = nn.Sequential(conv_bn(in_channels, out_channels, kernel_size, stride),
                                  conv_bn(out_channels, out_channels, kernel_size, relu=False))
        self.shortcut = nn.Identity() if stride == 1 else conv_bn(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class TCResNet(nn.Module):
    """TC-ResNet8 (66k parameters) or TC-ResNet8-1.5 (``width=1.5``, 145k) for 40 MFCC and 12 classes.

    Args:
        in_features: feature rows per frame, used as input channels (40 MFCC in the paper).
        num_classes: number of output classes.
        width: width multiplier ``k``; every entry of ``channels`` becomes ``int(c * k)``. Default 1.0.
        channels: first conv's channels, then each block's. Default ``(16, 24, 32, 48)`` (TC-ResNet8).
        kernel_size: temporal kernel of the block convs (odd). Default 9.
        first_kernel: temporal kernel of the first conv (odd). Default 3.
        dropout: dropout on the pooled embedding (the authors' code: keep probability 0.5). Default 0.5.

    Shapes: ``forward`` ``(B, F, T) -> (B, num_classes)``, ``embed`` ``(B, F, T) -> (B, int(channels[-1] * k))``;
    any ``T >= 1`` in eval mode (training with batch 1 needs ``T >= 9``: BatchNorm needs two frames after the
    three stride-2 blocks).

    ``backbone`` is the first conv and the blocks: ``(B, F, T) -> (B, C, T / 8)``. ``head`` is dropout then the
    final ``Linear``.

    Departures from the paper: ``head`` has a bias (the authors' code has none: ``num_classes`` more parameters).
    Convs pad symmetrically, where TensorFlow's "SAME" puts the odd pad of a stride-2 conv on the right; the
    windows stay centred on the shortcut's samples and the output lengths are the same.
    """

    def __init__(self, in_features: int, num_classes: int, width: float = 1.0,
                 channels: Sequence[int] = (16, 24, 32, 48), kernel_size: int = 9, first_kernel: int = 3,
                 dropout: float = 0.5) -> None:
        super().__init__()
        widths = [int(c * width) for c in channels]
        if in_features < 1 or num_classes < 1 or len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"TCResNet needs in_features, num_classes >= 1 and >= 2 channel entries >= 1 after "
                             f"the width multiplier; got {in_features}, {num_classes}, {widths}")
        if kernel_size % 2 == 0 or first_kernel % 2 == 0:
            raise ValueError(f"TCResNet kernels must be odd; got {first_kernel}, {kernel_size}")
        layers: list[nn.Module] = [conv_bn(in_features, widths[0], first_kernel)]
        layers += [TCResBlock(c_in, c_out, kernel_size) for c_in, c_out in zip(widths, widths[1:])]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(widths[-1], num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, C)`` embedding averaged over time."""
        return self.backbone(x).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
