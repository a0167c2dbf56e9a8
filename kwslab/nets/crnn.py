"""Conv front-end + bidirectional GRU + linear: the CTC acoustic model.

``(B, F, T)`` features -> ``(B, T', V)`` log-probabilities, ``T' = ceil(T / subsample)``. The first conv has stride
``subsample`` (fewer frames for the GRU and for CTC: 2 halves the cost and still leaves several frames per character
at 10 ms hops); the rest keep the length. With lengths, padded frames are zeroed after every conv block and packed away from the
GRU, so a clip's output does not depend on the batch it is in.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class CRNN(nn.Module):
    """Conv1d blocks (BatchNorm, ReLU, dropout) -> BiGRU layers -> Linear to the vocabulary.

    Args:
        in_features: features per frame.
        vocab_size: output classes including the CTC blank.
        conv_channels: widths of the conv blocks. Default ``(128, 128)``.
        kernel_size: temporal kernel (odd). Default 5.
        subsample: stride of the first conv (1 = none). Default 2.
        rnn_hidden: GRU hidden size per direction. Default 192.
        rnn_layers: stacked BiGRU layers. Default 2.
        dropout: dropout after each conv block and between GRU layers. Default 0.2.
    """

    def __init__(self, in_features: int, vocab_size: int, conv_channels: Sequence[int] = (128, 128),
                 kernel_size: int = 5, subsample: int = 2, rnn_hidden: int = 192, rnn_layers: int = 2,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if subsample < 1 or kernel_size % 2 == 0 or not conv_channels:
            raise ValueError(f"CRNN: need subsample >= 1, an odd kernel_size and conv_channels; got {subsample}, "
                             f"{kernel_size}, {list(conv_channels)}")
        self.subsample, self.kernel_size = subsample, kernel_size
        blocks, c_in = [], in_features
        for i, c_out in enumerate(conv_channels):
            stride = subsample if i == 0 else 1
            blocks.append(nn.Sequential(
                nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(c_out), nn.ReLU(inplace=True), nn.Dropout(dropout)))
            c_in = c_out
        self.conv = nn.ModuleList(blocks)
        self.rnn = nn.GRU(c_in, rnn_hidden, num_layers=rnn_layers, bidirectional=True, batch_first=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.fc = nn.Linear(2 * rnn_hidden, vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the strided conv: ``floor((T + 2 * (k // 2) - k) / s) + 1`` (= ceil(T / s) for odd k)."""
        pad = self.kernel_size // 2
        return torch.div(lengths + 2 * pad - self.kernel_size, self.subsample, rounding_mode="floor") + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, F, T)`` features (+ ``(B,)`` lengths) -> ``(B, T', V)`` log-probs and ``(B,)`` output lengths."""
        h = x
        if lengths is not None:  # whatever the padding holds, it must not reach valid frames
            h = h * (torch.arange(h.shape[-1], device=h.device)[None, :] < lengths[:, None]).unsqueeze(1)
        valid = self.output_lengths(lengths) if lengths is not None else None  # only the first block strides
        for block in self.conv:
            h = block(h)  # (B, C, T')
            if valid is not None:  # zero the padding so it never leaks into valid frames through the next conv
                h = h * (torch.arange(h.shape[-1], device=h.device)[None, :] < valid[:, None]).unsqueeze(1)
        h = h.transpose(1, 2)  # (B, T', C)
        out_lengths = (self.output_lengths(lengths) if lengths is not None
                       else torch.full((x.shape[0],), h.shape[1], dtype=torch.long, device=x.device))
        if lengths is not None and x.shape[0] > 1:
            packed = pack_padded_sequence(h, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=h.shape[1])
        else:
            h, _ = self.rnn(h)
        return self.fc(h).log_softmax(dim=-1), out_lengths  # (B, T', V)
