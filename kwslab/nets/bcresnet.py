"""BC-ResNet: broadcasted residual learning (Kim, Chang, Lee & Sung, Interspeech 2021, arXiv:2106.04140).

Input ``(B, F, T)`` log-mel rows (40 in the paper), treated as a one-channel image ``(B, 1, F, T)``. Most of the
work happens on 1-D temporal features: each block runs a cheap frequency-depthwise conv on the 2-D map, averages
it over frequency, runs a temporal depthwise conv on the result, and *broadcasts* that back over frequency as a
residual. Layout (channels times the width ``tau``):

    stem     Conv 5x5, stride (2, 1), 16*tau channels, BN, ReLU        (F -> F/2)
    stage 1  2 blocks, 8*tau channels,  temporal dilation 1
    stage 2  2 blocks, 12*tau channels, dilation 2, frequency stride 2 (F/2 -> F/4)
    stage 3  4 blocks, 16*tau channels, dilation 4, frequency stride 2 (F/4 -> F/8)
    stage 4  4 blocks, 20*tau channels, dilation 8
    head     depthwise 5x5 (no frequency padding: 5 rows -> 1), 1x1 to 32*tau, BN, ReLU, average pool, 1x1 to classes

The first block of every stage is a *transition* block (a 1x1 conv changes the channel count, and there is no
identity shortcut). Every frequency-depthwise conv is followed by SubSpectral Norm with 5 sub-bands.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SubSpectralNorm(nn.Module):
    """BatchNorm with separate statistics and affine parameters for each of ``sub_bands`` frequency bands.

    ``(B, C, F, T) -> (B, C, F, T)``; ``F`` must be divisible by ``sub_bands``. It is a ``BatchNorm2d`` over
    ``C * sub_bands`` channels of the reshaped map ``(B, C * S, F / S, T)``, so it keeps running statistics and
    BatchNorm adaptation treats it like any other BatchNorm (Chang et al. 2021, "SubSpectral Normalization").
    """

    def __init__(self, channels: int, sub_bands: int = 5, eps: float = 1e-5) -> None:
        super().__init__()
        self.sub_bands = sub_bands
        self.bn = nn.BatchNorm2d(channels * sub_bands, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        y = self.bn(x.reshape(b, c * self.sub_bands, f // self.sub_bands, t))  # each band its own channel
        return y.reshape(b, c, f, t)


class BCResBlock(nn.Module):
    """One broadcasted residual block: ``(B, C_in, F, T) -> (B, C_out, F / freq_stride, T)``.

    ``f2`` (2-D, frequency-wise): [1x1 conv, BN, ReLU when ``transition``], frequency-depthwise 3x1 conv with
    ``freq_stride``, SubSpectral Norm. ``f1`` (1-D, temporal) on the frequency average of ``f2``: temporal
    depthwise 1x3 conv with ``dilation``, BN, swish, 1x1 conv, channel dropout. Output
    ``ReLU(x + f2(x) + broadcast(f1(avg_F f2(x))))``, without the ``x`` term in a transition block.
    """

    def __init__(self, in_channels: int, out_channels: int, transition: bool, freq_stride: int = 1,
                 dilation: int = 1, sub_bands: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        if not transition and (in_channels != out_channels or freq_stride != 1):
            raise ValueError("a normal BC-ResBlock keeps its shape; change channels or stride in a transition block")
        self.transition = transition
        layers: list[nn.Module] = []
        if transition:
            layers += [nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                       nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(out_channels, out_channels, (3, 1), stride=(freq_stride, 1), padding=(1, 0),
                             groups=out_channels, bias=False),
                   SubSpectralNorm(out_channels, sub_bands)]
        self.f2 = nn.Sequential(*layers)
        self.f1 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, (1, 3), padding=(0, dilation), dilation=(1, dilation),
                      groups=out_channels, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(),  # swish
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.Dropout2d(dropout),  # drops whole channels of the (B, C, 1, T) temporal map
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y2 = self.f2(x)                                  # (B, C, F', T)
        y1 = self.f1(y2.mean(dim=2, keepdim=True))       # (B, C, 1, T), broadcast over F' below
        out = y2 + y1
        if not self.transition:
            out = out + x
        return torch.relu(out)


def stage_frequencies(in_features: int, freq_strides: Sequence[int]) -> list[int]:
    """Frequency rows seen by each stage: the stem halves ``in_features`` (rounding up), each stride-2 stage too."""
    f = (in_features + 1) // 2
    rows = []
    for s in freq_strides:
        f = (f + s - 1) // s
        rows.append(f)
    return rows


class BCResNet(nn.Module):
    """BC-ResNet-``width`` (BC-ResNet-1 has 9.2k parameters, BC-ResNet-8 321k, for 40 log-mels and 12 classes).

    Args:
        in_features: log-mel rows per frame (40 in the paper). Every stage's row count must be divisible by
            ``sub_bands`` (40 -> 20, 10, 5: yes; for 64 rows use ``sub_bands=8`` or ``4``), and the last stage
            needs at least 5 rows for the head's 5x5 depthwise conv (``in_features >= 33``).
        num_classes: number of output classes.
        width: the paper's width multiplier ``tau`` (1, 1.5, 2, 3, 6 or 8): base channels ``int(8 * tau)``.
        blocks: blocks per stage. Default ``(2, 2, 4, 4)``.
        sub_bands: SubSpectral Norm sub-bands. Default 5.
        dropout: channel dropout at the end of each block's temporal branch. Default 0.1.

    Shapes: ``forward`` ``(B, F, T) -> (B, num_classes)``, ``embed`` ``(B, F, T) -> (B, 32 * tau)``; any ``T >= 1``
    in eval mode (training with batch 1 needs ``T >= 2`` for the BatchNorm statistics).

    ``backbone`` is everything before the average pool (stem, stages and the head's convs):
    ``(B, 1, F, T) -> (B, 32 * tau, F / 8 - 4, T)``. ``head`` is the final classifier, a ``Linear`` on the pooled
    embedding, which equals the paper's 1x1 conv after pooling.

    Departures from the paper: none in the layers. Where the paper leaves a detail open, this follows the
    authors' code: temporal dilations 1, 2, 4, 8 by stage; the head's depthwise conv padded over time only;
    SubSpectral Norm with affine parameters per sub-band.
    """

    def __init__(self, in_features: int, num_classes: int, width: float = 1.0,
                 blocks: Sequence[int] = (2, 2, 4, 4), sub_bands: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        base = int(8 * width)
        if in_features < 1 or num_classes < 1 or base < 1 or len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"BCResNet needs in_features, num_classes >= 1, width >= 1/8 and 4 stages of >= 1 "
                             f"block; got {in_features}, {num_classes}, {width}, {list(blocks)}")
        stem_channels = 2 * base
        stage_channels = [base, int(1.5 * base), 2 * base, int(2.5 * base)]
        freq_strides = [1, 2, 2, 1]
        rows = stage_frequencies(in_features, freq_strides)
        if any(r % sub_bands for r in rows) or rows[-1] < 5:
            raise ValueError(f"BCResNet: {in_features} feature rows give {rows} rows in the four stages; each must "
                             f"be divisible by sub_bands={sub_bands} and the last at least 5 (40 or 80 log-mels "
                             f"work with 5 sub-bands; choose sub_bands to divide every stage)")
        layers: list[nn.Module] = [
            nn.Conv2d(1, stem_channels, 5, stride=(2, 1), padding=2, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        ]
        c_in = stem_channels
        for stage, (n, c_out, stride) in enumerate(zip(blocks, stage_channels, freq_strides)):
            for i in range(n):
                layers.append(BCResBlock(c_in, c_out, transition=i == 0, freq_stride=stride if i == 0 else 1,
                                         dilation=2 ** stage, sub_bands=sub_bands, dropout=dropout))
                c_in = c_out
        embed_dim = 4 * base
        layers += [
            nn.Conv2d(c_in, c_in, 5, padding=(0, 2), groups=c_in, bias=False),  # 5 frequency rows -> 1
            nn.Conv2d(c_in, embed_dim, 1, bias=False),
            nn.BatchNorm2d(embed_dim),
            nn.ReLU(inplace=True),
        ]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Linear(embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` log-mels -> ``(B, 32 * tau)`` embedding averaged over frequency and time."""
        return self.backbone(x.unsqueeze(1)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` log-mels -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
