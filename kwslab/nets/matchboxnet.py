"""MatchboxNet BxRxC (Majumdar & Ginsburg, Interspeech 2020, arXiv:2004.08531).

Input ``(B, F, T)`` feature rows as channels (64 MFCC in the paper) and 1-D convolutions over time. Every
convolution is *time-channel separable*: a depthwise conv over time (one filter per channel) then a 1x1
pointwise conv across channels, then BatchNorm. Layout of MatchboxNet 3x1x64 (the paper's architecture
table; NeMo's ``matchboxnet_3x1x64_v2.yaml``):

    prologue  separable conv, kernel 11, 128 channels, BN, ReLU, dropout
    B blocks  each R sub-blocks of separable conv (kernel 13, 15, 17 for blocks 1-3), C = 64 channels, BN,
              ReLU, dropout; a 1x1 conv + BN residual from the block input is added before the last ReLU
    epilogue  separable conv, kernel 29, dilation 2, 128 channels, BN, ReLU, dropout;
              plain 1x1 conv, 128 channels, BN, ReLU, dropout
    decoder   global average pool over time, then a linear layer to the classes
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

BN_EPS = 1e-3  # NeMo's Jasper/QuartzNet blocks use eps 1e-3


class SeparableConvBN(nn.Module):
    """Depthwise conv over time, pointwise 1x1 conv, BatchNorm: ``(B, C_in, T) -> (B, C_out, T)`` ("same" padding).

    ``kernel_size == 1`` with ``separable=False`` is a plain 1x1 conv + BN (the epilogue's last layer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 separable: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"MatchboxNet kernels must be odd for 'same' padding; got {kernel_size}")
        padding = dilation * (kernel_size - 1) // 2
        if separable:
            self.conv = nn.Sequential(
                nn.Conv1d(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation,
                          groups=in_channels, bias=False),
                nn.Conv1d(in_channels, out_channels, 1, bias=False),
            )
        else:
            self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                                  bias=False)
        self.bn = nn.BatchNorm1d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MatchboxBlock(nn.Module):
    """One residual block of ``repeat`` sub-blocks: ``(B, C_in, T) -> (B, C_out, T)``.

    Sub-block: separable conv + BN, then ReLU and dropout. In the last sub-block the residual (1x1 conv + BN of
    the block input) is added between the BN and the ReLU, as in NeMo's ``JasperBlock``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, repeat: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            SeparableConvBN(in_channels if i == 0 else out_channels, out_channels, kernel_size)
            for i in range(repeat))
        self.residual = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, bias=False),
                                      nn.BatchNorm1d(out_channels, eps=BN_EPS))
        self.act = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i == len(self.convs) - 1:
                h = h + self.residual(x)
            h = self.act(h)
        return h


def conv_act(in_channels: int, out_channels: int, kernel_size: int, dropout: float, dilation: int = 1,
             separable: bool = True) -> nn.Sequential:
    """A non-residual layer: (separable) conv + BN, ReLU, dropout."""
    return nn.Sequential(SeparableConvBN(in_channels, out_channels, kernel_size, dilation, separable),
                         nn.ReLU(), nn.Dropout(dropout))


class MatchboxNet(nn.Module):
    """MatchboxNet BxRxC; the defaults are 3x1x64 (B = ``len(block_kernels)``, R = ``repeat``, C = ``channels``).

    Args:
        in_features: feature rows per frame, used as input channels (64 MFCC in the paper).
        num_classes: number of output classes.
        block_kernels: temporal kernel of each block; its length is B. Default ``(13, 15, 17)``.
        repeat: sub-blocks per block (R). Default 1.
        channels: channels inside the blocks (C). Default 64.
        prologue_channels: channels of the prologue conv. Default 128.
        prologue_kernel: kernel of the prologue conv. Default 11.
        epilogue_channels: channels of both epilogue convs. Default 128.
        epilogue_kernel: kernel of the first epilogue conv. Default 29.
        epilogue_dilation: dilation of the first epilogue conv. Default 2.
        dropout: dropout after every ReLU. Default 0.0, NeMo's setting for this model.

    Shapes: ``forward`` ``(B, F, T) -> (B, num_classes)``, ``embed`` ``(B, F, T) -> (B, epilogue_channels)``; any
    ``T >= 1`` (every conv pads to keep ``T``).

    ``backbone`` is prologue, blocks and epilogue: ``(B, F, T) -> (B, epilogue_channels, T)``. ``head`` is a
    ``Linear`` on the time-averaged embedding. The paper's decoder is a 1x1 conv to the classes followed by
    global average pooling; both are linear, so pooling first gives the same logits with the same parameters
    (NeMo's ``ConvASRDecoderClassification`` pools first too).

    Departures from the paper: none in the layers. The input masking of NeMo's ``MaskedConv1d`` (for padded
    batches of different lengths) is left out: clips here have one length.
    """

    def __init__(self, in_features: int, num_classes: int, block_kernels: Sequence[int] = (13, 15, 17),
                 repeat: int = 1, channels: int = 64, prologue_channels: int = 128, prologue_kernel: int = 11,
                 epilogue_channels: int = 128, epilogue_kernel: int = 29, epilogue_dilation: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or not block_kernels or repeat < 1 or channels < 1:
            raise ValueError(f"MatchboxNet needs in_features, num_classes, repeat, channels >= 1 and block_kernels;"
                             f" got {in_features}, {num_classes}, {repeat}, {channels}, {list(block_kernels)}")
        layers: list[nn.Module] = [conv_act(in_features, prologue_channels, prologue_kernel, dropout)]
        c_in = prologue_channels
        for k in block_kernels:
            layers.append(MatchboxBlock(c_in, channels, k, repeat, dropout))
            c_in = channels
        layers += [
            conv_act(c_in, epilogue_channels, epilogue_kernel, dropout, dilation=epilogue_dilation),
            conv_act(epilogue_channels, epilogue_channels, 1, dropout, separable=False),
        ]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Linear(epilogue_channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, epilogue_channels)`` embedding averaged over time."""
        return self.backbone(x).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` features -> ``(B, num_classes)`` logits."""
        return self.head(self.embed(x))
